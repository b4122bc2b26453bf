"""mtl_course.stats: the paired verdict every chapter prints."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from mtl_course.stats import Verdict, format_spread, mean_spread, paired_verdict, spread_decimals


def test_every_seed_won_yet_no_difference_established() -> None:
    # d = a - b = (-1, -2, -3): mean -2, s_d = 1, sem = 1/sqrt(3),
    # t_{2, 0.975} = 4.302652729749464 -> half width 2.4841377..., so the interval
    # [-4.484, 0.484] contains 0 although A is better on all 3 seeds.
    a, b = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]
    v = paired_verdict(a, b, names=("soft", "separate"))
    half = 4.302652729749464 / math.sqrt(3)
    assert v.mean_difference == pytest.approx(-2.0)
    assert v.low == pytest.approx(-2.0 - half, rel=1e-12)
    assert v.high == pytest.approx(-2.0 + half, rel=1e-12)
    assert v.n == 3 and v.wins == 3
    assert not v.established and v.winner is None
    assert str(v) == ("soft vs separate: no difference established at 3 seeds: mean difference -2, "
                      "95% CI [-4.48, 0.484], soft better on 3 of 3 seeds")


def test_hand_computed_verdict_line() -> None:
    # d = (-1, -1.5, -2, -1.5): mean -1.5, s_d = sqrt(1/6), sem = sqrt(1/6)/2,
    # t_{3, 0.975} = 3.182446305284263 -> half width 0.6495...
    a, b = [1.0, 1.5, 2.0, 2.5], [2.0, 3.0, 4.0, 4.0]
    v = paired_verdict(a, b, names=("soft", "separate"))
    half = 3.182446305284263 * math.sqrt(1 / 6) / 2
    assert v.low == pytest.approx(-1.5 - half, rel=1e-12)
    assert v.high == pytest.approx(-1.5 + half, rel=1e-12)
    assert str(v) == ("soft beats separate: mean difference -1.5, 95% CI [-2.15, -0.85], "
                      "soft better on 4 of 4 seeds")
    assert v.line(digits=2) == ("soft beats separate: mean difference -1.5, 95% CI [-2.1, -0.85], "
                                "soft better on 4 of 4 seeds")


def test_no_difference_when_interval_contains_zero() -> None:
    # d = (1, -1, 2, -2, 0.5): mean 0.1, the interval is wide around it.
    a = [1.0, 0.0, 3.0, 0.0, 1.5]
    b = [0.0, 1.0, 1.0, 2.0, 1.0]
    v = paired_verdict(a, b, names=("hard", "soft"))
    assert not v.established and v.winner is None and v.loser is None
    assert v.low < 0 < v.high
    assert v.wins == 2  # seeds where a < b: the 2nd and the 4th
    assert str(v).startswith("hard vs soft: no difference established at 5 seeds: mean difference 0.1,")
    assert str(v).endswith("hard better on 2 of 5 seeds")


def test_second_method_wins_and_higher_is_better() -> None:
    a, b = [0.80, 0.82, 0.81], [0.90, 0.93, 0.91]
    lower = paired_verdict(a, b, names=("A", "B"), lower_is_better=True)
    assert lower.winner == "A" and lower.wins == 3
    higher = paired_verdict(a, b, names=("A", "B"), lower_is_better=False)
    assert higher.winner == "B" and higher.wins == 0
    assert str(higher).startswith("B beats A:")
    assert higher.mean_difference == pytest.approx(-0.1033333333333, rel=1e-9)


def test_matches_scipy_t_interval_and_ttest() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=10)
    b = a + rng.normal(loc=0.3, scale=0.5, size=10)
    for confidence in (0.9, 0.95, 0.99):
        v = paired_verdict(a, b, confidence=confidence)
        d = a - b
        low, high = scipy_stats.t.interval(confidence, len(d) - 1, loc=d.mean(),
                                           scale=scipy_stats.sem(d))
        assert (v.low, v.high) == pytest.approx((low, high), rel=1e-12)
        test = scipy_stats.ttest_rel(a, b)
        ci = test.confidence_interval(confidence)
        assert (v.low, v.high) == pytest.approx((ci.low, ci.high), rel=1e-12)
        # the interval excludes 0 exactly when the two-sided paired t test rejects at 1 - c
        p = test.pvalue
        assert v.established == (p < 1 - confidence)


def test_confidence_shown_in_line() -> None:
    v = paired_verdict([1.0, 2.0, 3.5], [2.0, 2.5, 3.0], confidence=0.9)
    assert "90% CI" in str(v)


def test_constant_differences_collapse_the_interval() -> None:
    same = paired_verdict([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (same.low, same.high, same.mean_difference) == (0.0, 0.0, 0.0)
    assert not same.established and same.wins == 0
    shifted = paired_verdict([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], names=("x", "y"))
    assert (shifted.low, shifted.high) == (-1.0, -1.0)
    assert shifted.winner == "x"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_and_badly_scaled_scores(dtype: type) -> None:
    base = np.array([1.0, 1.1, 0.9, 1.05, 0.95])
    for scale in (1e-30, 1.0, 1e30):
        a = (base * scale).astype(dtype)
        b = (base * 1.01 * scale).astype(dtype)
        v = paired_verdict(a, b)
        assert math.isfinite(v.low) and math.isfinite(v.high)
        assert v.winner == "A" and v.wins == 5
        assert v.mean_difference == pytest.approx(float(np.mean(a.astype(float) - b.astype(float))), rel=1e-6)


def test_nearly_degenerate_differences() -> None:
    a = np.full(6, 0.5) + np.array([0, 1, -1, 1, -1, 0]) * 1e-15
    b = np.full(6, 0.5)
    v = paired_verdict(a, b)
    assert not v.established and v.low <= 0 <= v.high


@pytest.mark.parametrize(
    "a, b, message",
    [
        ([1.0, 2.0], [1.0], "same seeds"),
        ([1.0], [2.0], "at least 2 seeds"),
        ([1.0, float("nan")], [1.0, 2.0], "NaN or inf"),
        ([1.0, 2.0], [1.0, float("inf")], "NaN or inf"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
    ],
)
def test_bad_input_names_the_problem(a: list, b: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paired_verdict(a, b)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="confidence"):
        paired_verdict([1.0, 2.0], [2.0, 3.0], confidence=95)
    with pytest.raises(ValueError, match="different names"):
        paired_verdict([1.0, 2.0], [2.0, 3.0], names=("x", "x"))
    with pytest.raises(TypeError, match="numbers"):
        paired_verdict(["a", "b"], [2.0, 3.0])
    with pytest.raises(ValueError, match="overflows"):
        paired_verdict([1e308, -1e308], [-1e308, 1e308])


def test_verdict_is_frozen() -> None:
    v = paired_verdict([1.0, 2.0], [2.0, 3.5])
    assert isinstance(v, Verdict)
    with pytest.raises(AttributeError):
        v.low = 0.0  # type: ignore[misc]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=12),
       st.floats(-10, 10), st.data())
def test_swapping_the_methods_mirrors_the_verdict(a: list, shift: float, data: st.DataObject) -> None:
    noise = data.draw(st.lists(st.floats(-1, 1), min_size=len(a), max_size=len(a)))
    b = [x + shift + e for x, e in zip(a, noise)]
    v = paired_verdict(a, b, names=("A", "B"))
    w = paired_verdict(b, a, names=("B", "A"))
    assert v.winner == w.winner
    assert v.mean_difference == pytest.approx(-w.mean_difference, abs=1e-9)
    assert v.low == pytest.approx(-w.high, abs=1e-6) and v.high == pytest.approx(-w.low, abs=1e-6)
    assert v.low <= v.mean_difference <= v.high


def test_framework_free() -> None:
    import subprocess
    import sys

    code = ("import sys, mtl_course.stats\n"
            "assert not {'torch', 'tensorflow', 'keras'} & set(sys.modules), sorted(sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_subnormal_differences_give_a_finite_interval() -> None:
    # found by hypothesis: the variance of (0, 5e-324) underflows unless d is rescaled first
    v = paired_verdict([0.0, 0.0], [0.0, 5e-324])
    assert math.isfinite(v.low) and math.isfinite(v.high)
    assert not v.established


def test_rounded_line_keeps_the_digits_the_spread_justifies():
    wide = paired_verdict([1.31, 1.52, 1.18, 1.44, 1.29], [1.0, 1.1, 1.05, 1.2, 0.98], names=("b0", "a0"))
    assert wide.rounded_line() == "a0 beats b0: mean difference 0.3, 95% CI [0.1, 0.4], b0 better on 0 of 5 seeds"
    # an established interval whose lower bound would round to 0 gets one more decimal
    near = paired_verdict([0.0104, 0.0121, 0.0139, 0.0131], [0.0, 0.0, 0.0, 0.0], names=("a", "b"),
                          lower_is_better=False)
    assert near.established
    low, high = near.rounded_line().split("CI [")[1].split("]")[0].split(", ")
    assert float(low) > 0 and float(high) > 0
    assert paired_verdict([1.0, 2.0], [1.0, 2.0]).rounded_line().startswith("A vs B: no difference established")


# ------------------------------------------------------------ digits justified by the spread


@pytest.mark.parametrize(("spread", "decimals"), [(0.03, 2), (0.0999, 2), (0.1, 1), (0.19, 1), (4.2, 0), (60.0, -1), (120.0, -2),
                                                  (0.0, 6), (1e-9, 6)])
def test_spread_decimals_is_the_leading_digit_of_the_spread(spread, decimals):
    assert spread_decimals(spread) == decimals


def test_spread_decimals_drops_digits_near_a_rounding_boundary():
    # 0.405 at two decimals is the digit another machine flips (0.40 / 0.41); 0.401 is not
    assert spread_decimals(0.03, value=0.4049) == 1
    assert spread_decimals(0.03, value=-0.4051) == 1
    assert spread_decimals(0.03, value=0.4011) == 2
    # the margin is a fraction of the spread: 0.4011 is 0.0039 from 0.405, inside 0.3 * 0.03 = 0.009
    assert spread_decimals(0.03, value=0.4011, margin=0.3) == 1
    # one decimal fewer at most: 0.4647 is near 0.465 and, with margin 0.55, near 0.45 too
    assert spread_decimals(0.029, value=0.4647, margin=0.25) == 1
    assert spread_decimals(0.029, value=0.4647, margin=0.55) == 1
    assert spread_decimals(4.0, value=2.5) == 0  # never below 0
    assert spread_decimals(0.0, value=0.5) == 6  # no spread: nothing moves
    assert spread_decimals(0.0139, value=0.0354) == 2  # 0.0 would print nothing of 0.035


@pytest.mark.parametrize(("spread", "margin"), [(-0.1, 0.1), (float("nan"), 0.1), (float("inf"), 0.1), (0.1, -1.0)])
def test_spread_decimals_rejects_bad_input(spread, margin):
    with pytest.raises(ValueError, match="spread|margin"):
        spread_decimals(spread, value=0.0, margin=margin)


def test_mean_spread_hand_computed():
    values = [0.38, 0.41, 0.43, 0.40, 0.39]  # mean 0.402, population std 0.0172
    assert mean_spread(values) == "0.40 ± 0.02"
    assert mean_spread(values, margin=1 / 3) == "0.4 ± 0.02"  # 0.402 is 0.003 from 0.405
    assert mean_spread(values, ddof=1, sign=True) == "+0.40 ± 0.02"
    assert mean_spread([-0.001, 0.001]) == "0.000 ± 0.001"  # no "-0"
    assert format_spread(-0.0004, 0.19, sign=True) == "+0.0 ± 0.2"
    assert format_spread(1.0, 0.0, most=2) == "1.00 ± 0.00"
    with pytest.raises(ValueError, match="NaN"):
        mean_spread([0.1, float("nan")])


@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=10), st.floats(0.0, 1.0))
def test_mean_spread_prints_the_mean_within_half_a_printed_unit(values, margin):
    mean, std = np.mean(values), np.std(values)
    text = mean_spread(values, margin=margin)
    printed_mean, printed_std = (float(part) for part in text.split(" ± "))
    decimals = spread_decimals(std, value=mean, margin=margin)
    assert decimals in (spread_decimals(std), spread_decimals(std) - 1)
    assert abs(printed_mean - mean) <= 0.5 * 10.0 ** -decimals + 1e-9 * max(1.0, abs(mean))
    assert abs(printed_std - std) <= 0.5 * 10.0 ** -spread_decimals(std) + 1e-9 * max(1.0, std)
    if decimals == spread_decimals(std) < 6 and round(abs(mean), decimals - 1) > 0:
        # the spread's place is kept only when the mean is not within margin * std of a boundary there
        unit = 10.0 ** -decimals
        assert abs((abs(mean) / unit) % 1.0 - 0.5) * unit > margin * std


def test_rounded_line_prints_no_negative_zero():
    v = Verdict(names=("A", "B"), mean_difference=-0.011, low=-0.16, high=0.13, wins=2, n=5)
    assert "mean difference 0.0, 95% CI [-0.2, 0.1]" in v.rounded_line()  # not "-0.0"
    w = Verdict(names=("A", "B"), mean_difference=-0.0029, low=-0.086, high=0.092, wins=1, n=5)
    assert "mean difference 0.00, 95% CI [-0.09, 0.09]" in w.rounded_line()
    u = Verdict(names=("A", "B"), mean_difference=-0.031, low=-0.086, high=0.092, wins=1, n=5)
    assert "mean difference -0.03," in u.rounded_line()
    bound = Verdict(names=("A", "B"), mean_difference=1.1, low=-0.21, high=2.4, wins=6, n=10)
    assert "mean difference 1, 95% CI [0, 2]," in bound.rounded_line()  # the lower bound is not "-0"
