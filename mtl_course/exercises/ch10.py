"""Checkers for the exercises of chapter 10, "Task relationships".

Each checker prints one message (``Correct``, ``Not yet`` with a hint, or
``Not answered yet`` for the placeholder ``...``) and returns ``True`` or
``False``; reading and comparing answers is :mod:`mtl_course.exercises.grading`.
"""

from __future__ import annotations

import math

import numpy as np

from mtl_course.core.affinity import group_tasks, grouping_score, lookahead_affinity
from mtl_course.exercises.grading import (
    CLOSE_MESSAGE,
    as_number,
    closeness,
    feedback,
    grade_function,
    is_placeholder,
    matches,
    not_answered,
)

__all__ = ["LOSS_BEFORE", "LOSS_AFTER", "Z4", "check_affinity", "check_affinity_function", "check_grouping"]

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


def check_affinity(z_01: object, z_10: object) -> bool:
    """Exercise ch10-ex-affinity: the affinities of task 0 onto task 1 and of task 1 onto task 0."""
    if is_placeholder(z_01) or is_placeholder(z_10):
        return not_answered()
    values = [as_number(z_01), as_number(z_10)]
    if any(v is None for v in values):
        return feedback(False, "give two finite numbers, e.g. check_affinity(0.1, -0.2).")
    Z = lookahead_affinity(LOSS_BEFORE, LOSS_AFTER)
    expected = np.array([Z[0, 1], Z[1, 0]])
    verdict = closeness(values, expected)
    if verdict == "right":
        return feedback(True, "one task's step can help the other while the other's step hurts it: affinity "
                              "is not symmetric.")
    if matches(values, expected[::-1]):
        return feedback(False, "the two values are swapped: Z(i->j) divides task j's loss after the step on i "
                               "by task j's loss before it.")
    if matches(values, -expected):
        return feedback(False, "the signs are reversed: Z(i->j) = 1 - L_j(after) / L_j(before) is positive when "
                               "the step on i lowers task j's loss.")
    if verdict == "close":
        return feedback(False, CLOSE_MESSAGE)
    wrong = [name for name, v, e in zip(("z_01", "z_10"), values, expected) if closeness(v, e) != "right"]
    return feedback(False, f"{' and '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} off: Z(i->j) = "
                           "1 - L_j(after the step on task i) / L_j(before); row i of LOSS_AFTER holds the "
                           "losses after the step on task i.")


def check_grouping(groups: object) -> bool:
    """Exercise ch10-ex-grouping: the partition of the four tasks of ``Z4`` into at most two groups
    with the largest total affinity."""
    if is_placeholder(groups):
        return not_answered()
    try:
        parsed = [sorted(int(i) for i in g) for g in groups]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return feedback(False, "give the groups as lists of task indices, e.g. [[0, 1], [2, 3]]")
    if sorted(i for g in parsed for i in g) != [0, 1, 2, 3] or any(not g for g in parsed):
        return feedback(False, "every task 0..3 must appear in exactly one non-empty group")
    if len(parsed) > 2:
        return feedback(False, "at most two groups (two networks) are allowed")
    best = group_tasks(Z4, max_groups=2)
    score = grouping_score(Z4, parsed)
    if math.isclose(score, best.score, abs_tol=1e-9):
        return feedback(True, "no other partition into at most two groups has a larger total affinity.")
    return feedback(False, f"this partition scores {score:.3f}; another one scores more. Score each group by "
                       "the mean affinity onto each member from the other members.")


# ---------------------------------------------------------------- graded function (exercise ch10-ex-affinity-code)


def _affinity_cases(seed: int = 1010) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    cases = [(LOSS_BEFORE.copy(), LOSS_AFTER.copy())]
    for tasks in (2, 3, 4, 6):
        before = rng.uniform(0.2, 3.0, size=tasks)
        cases.append((before, before * rng.uniform(0.7, 1.2, size=(tasks, tasks))))
    return cases


def check_affinity_function(fn: object) -> bool:
    """Exercise ch10-ex-affinity-code: ``fn(loss_before, loss_after)`` returns the lookahead affinity
    matrix ``Z[i, j] = 1 - loss_after[i, j] / loss_before[j]`` (``loss_after`` row ``i``: the losses
    after the step on task ``i``). Graded on hidden losses of 2 to 6 tasks."""
    return grade_function(
        fn, lookahead_affinity, _affinity_cases(), ("loss_before", "loss_after"), what="your `lookahead_affinity`",
        mistakes=[(lambda b, a: lookahead_affinity(b, a).T, "Row i is the task that took the step, column j the "
                                                           "task whose loss is measured; you transposed Z."),
                  (lambda b, a: 1 - np.asarray(a) / np.asarray(b)[:, None],
                   "Divide by the loss of the task that is measured (column j), not of the task that stepped."),
                  (lambda b, a: -lookahead_affinity(b, a), "Z(i->j) = 1 - after / before: positive when the "
                                                          "step helps.")],
        success="row i says how a step on task i changes every task's loss, relative to that task's loss.",
    )
