"""Checkers for the exercises of chapter 11, "Multi-task learning, transfer and meta-learning".

Each checker prints a short message (``Correct`` or ``Not yet``, with a hint)
and returns ``True`` or ``False``. Malformed answers get a message that
explains the expected form instead of an exception.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from mtl_course.core.meta import reptile_update

__all__ = ["REPTILE_EXERCISE", "check_reptile_step", "expected_reptile_step"]

#: Exercise ch11-ex-reptile: a linear model ``y = w x + b`` at ``w = b = 0``, two tasks of one
#: example each, one inner SGD step on the squared error, one Reptile update.
REPTILE_EXERCISE = {
    "theta": (0.0, 0.0),  # (w, b)
    "tasks": (((1.0,), (2.0,)), ((1.0,), (-1.0,))),  # ((x,), (y,)) per task
    "inner_steps": 1,
    "inner_lr": 0.25,
    "outer_lr": 0.4,
}


def _say(correct: bool, message: str) -> bool:
    print(("Correct: " if correct else "Not yet: ") + message)
    return correct


def _inner(theta: np.ndarray, x: np.ndarray, y: np.ndarray, steps: int, lr: float, sign: float = 1.0) -> np.ndarray:
    """Full-batch SGD on the mean squared error of ``y = w x + b`` (``sign=-1``: ascent, for a hint)."""
    w, b = theta
    for _ in range(steps):
        residual = w * x + b - y
        w, b = w - sign * lr * 2 * np.mean(residual * x), b - sign * lr * 2 * np.mean(residual)
    return np.array([w, b])


def expected_reptile_step(sequential: bool = False, sign: float = 1.0) -> tuple[float, float]:
    """The answer ``(w, b)`` of exercise ch11-ex-reptile, from :func:`mtl_course.core.meta.reptile_update`.

    ``sequential=True`` and ``sign=-1`` give two classic mistakes (the tasks
    adapted one after the other without a reset; gradient ascent), used for hints.
    """
    e = REPTILE_EXERCISE
    theta = np.array(e["theta"])
    adapted, start = [], theta
    for x, y in e["tasks"]:
        phi = _inner(start, np.array(x), np.array(y), e["inner_steps"], e["inner_lr"], sign)
        adapted.append([phi])
        start = phi if sequential else theta
    if sequential:
        adapted = [adapted[-1]]
    (new,) = reptile_update([theta], adapted, e["outer_lr"])
    return float(new[0]), float(new[1])


def _pair(answer: object) -> tuple[float, float] | None:
    if isinstance(answer, (str, bytes)) or not hasattr(answer, "__len__") or len(answer) != 2:
        return None
    if not all(isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v)) for v in answer):
        return None
    return float(answer[0]), float(answer[1])


def check_reptile_step(answer: object) -> bool:
    """Exercise ch11-ex-reptile: the new ``(w, b)`` after one Reptile step on :data:`REPTILE_EXERCISE`."""
    pair = _pair(answer)
    if pair is None:
        return _say(False, f"give the new weights as a pair of finite numbers (w, b), got {answer!r}.")
    e = REPTILE_EXERCISE
    target = np.array(expected_reptile_step())
    mean_phi = target / e["outer_lr"]  # theta = 0, so theta_new = eps * mean(phi)
    value, tol = np.array(pair), 1e-3
    if np.allclose(value, target, atol=tol):
        return _say(True, f"(w, b) = ({target[0]:.3f}, {target[1]:.3f}): the two tasks pull the weights "
                          "to phi_1 = (1, 1) and phi_2 = (-0.5, -0.5); Reptile moves theta by eps = 0.4 "
                          "towards their mean (0.25, 0.25).")
    if np.allclose(value, mean_phi, atol=tol):
        return _say(False, "that is the mean of the adapted weights: the outer step moves only a fraction "
                           "eps of the way towards it.")
    if np.allclose(value, 2 * target, atol=tol):
        return _say(False, "the outer step averages phi_i - theta over the tasks; you summed them.")
    if np.allclose(value, np.array(expected_reptile_step(sequential=True)), atol=tol):
        return _say(False, "each task's inner loop starts again from theta; you started task 2 from task 1's "
                           "adapted weights (that is plain SGD on the tasks one after the other).")
    if np.allclose(value, np.array(expected_reptile_step(sign=-1.0)), atol=tol):
        return _say(False, "SGD steps go against the gradient: phi = theta - alpha * grad.")
    return _say(False, "adapt each task from theta with one SGD step (gradient of (w x + b - y)^2 is "
                       "2 (w x + b - y) (x, 1)), average phi_i - theta, and move theta by eps times that.")
