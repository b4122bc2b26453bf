"""mtl_course.checks: the one home of the package's int, number, seed and generator checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtl_course import checks


@pytest.mark.parametrize("value, minimum", [(0, 0), (np.int64(3), 1), (2**40, 2)])
def test_positive_int_accepts_ints_at_or_above_the_minimum(value, minimum):
    out = checks.positive_int(value, "n", minimum)
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value, error, message", [
    (True, TypeError, "n must be an int, got True"),
    (2.0, TypeError, "n must be an int, got 2.0"),
    (None, TypeError, "n must be an int, got None"),
    (0, ValueError, "n must be positive, got 0"),
])
def test_positive_int_refuses_non_ints_and_small_values(value, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        checks.positive_int(value, "n")


def test_positive_int_names_its_minimum():
    with pytest.raises(ValueError, match=r"^seed must be >= 0, got -1$"):
        checks.positive_int(-1, "seed", minimum=0)


@pytest.mark.parametrize("value", [np.float32(0.5), np.float64(0.0), 3])
def test_check_real_and_check_nonnegative_accept_finite_numbers_of_any_dtype(value):
    assert checks.check_real(value, "x", 0.0, 1.0 if value != 3 else 3.0) == float(value)
    assert checks.check_nonnegative(value, "x") == float(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -1e-300, np.float32(-0.5), True, "1", None])
def test_check_nonnegative_refuses_everything_else(value):
    with pytest.raises(ValueError, match="x must be a finite number >= 0"):
        checks.check_nonnegative(value, "x")


def test_check_real_says_which_bound():
    with pytest.raises(TypeError, match="rho must be a real number"):
        checks.check_real("0.5", "rho")
    with pytest.raises(ValueError, match="rho must be finite"):
        checks.check_real(np.float32("nan"), "rho")
    with pytest.raises(ValueError, match=r"rho must lie in \[-1.0, 1.0\], got 1.5"):
        checks.check_real(1.5, "rho", -1.0, 1.0)


def test_check_seed_accepts_the_32_bit_range_only():
    assert checks.check_seed(np.uint32(2**32 - 1)) == 2**32 - 1
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*32\)"):
        checks.check_seed(-1)
    with pytest.raises(TypeError, match="seed must be an int, got float"):
        checks.check_seed(1.0)


def test_as_generator_reuses_a_generator_seeds_an_int_and_refuses_the_rest():
    rng = np.random.default_rng(5)
    assert checks.as_generator(rng) is rng
    np.testing.assert_array_equal(checks.as_generator(7).random(4), np.random.default_rng(7).random(4))
    assert isinstance(checks.as_generator(None), np.random.Generator)
    with pytest.raises(TypeError, match="rng must be a numpy Generator, an int seed or None, got True"):
        checks.as_generator(True, "rng")
    with pytest.raises(ValueError, match="generator must be >= 0, got -3"):
        checks.as_generator(-3)
