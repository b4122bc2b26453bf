"""Checkers for the exercises of chapter 10, "Task relationships".

Each checker prints a short message (``Correct`` or ``Not yet``, with a hint)
and returns ``True`` or ``False``. Malformed answers get a message that
explains the expected form instead of an exception.
"""

from __future__ import annotations

import math

import numpy as np

from mtl_course.core.affinity import group_tasks, grouping_score, lookahead_affinity

__all__ = ["LOSS_BEFORE", "LOSS_AFTER", "Z4", "check_affinity", "check_grouping"]

#: Exercise ch10-ex-affinity: the losses of tasks (0, 1) on a batch ...
LOSS_BEFORE = np.array([0.50, 0.80])
#: ... and after the lookahead step on task 0 (row 0) and on task 1 (row 1).
LOSS_AFTER = np.array([[0.40, 0.84],
                       [0.45, 0.60]])

#: Exercise ch10-ex-grouping: the mean affinity of four tasks, ``Z4[i, j]`` onto ``j`` from ``i``.
Z4 = np.array([[0.00, 0.06, -0.02, 0.01],
               [0.04, 0.00, -0.03, -0.01],
               [-0.02, -0.04, 0.00, 0.05],
               [0.00, -0.01, 0.03, 0.00]])


def _say(correct: bool, message: str) -> bool:
    print(("Correct: " if correct else "Not yet: ") + message)
    return correct


def check_affinity(z_01: object, z_10: object) -> bool:
    """Exercise ch10-ex-affinity: the affinities of task 0 onto task 1 and of task 1 onto task 0."""
    values = []
    for value in (z_01, z_10):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(value)):
            return _say(False, "give two finite numbers, e.g. check_affinity(0.1, -0.2)")
        values.append(float(value))
    Z = lookahead_affinity(LOSS_BEFORE, LOSS_AFTER)
    if math.isclose(values[0], Z[0, 1], abs_tol=1e-3) and math.isclose(values[1], Z[1, 0], abs_tol=1e-3):
        return _say(True, f"Z(0->1) = {Z[0, 1]:.3f} (task 0's step raises task 1's loss), "
                          f"Z(1->0) = {Z[1, 0]:.3f} (task 1's step helps task 0): affinity is not symmetric.")
    if math.isclose(values[0], Z[1, 0], abs_tol=1e-3) and math.isclose(values[1], Z[0, 1], abs_tol=1e-3):
        return _say(False, "the two values are swapped: Z(i->j) divides task j's loss after the step on i "
                           "by task j's loss before it.")
    return _say(False, "Z(i->j) = 1 - L_j(after the step on task i) / L_j(before); "
                       "row i of LOSS_AFTER holds the losses after the step on task i.")


def check_grouping(groups: object) -> bool:
    """Exercise ch10-ex-grouping: the partition of the four tasks of ``Z4`` into at most two groups
    with the largest total affinity."""
    try:
        parsed = [sorted(int(i) for i in g) for g in groups]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return _say(False, "give the groups as lists of task indices, e.g. [[0, 1], [2, 3]]")
    if sorted(i for g in parsed for i in g) != [0, 1, 2, 3] or any(not g for g in parsed):
        return _say(False, "every task 0..3 must appear in exactly one non-empty group")
    if len(parsed) > 2:
        return _say(False, "at most two groups (two networks) are allowed")
    best = group_tasks(Z4, max_groups=2)
    score = grouping_score(Z4, parsed)
    if math.isclose(score, best.score, abs_tol=1e-9):
        return _say(True, f"total affinity {score:.3f}, the best of the 8 partitions into at most two groups.")
    return _say(False, f"this partition scores {score:.3f}; another one scores more. Score each group by "
                       "the mean affinity onto each member from the other members.")
