"""Checkers for the exercises of chapter 8, "Gradient conflict".

Each checker prints one message (``Correct``, ``Not yet`` with a hint, or
``Not answered yet`` for the placeholder ``...``) and returns ``True`` or
``False``; reading and comparing answers is :mod:`mtl_course.exercises.grading`.
"""

from __future__ import annotations

import numpy as np

from mtl_course.core import aggregation
from mtl_course.exercises.grading import (
    CLOSE_MESSAGE,
    as_number,
    as_vector,
    closeness,
    feedback,
    grade_function,
    is_placeholder,
    matches,
    not_answered,
)

__all__ = ["G1", "G2", "check_conflict", "check_mgda_direction", "check_mgda_two", "mgda_two"]

#: The two task gradients of exercises ch8-ex-mgda and ch8-ex-conflict.
G1 = np.array([4.0, 0.0])
G2 = np.array([-1.0, 2.0])


def _as_flag(value: object) -> bool | None:
    """True/False, also a numpy or torch boolean scalar; None for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    module = type(value).__module__
    if module.startswith(("torch", "tensorflow")):
        try:
            array = np.asarray(value.numpy() if not module.startswith("torch") else value.detach().cpu().numpy())
        except (AttributeError, TypeError):
            return None
        if array.dtype == np.bool_ and array.size == 1:
            return bool(array.reshape(()))
    return None


def check_conflict(cosine: object, conflict: object) -> bool:
    """Exercise ch8-ex-conflict: the cosine between ``G1`` and ``G2`` and whether they conflict."""
    if is_placeholder(cosine) or is_placeholder(conflict):
        return not_answered()
    value = as_number(cosine)
    if value is None:
        return feedback(False, "give the cosine as one finite number, e.g. check_conflict(0.5, False).")
    flag = _as_flag(conflict)
    if flag is None:
        return feedback(False, "give `conflict` as True or False.")
    expected = float(G1 @ G2 / (np.linalg.norm(G1) * np.linalg.norm(G2)))
    verdict = closeness(value, expected)
    if verdict == "close":
        return feedback(False, "the cosine: " + CLOSE_MESSAGE)
    if verdict == "wrong":
        if matches(value, float(G1 @ G2)):
            return feedback(False, "that is the dot product; divide by both norms.")
        return feedback(False, "the cosine is g1 . g2 / (|g1| |g2|); check the dot product and both norms.")
    if flag != (expected < 0):
        return feedback(False, "the cosine is right; two gradients conflict when their dot product is negative.")
    return feedback(True, "a negative cosine means a step along one task's gradient alone raises the other "
                          "task's loss.")


def check_mgda_direction(direction: object) -> bool:
    """Exercise ch8-ex-mgda: MGDA's direction for the gradients ``G1`` and ``G2``.

    Compared with the two-task closed form
    (:func:`mtl_course.core.aggregation.mgda_two_task_weights`).
    """
    if is_placeholder(direction):
        return not_answered()
    d = as_vector(direction, (2,))
    if d is None:
        return feedback(False, "give the direction as two finite numbers, e.g. [0.5, 1.0].")
    expected = mgda_two(G1, G2)
    verdict = closeness(d, expected)
    if verdict == "right":
        return feedback(True, "both tasks' directional derivatives along d are equal, and equal to |d|^2: "
                              "the step helps both tasks equally.")
    if matches(d, (G1 + G2) / 2):
        return feedback(False, "that is the mean gradient; MGDA takes the shortest point of the segment "
                               "between g1 and g2.")
    J = np.stack([G1, G2])
    gamma = aggregation.mgda_two_task_weights(J @ J.T)[0]
    if matches(d, (1 - gamma) * G1 + gamma * G2):
        return feedback(False, "gamma multiplies g1 and (1 - gamma) multiplies g2; you swapped them.")
    if verdict == "close":
        return feedback(False, CLOSE_MESSAGE)
    if np.isclose(float(d @ d), float(expected @ expected), rtol=1e-3):
        return feedback(False, "the length is right but the direction is not: the min-norm point is "
                               "gamma g1 + (1 - gamma) g2 with gamma in [0, 1].")
    return feedback(False, "use gamma = (g2 - g1) . g2 / |g1 - g2|^2, clipped to [0, 1], and "
                           "d = gamma g1 + (1 - gamma) g2.")


# ---------------------------------------------------------------- graded function (exercise ch8-ex-mgda-code)


def mgda_two(g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
    """The reference: MGDA's min-norm direction of two gradients, ``gamma g1 + (1 - gamma) g2``."""
    J = np.stack([np.asarray(g1, dtype=np.float64), np.asarray(g2, dtype=np.float64)])
    return aggregation.mgda_two_task_weights(J @ J.T) @ J


def _unclipped(g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
    gamma = float((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)))
    return gamma * g1 + (1 - gamma) * g2


def _swapped(g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
    gamma = float(np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0, 1))
    return (1 - gamma) * g1 + gamma * g2


def _mean(g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
    return (g1 + g2) / 2


def _mgda_cases(seed: int = 808) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    cases = [(G1.copy(), G2.copy())]
    for dim in (2, 3, 5, 8):
        cases.append((rng.normal(size=dim), rng.normal(size=dim)))
    cases.append((np.array([1.0, 0.1, 0.0]), np.array([4.0, 0.5, 1.0])))  # g1 is the min-norm point: gamma = 1
    cases.append((np.array([5.0, 2.0]), np.array([1.0, 0.5])))  # g2 is the min-norm point: gamma = 0
    return cases


def check_mgda_two(fn: object, framework: str = "torch") -> bool:
    """Exercise ch8-ex-mgda-code: ``fn(g1, g2)`` returns MGDA's direction for two gradient vectors,
    ``gamma g1 + (1 - gamma) g2`` with ``gamma`` the min-norm weight clipped to [0, 1]. Graded on
    hidden pairs (some with gamma at 0 or 1) as torch or TensorFlow float32 tensors or numpy arrays."""
    return grade_function(
        fn, mgda_two, _mgda_cases(), ("g1", "g2"), framework=framework, what="your `mgda_two`",
        mistakes=[(_unclipped, "Clip gamma to [0, 1]: when one gradient is itself the shortest point of the "
                               "segment, MGDA returns it."),
                  (_swapped, "gamma multiplies g1 and (1 - gamma) multiplies g2."),
                  (_mean, "That is the mean gradient, gamma = 1/2 always.")],
        success="the min-norm point of the segment; at gamma = 0 or 1 one gradient already helps the other task.",
    )
