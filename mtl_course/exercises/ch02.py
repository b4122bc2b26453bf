"""Checkers for the exercises of chapter 2, "The multi-task objective".

Each checker prints a short message (``Correct`` or ``Not yet``, with a hint)
and returns ``True`` or ``False``. Malformed answers (text where a number is
expected, say) get a message that explains the expected form instead of an
exception.
"""

from __future__ import annotations

from math import comb
from numbers import Integral, Real

import numpy as np

from mtl_course.objective import linear_scalarization_reach, non_dominated_mask, two_task_weights

__all__ = ["POINTS", "check_pareto_points", "check_scalarized_minimizers", "check_grid_size"]

#: Loss pairs (L1, L2) of eight models, exercise ch2-ex-pareto.
POINTS = np.array([[1, 9], [2, 6], [3, 6], [4, 4.5], [6, 2], [9, 1], [5, 5], [9, 1.5]])

# exercise ch2-ex-scales: L1 = (theta - 1)^2, L2 = 4 (theta + 2)^2, theta_0 = 0
_PLAIN_MINIMIZER = -1.4
_NORMALIZED_MINIMIZER = 0.4

# exercise ch2-ex-grid
_GRID_TASKS, _GRID_STEPS = 5, 10


def _say(correct: bool, message: str) -> bool:
    print(("Correct: " if correct else "Not yet: ") + message)
    return correct


def _as_index_set(answer: object) -> set[int] | None:
    """The answer as a set of point indices, or None when it is not one."""
    if isinstance(answer, (str, bytes)) or not hasattr(answer, "__iter__"):
        return None
    items = list(answer)
    if not all(isinstance(i, Integral) and not isinstance(i, bool) for i in items):
        return None
    return {int(i) for i in items}


def check_pareto_points(pareto: object, supported: object) -> bool:
    """Exercise ch2-ex-pareto: the Pareto optimal models among :data:`POINTS`, and
    those a linear scalarization reaches.

    Args:
        pareto: indices (0 to 7) of the Pareto optimal models, e.g. ``[0, 1]``.
        supported: indices of the Pareto optimal models that minimize
            ``alpha L1 + (1 - alpha) L2`` for some ``alpha`` in [0, 1].
    """
    raw = {"pareto": pareto, "supported": supported}
    answers = {name: _as_index_set(value) for name, value in raw.items()}
    for name, value in answers.items():
        if value is None:
            return _say(False, f"`{name}` should be a list of model indices (integers 0 to 7), got {raw[name]!r}.")
        if not value <= set(range(len(POINTS))):
            return _say(False, f"`{name}` contains indices outside 0..7: {sorted(value - set(range(len(POINTS))))}.")
    expected_pareto = set(np.flatnonzero(non_dominated_mask(POINTS)).tolist())
    expected_supported = set(linear_scalarization_reach(POINTS, two_task_weights(1001)).tolist())
    if answers["pareto"] != expected_pareto:
        extra = sorted(answers["pareto"] - expected_pareto)
        missing = sorted(expected_pareto - answers["pareto"])
        hints = []
        if extra:
            hints.append(f"{extra} {'is' if len(extra) == 1 else 'are'} dominated by another model")
        if missing:
            hints.append(f"no model dominates {missing}")
        return _say(False, "the Pareto set is not right: " + "; ".join(hints) + ".")
    if answers["supported"] != expected_supported:
        extra = sorted(answers["supported"] - expected_supported)
        missing = sorted(expected_supported - answers["supported"])
        hints = []
        if extra:
            hints.append(f"no weight picks {extra}: compare with the chord between its neighbours on the front")
        if missing:
            hints.append(f"some weight picks {missing}")
        return _say(False, "the Pareto set is right, the reachable set is not: " + "; ".join(hints) + ".")
    return _say(True, f"Pareto optimal {sorted(expected_pareto)}; reached by a weighted sum "
                f"{sorted(expected_supported)}. Model 3 is Pareto optimal but lies above the chord "
                "between models 1 and 4, so no weight selects it.")


def _as_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(float(value)):
        return None
    return float(value)


def check_scalarized_minimizers(plain: object, normalized: object) -> bool:
    """Exercise ch2-ex-scales: the minimizers of the equal-weight sum, without and
    with normalization by the losses at ``theta_0 = 0``."""
    values = {"plain": _as_number(plain), "normalized": _as_number(normalized)}
    for name, value in values.items():
        if value is None:
            return _say(False, f"`{name}` should be a finite number.")
    if not np.isclose(values["plain"], _PLAIN_MINIMIZER, atol=1e-6):
        hint = " That is task 2's own optimum: the weights are 1/2 each, not 0 and 1." if np.isclose(values["plain"], -2) else ""
        return _say(False, "the equal-weight minimizer is wrong: set the derivative of "
                    "(theta - 1)^2 / 2 + 2 (theta + 2)^2 to zero." + hint)
    if not np.isclose(values["normalized"], _NORMALIZED_MINIMIZER, atol=1e-6):
        hint = (" -0.5 is the minimizer without the factor 4, but normalization divides by each initial "
                "loss, L1(0) = 1 and L2(0) = 16." if np.isclose(values["normalized"], -0.5) else
                " Divide L1 by L1(0) = 1 and L2 by L2(0) = 16 first.")
        return _say(False, "the equal-weight minimizer is right (-1.4), the normalized one is not." + hint)
    return _say(True, "-1.4 without normalization, 0.4 with it: the scale of task 2's loss no longer "
                "decides the trade-off.")


def check_grid_size(answer: object) -> bool:
    """Exercise ch2-ex-grid: the number of weight vectors for 5 tasks on a grid of step 1/10."""
    if isinstance(answer, bool) or not isinstance(answer, Integral):
        return _say(False, f"the answer should be a whole number of training runs, got {answer!r}.")
    expected = comb(_GRID_STEPS + _GRID_TASKS - 1, _GRID_TASKS - 1)
    if int(answer) == expected:
        return _say(True, f"C(14, 4) = {expected} training runs, against 11 for two tasks.")
    if int(answer) == (_GRID_STEPS + 1) ** (_GRID_TASKS - 1) or int(answer) == (_GRID_STEPS + 1) ** _GRID_TASKS:
        return _say(False, "that counts weight vectors that do not sum to one. Count the ways to split "
                    "m = 10 steps among T = 5 tasks.")
    return _say(False, "count the ways to write 10 as an ordered sum of 5 non-negative integers "
                "(stars and bars).")
