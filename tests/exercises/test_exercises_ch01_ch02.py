"""The exercise checkers of chapters 1 and 2: right answers pass, wrong ones get a hint."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_course.exercises import ch01, ch02
from mtl_course.objective import linear_scalarization_reach, non_dominated_mask, weight_grid

# ---------------------------------------------------------------- chapter 1


def test_pooled_floor_formula():
    assert ch01.pooled_floor(0.5, 0.5, 4) == pytest.approx(0.625)
    assert ch01.pooled_floor(0.0, 1.0, 10) == 0.0
    assert ch01.pooled_floor(1.0, 0.0, 1) == 1.0  # one task: pooling is single-task learning
    with pytest.raises(ValueError):
        ch01.pooled_floor(0.5, 1.5, 4)
    with pytest.raises(ValueError):
        ch01.pooled_floor(0.5, 0.5, 0)


def test_pooled_floor_matches_a_monte_carlo_estimate():
    """E||w_t - w_bar||^2 = (1 - rho)(1 - 1/T) for related_regression's weights."""
    from mtl_course.data.synthetic import related_regression

    rho, T = 0.3, 5
    gaps = []
    for seed in range(300):
        w = related_regression(num_tasks=T, n_per_task=1, dim=8, relatedness=rho, noise=0.0, seed=seed).weights
        gaps.append(np.mean(np.sum((w - w.mean(axis=0)) ** 2, axis=1)))
    assert np.mean(gaps) == pytest.approx(ch01.pooled_floor(0.0, rho, T), rel=0.05)


def test_check_pooled_floor(capsys):
    assert ch01.check_pooled_floor(0.625) is True
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")
    assert ch01.check_pooled_floor(0.375) is False
    assert "noise" in " ".join(capsys.readouterr().out.split())
    assert ch01.check_pooled_floor(0.75) is False  # forgot 1 - 1/T
    assert "1 - 1/T" in " ".join(capsys.readouterr().out.split())
    assert ch01.check_pooled_floor(0.875) is False  # sigma instead of sigma^2
    assert "standard deviation" in " ".join(capsys.readouterr().out.split())
    assert ch01.check_pooled_floor(0.1) is False
    assert " ".join(capsys.readouterr().out.split()).startswith("Not yet")


@pytest.mark.parametrize("answer", ["0.625", None, float("nan"), True, [0.625, 0.1]])
def test_check_pooled_floor_malformed(answer, capsys):
    assert ch01.check_pooled_floor(answer) is False
    assert "finite number" in " ".join(capsys.readouterr().out.split())


def test_check_task_relations(capsys):
    right = {"a": "independent", "b": "dependent", "c": "related", "d": "dependent"}
    assert ch01.check_task_relations(right) is True
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")
    assert ch01.check_task_relations({**right, "d": " Dependent "}) is True  # case and spaces
    capsys.readouterr()
    assert ch01.check_task_relations({**right, "c": "independent"}) is False
    assert "['c']" in " ".join(capsys.readouterr().out.split())
    assert ch01.check_task_relations({"a": "independent"}) is False
    assert "no answer for ['b', 'c', 'd']" in " ".join(capsys.readouterr().out.split())
    assert ch01.check_task_relations({**right, "b": "similar"}) is False
    assert "one of" in " ".join(capsys.readouterr().out.split())
    assert ch01.check_task_relations(["independent"]) is False
    assert "dict" in " ".join(capsys.readouterr().out.split())


# ---------------------------------------------------------------- chapter 2


def test_exercise_points_have_the_intended_structure():
    assert np.flatnonzero(non_dominated_mask(ch02.POINTS)).tolist() == [0, 1, 3, 4, 5]
    reached = set(linear_scalarization_reach(ch02.POINTS, weight_grid(1001)).tolist())
    assert reached == {0, 1, 4, 5}


def test_check_pareto_points(capsys):
    assert ch02.check_pareto_points([0, 1, 3, 4, 5], [0, 1, 4, 5]) is True
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")
    assert ch02.check_pareto_points((5, 4, 3, 1, 0), {0, 1, 4, 5}) is True  # any order, any iterable
    capsys.readouterr()
    assert ch02.check_pareto_points([0, 1, 4, 5], [0, 1, 4, 5]) is False
    assert "no model dominates model 3" in " ".join(capsys.readouterr().out.split())
    assert ch02.check_pareto_points([0, 1, 2, 3, 4, 5], [0, 1, 4, 5]) is False
    assert "another model dominates model 2" in " ".join(capsys.readouterr().out.split())
    assert ch02.check_pareto_points([0, 1, 3, 4, 5], [0, 1, 3, 4, 5]) is False
    assert "no weight picks model 3" in " ".join(capsys.readouterr().out.split())
    assert ch02.check_pareto_points([0, 1, 3, 4, 5], [0, 1, 4]) is False
    assert "some weight picks model 5" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("pareto, supported", [("01345", [0]), ([0, 1.5], [0]), ([0, 9], [0]), (3, [0])])
def test_check_pareto_points_malformed(pareto, supported, capsys):
    assert ch02.check_pareto_points(pareto, supported) is False
    assert " ".join(capsys.readouterr().out.split()).startswith("Not yet: `pareto`")


def test_check_scalarized_minimizers(capsys):
    assert ch02.check_scalarized_minimizers(-1.4, 0.4) is True
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")
    assert ch02.check_scalarized_minimizers(-7 / 5, 2 / 5) is True
    capsys.readouterr()
    assert ch02.check_scalarized_minimizers(-2.0, 0.4) is False
    assert "task 2's own optimum" in " ".join(capsys.readouterr().out.split())
    assert ch02.check_scalarized_minimizers(-1.4, -0.5) is False
    assert "without the factor 4" in " ".join(capsys.readouterr().out.split())
    assert ch02.check_scalarized_minimizers(-1.4, 1.0) is False
    assert "`normalized` is not" in " ".join(capsys.readouterr().out.split())
    assert ch02.check_scalarized_minimizers("x", 0.4) is False
    assert "finite number" in " ".join(capsys.readouterr().out.split())


def test_scalarized_minimizers_reference_values_are_right():
    """Brute-force check of the hand-derived answers of exercise ch2-ex-scales."""
    theta = np.linspace(-3, 3, 600001)
    l1, l2 = (theta - 1) ** 2, 4 * (theta + 2) ** 2
    assert theta[np.argmin(0.5 * l1 + 0.5 * l2)] == pytest.approx(-1.4, abs=1e-4)
    assert theta[np.argmin(0.5 * l1 / 1.0 + 0.5 * l2 / 16.0)] == pytest.approx(0.4, abs=1e-4)


def test_check_grid_size(capsys):
    assert ch02.check_grid_size(1001) is True
    assert "stars and bars" in " ".join(capsys.readouterr().out.split())
    assert ch02.check_grid_size(11**4) is False
    assert "do not sum to one" in " ".join(capsys.readouterr().out.split())
    assert ch02.check_grid_size(50) is False
    assert "stars and bars" in " ".join(capsys.readouterr().out.split())
    assert ch02.check_grid_size(1001.0) is True  # comb() results and integer-valued floats are counts
    capsys.readouterr()
    assert ch02.check_grid_size(1001.5) is False
    assert "whole number" in " ".join(capsys.readouterr().out.split())


def test_grid_size_reference_by_enumeration():
    import itertools

    count = sum(1 for k in itertools.product(range(11), repeat=5) if sum(k) == 10)
    assert count == 1001
