"""Checkers for the exercises of chapter 2, "The multi-task objective".

Each checker prints one message (``Correct``, ``Not yet`` with a hint, or
``Not answered yet`` for the placeholder ``...``) and returns ``True`` or
``False``; reading and comparing answers is :mod:`mtl_course.exercises.grading`.
"""

from __future__ import annotations

from math import comb

import numpy as np

from mtl_course.exercises.grading import (
    CLOSE_MESSAGE,
    as_count,
    as_index_set,
    as_number,
    closeness,
    feedback,
    grade_function,
    is_placeholder,
    matches,
    not_answered,
)
from mtl_course.objective import linear_scalarization_reach, non_dominated_mask, weight_grid

__all__ = ["POINTS", "check_pareto_points", "check_scalarized_minimizers", "check_grid_size",
           "check_non_dominated"]

#: Loss pairs (L1, L2) of eight models, exercise ch2-ex-pareto.
POINTS = np.array([[1, 9], [2, 6], [3, 6], [4, 4.5], [6, 2], [9, 1], [5, 5], [9, 1.5]])

# exercise ch2-ex-scales: L1 = (theta - 1)^2, L2 = 4 (theta + 2)^2, theta_0 = 0
_PLAIN_MINIMIZER = -1.4
_NORMALIZED_MINIMIZER = 0.4

# exercise ch2-ex-grid
_GRID_TASKS, _GRID_STEPS = 5, 10


def _plural(items: list[int]) -> str:
    return f"model{'s' if len(items) > 1 else ''} {', '.join(map(str, items))}"


def check_pareto_points(pareto: object, supported: object) -> bool:
    """Exercise ch2-ex-pareto: the Pareto optimal models among :data:`POINTS`, and
    those a linear scalarization reaches.

    Args:
        pareto: the Pareto optimal models, as indices (0 to 7, e.g. ``[0, 1]``) or
            as a boolean mask of length 8 (what ``non_dominated_mask`` returns).
        supported: the Pareto optimal models that minimize
            ``alpha L1 + (1 - alpha) L2`` for some ``alpha`` in [0, 1], in the same form.
    """
    if is_placeholder(pareto) or is_placeholder(supported):
        return not_answered()
    answers = {}
    for name, value in (("pareto", pareto), ("supported", supported)):
        indices, problem = as_index_set(value, len(POINTS))
        if indices is None:
            return feedback(False, f"`{name}`: {problem}.")
        answers[name] = indices
    expected_pareto = set(np.flatnonzero(non_dominated_mask(POINTS)).tolist())
    expected_supported = set(linear_scalarization_reach(POINTS, weight_grid(1001)).tolist())
    if answers["pareto"] != expected_pareto:
        extra = sorted(answers["pareto"] - expected_pareto)
        missing = sorted(expected_pareto - answers["pareto"])
        hints = []
        if extra:
            hints.append(f"another model dominates {_plural(extra)}")
        if missing:
            hints.append(f"no model dominates {_plural(missing)}")
        return feedback(False, "the Pareto set is not right: " + "; ".join(hints) + ".")
    not_optimal = sorted(answers["supported"] - expected_pareto)
    if not_optimal:
        return feedback(False, f"the Pareto set is right; {_plural(not_optimal)} in `supported` "
                               f"{'is' if len(not_optimal) == 1 else 'are'} not Pareto optimal, and the "
                               "question asks which Pareto optimal models a weighted sum reaches.")
    if answers["supported"] != expected_supported:
        extra = sorted(answers["supported"] - expected_supported)
        missing = sorted(expected_supported - answers["supported"])
        hints = []
        if extra:
            hints.append(f"no weight picks {_plural(extra)}: compare with the chord between "
                         f"{'its' if len(extra) == 1 else 'their'} neighbours on the front")
        if missing:
            hints.append(f"some weight picks {_plural(missing)}")
        return feedback(False, "the Pareto set is right, the reachable set is not: " + "; ".join(hints) + ".")
    return feedback(True, "a Pareto optimal model can lie above the chord between its neighbours on the "
                          "front, and then no weight selects it.")


def check_scalarized_minimizers(plain: object, normalized: object) -> bool:
    """Exercise ch2-ex-scales: the minimizers of the equal-weight sum, without and
    with normalization by the losses at ``theta_0 = 0``."""
    if is_placeholder(plain) or is_placeholder(normalized):
        return not_answered()
    values = {"plain": as_number(plain), "normalized": as_number(normalized)}
    for name, value in values.items():
        if value is None:
            return feedback(False, f"`{name}` should be one finite number, got {locals()[name]!r}.")
    plain_verdict = closeness(values["plain"], _PLAIN_MINIMIZER)
    if plain_verdict != "right":
        if matches(values["plain"], -2):
            hint = " That is task 2's own optimum: the weights are 1/2 each, not 0 and 1."
        elif plain_verdict == "close":
            hint = " " + CLOSE_MESSAGE
        else:
            hint = ""
        return feedback(False, "the equal-weight minimizer `plain` is not right: set the derivative of "
                               "(theta - 1)^2 / 2 + 2 (theta + 2)^2 to zero." + hint)
    normalized_verdict = closeness(values["normalized"], _NORMALIZED_MINIMIZER)
    if normalized_verdict != "right":
        if matches(values["normalized"], -0.5):
            hint = (" That is the minimizer without the factor 4, but normalization divides by each initial "
                    "loss, L1(0) and L2(0).")
        elif normalized_verdict == "close":
            hint = " " + CLOSE_MESSAGE
        else:
            hint = " Divide each loss by its value at theta_0 = 0 first."
        return feedback(False, "`plain` is right, `normalized` is not." + hint)
    return feedback(True, "after normalization the scale of task 2's loss no longer decides the trade-off "
                          "(but how far theta_0 was from each optimum now does).")


def check_grid_size(answer: object) -> bool:
    """Exercise ch2-ex-grid: the number of weight vectors for 5 tasks on a grid of step 1/10."""
    if is_placeholder(answer):
        return not_answered()
    value = as_count(answer)
    if value is None:
        return feedback(False, f"the answer should be a whole number of training runs, got {answer!r}.")
    expected = comb(_GRID_STEPS + _GRID_TASKS - 1, _GRID_TASKS - 1)
    if value == expected:
        return feedback(True, "stars and bars: the grid grows combinatorially with the number of tasks, "
                              "against 11 runs for two tasks.")
    if value in ((_GRID_STEPS + 1) ** (_GRID_TASKS - 1), (_GRID_STEPS + 1) ** _GRID_TASKS):
        return feedback(False, "that counts weight vectors that do not sum to one. Count the ways to split "
                               "m = 10 steps among T = 5 tasks.")
    return feedback(False, "count the ways to write 10 as an ordered sum of 5 non-negative integers "
                           "(stars and bars).")


# ---------------------------------------------------------------- graded function (exercise ch2-ex-mask)


def _weak_mask(points: np.ndarray) -> np.ndarray:
    """A typical mistake: dominated only when another point is strictly better in every loss."""
    points = np.asarray(points, dtype=float)
    strictly = np.all(points[None, :, :] < points[:, None, :], axis=2)
    return ~np.any(strictly, axis=1)


def _drops_duplicates(points: np.ndarray) -> np.ndarray:
    """A typical mistake: "no worse everywhere" without "better somewhere", so equal points remove each other."""
    points = np.asarray(points, dtype=float)
    no_worse = np.all(points[None, :, :] <= points[:, None, :], axis=2)
    np.fill_diagonal(no_worse, False)
    return ~np.any(no_worse, axis=1)


def _mask_cases(seed: int = 202) -> list[tuple[np.ndarray]]:
    rng = np.random.default_rng(seed)
    cases = [(POINTS.astype(float),)]
    for n, tasks in ((6, 2), (10, 2), (12, 3), (15, 3)):
        points = rng.integers(0, 6, size=(n, tasks)).astype(float)  # small integers: ties and duplicates
        cases.append((points,))
    cases.append((np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 3.0], [2.0, 1.0]]),))
    return cases


def check_non_dominated(fn: object, framework: str = "numpy") -> bool:
    """Exercise ch2-ex-mask: ``fn(points)`` returns the boolean mask of the rows of ``points``
    (shape ``(n, T)``, one loss vector per row) that no other row dominates.

    Graded on hidden sets of loss vectors with ties and duplicated rows.
    """
    return grade_function(
        fn, non_dominated_mask, _mask_cases(), ("points",), framework=framework,
        what="your `non_dominated`",
        mistakes=[(_weak_mask, "You keep points that another point beats in one loss and ties in the other: "
                               "domination needs 'no worse in every loss', and better in at least one."),
                  (_drops_duplicates, "Two equal points do not dominate each other: domination also needs "
                                      "'strictly better in at least one loss'.")],
        success="domination is 'no worse everywhere and better somewhere'; equal points keep each other.",
    )
