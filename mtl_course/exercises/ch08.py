"""Checkers for the exercises of chapter 8, "Gradient conflict".

Each checker prints a short message (``Correct`` or ``Not yet``, with a hint)
and returns ``True`` or ``False``. Malformed answers (text where numbers are
expected, wrong lengths) get a message that explains the expected form
instead of an exception.
"""

from __future__ import annotations

import math

import numpy as np

from mtl_course.core import aggregation

__all__ = ["G1", "G2", "check_mgda_direction", "check_conflict"]

#: The two task gradients of exercises ch8-ex-mgda and ch8-ex-conflict.
G1 = np.array([3.0, 1.0])
G2 = np.array([-2.0, 2.0])


def _say(correct: bool, message: str) -> bool:
    print(("Correct: " if correct else "Not yet: ") + message)
    return correct


def _vector(value: object, length: int) -> np.ndarray | None:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if array.shape != (length,) or not np.all(np.isfinite(array)):
        return None
    return array


def check_conflict(cosine: object, conflict: object) -> bool:
    """Exercise ch8-ex-conflict: the cosine between ``G1`` and ``G2`` and whether they conflict."""
    if isinstance(cosine, bool) or not isinstance(cosine, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(cosine)):
        return _say(False, "give the cosine as a finite number, e.g. check_conflict(0.5, False)")
    if not isinstance(conflict, (bool, np.bool_)):
        return _say(False, "give `conflict` as True or False")
    expected = float(G1 @ G2 / (np.linalg.norm(G1) * np.linalg.norm(G2)))
    if not math.isclose(float(cosine), expected, abs_tol=1e-3):
        return _say(False, "the cosine is g1 . g2 / (|g1| |g2|); check the dot product and both norms.")
    if bool(conflict) != (expected < 0):
        return _say(False, "the cosine is right; two gradients conflict when their dot product is negative.")
    return _say(True, f"cos = {expected:.4f} < 0: a step along the mean gradient can hurt one task.")


def check_mgda_direction(direction: object) -> bool:
    """Exercise ch8-ex-mgda: MGDA's direction for the gradients ``G1`` and ``G2``.

    Compared with the two-task closed form
    (:func:`mtl_course.core.aggregation.mgda_two_task_weights`).
    """
    d = _vector(direction, 2)
    if d is None:
        return _say(False, "give the direction as two finite numbers, e.g. [0.5, 1.0]")
    J = np.stack([G1, G2])
    weights = aggregation.mgda_two_task_weights(J @ J.T)
    expected = weights @ J
    if np.allclose(d, expected, atol=1e-3):
        return _say(True, f"gamma = {weights[0]:.4f}; d = {np.round(expected, 4).tolist()}, and "
                          f"g1 . d = g2 . d = {float(G1 @ expected):.4f} = |d|^2.")
    if np.allclose(d, J.mean(axis=0), atol=1e-3):
        return _say(False, "that is the mean gradient; MGDA takes the shortest point of the segment "
                           "between g1 and g2.")
    if np.isclose(float(d @ d), float(expected @ expected), rtol=1e-3):
        return _say(False, "the length is right but the direction is not: the min-norm point is "
                           "gamma g1 + (1 - gamma) g2 with gamma in [0, 1].")
    return _say(False, "use gamma = (g2 - g1) . g2 / |g1 - g2|^2, clipped to [0, 1], and "
                       "d = gamma g1 + (1 - gamma) g2.")
