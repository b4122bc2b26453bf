"""Checkers for the exercises of chapter 11, "Multi-task learning, transfer and meta-learning".

Each checker prints one message (``Correct``, ``Not yet`` with a hint, or
``Not answered yet`` for the placeholder ``...``) and returns ``True`` or
``False``; reading and comparing answers is :mod:`mtl_course.exercises.grading`.
"""

from __future__ import annotations

import numpy as np

from mtl_course.core.meta import reptile_update
from mtl_course.exercises.grading import (
    CLOSE_MESSAGE,
    as_vector,
    closeness,
    feedback,
    grade_function,
    is_placeholder,
    matches,
    not_answered,
)

__all__ = ["REPTILE_EXERCISE", "check_reptile_step", "check_reptile_function", "expected_reptile_step",
           "reptile_outer_step"]

#: Exercise ch11-ex-reptile: a linear model ``y = w x + b`` at ``w = b = 0``, two tasks of one
#: example each, one inner SGD step on the squared error, one Reptile update.
REPTILE_EXERCISE = {
    "theta": (0.0, 0.0),  # (w, b)
    "tasks": (((1.0,), (2.0,)), ((1.0,), (-1.0,))),  # ((x,), (y,)) per task
    "inner_steps": 1,
    "inner_lr": 0.25,
    "outer_lr": 0.4,
}


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


def check_reptile_step(answer: object) -> bool:
    """Exercise ch11-ex-reptile: the new ``(w, b)`` after one Reptile step on :data:`REPTILE_EXERCISE`."""
    if is_placeholder(answer):
        return not_answered()
    value = as_vector(answer, (2,))
    if value is None:
        return feedback(False, f"give the new weights as a pair of finite numbers (w, b), got {answer!r}.")
    e = REPTILE_EXERCISE
    target = np.array(expected_reptile_step())
    mean_phi = target / e["outer_lr"]  # theta = 0, so theta_new = eps * mean(phi)
    verdict = closeness(value, target)
    if verdict == "right":
        return feedback(True, "each task pulls the weights towards its own adapted weights; Reptile moves "
                              "theta a fraction eps of the way towards their mean.")
    if matches(value, mean_phi):
        return feedback(False, "that is the mean of the adapted weights: the outer step moves only a fraction "
                               "eps of the way towards it.")
    if matches(value, 2 * target):
        return feedback(False, "the outer step averages phi_i - theta over the tasks; you summed them.")
    if matches(value, np.array(expected_reptile_step(sequential=True))):
        return feedback(False, "each task's inner loop starts again from theta; you started task 2 from task 1's "
                               "adapted weights (that is plain SGD on the tasks one after the other).")
    if matches(value, np.array(expected_reptile_step(sign=-1.0))):
        return feedback(False, "SGD steps go against the gradient: phi = theta - alpha * grad.")
    if verdict == "close":
        return feedback(False, CLOSE_MESSAGE)
    return feedback(False, "adapt each task from theta with one SGD step (gradient of (w x + b - y)^2 is "
                           "2 (w x + b - y) (x, 1)), average phi_i - theta, and move theta by eps times that.")


# ---------------------------------------------------------------- graded function (exercise ch11-ex-reptile-code)


def reptile_outer_step(theta: np.ndarray, adapted: np.ndarray, outer_lr: float) -> np.ndarray:
    """The reference: :func:`mtl_course.core.meta.reptile_update` for one flat parameter vector
    ``theta`` (``(P,)``) and the tasks' adapted vectors as the rows of ``adapted`` (``(n, P)``)."""
    return reptile_update([theta], [[phi] for phi in np.asarray(adapted, dtype=np.float64)], outer_lr)[0]


def _reptile_cases(seed: int = 1111) -> list[tuple[np.ndarray, np.ndarray, float]]:
    rng = np.random.default_rng(seed)
    cases = [(np.zeros(2), np.array([[1.0, 1.0], [-0.5, -0.5]]), 0.4)]
    for tasks, size, eps in ((3, 2, 0.1), (5, 4, 0.5), (2, 6, 1.0), (4, 3, 0.25)):
        theta = rng.normal(size=size)
        cases.append((theta, theta + rng.normal(size=(tasks, size)), eps))
    return cases


def check_reptile_function(fn: object, framework: str = "numpy") -> bool:
    """Exercise ch11-ex-reptile-code: ``fn(theta, adapted, outer_lr)`` returns Reptile's new
    initialisation ``theta + outer_lr * mean_i(phi_i - theta)`` for a parameter vector ``theta`` and
    the adapted vectors ``phi_i``, the rows of ``adapted``. Graded on hidden cases."""
    return grade_function(
        fn, reptile_outer_step, _reptile_cases(), ("theta", "adapted", "outer_lr"), framework=framework,
        what="your `reptile_update`",
        mistakes=[(lambda t, a, e: t + e * (np.asarray(a) - t).sum(axis=0), "Average phi_i - theta over the "
                                                                            "tasks; you summed."),
                  (lambda t, a, e: np.asarray(a).mean(axis=0), "Move only a fraction outer_lr of the way to the "
                                                               "mean of the phi_i."),
                  (lambda t, a, e: t + e * np.asarray(a).mean(axis=0), "The step is along phi_i - theta, not "
                                                                       "phi_i.")],
        success="the outer step moves the initialisation towards the tasks' adapted weights.",
    )
