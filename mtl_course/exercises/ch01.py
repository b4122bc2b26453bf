"""Checkers for the exercises of chapter 1, "Why multi-task learning".

Each checker prints one message (``Correct``, ``Not yet`` with a hint, or
``Not answered yet`` for the placeholder ``...``) and returns ``True`` or
``False``; reading and comparing answers is :mod:`mtl_course.exercises.grading`.
"""

from __future__ import annotations

import numpy as np

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

__all__ = ["pooled_floor", "check_pooled_floor", "check_task_relations", "check_pooled_least_squares",
           "pooled_least_squares"]

# exercise ch1-ex-floor
_TASKS, _RELATEDNESS, _NOISE = 4, 0.5, 0.5

# exercise ch1-ex-relations
_RELATIONS = {"a": "independent", "b": "dependent", "c": "related", "d": "dependent"}
_WHY = {
    "a": "digit images and electricity prices share neither inputs nor structure",
    "b": "a purchase can only follow a click, so one label constrains the other",
    "c": "the same prediction problem in 50 similar populations",
    "d": "the count is a function of the detections",
}


def pooled_floor(noise: float, relatedness: float, num_tasks: int) -> float:
    """Expected error floor of pooled learning on ``related_regression`` tasks.

    ``sigma^2 + (1 - rho)(1 - 1/T)``: the noise plus the expected squared
    distance from a task's weights to the average task (book eq.
    ``ch1-pooled-floor``, exercise ``ch1-ex-floor``).
    """
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    if not 0 <= relatedness <= 1:
        raise ValueError(f"relatedness must lie in [0, 1], got {relatedness}")
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, (int, np.integer)) or num_tasks < 1:
        raise ValueError(f"num_tasks must be a positive integer, got {num_tasks!r}")
    return noise**2 + (1 - relatedness) * (1 - 1 / num_tasks)


def check_pooled_floor(answer: object) -> bool:
    """Exercise ch1-ex-floor: the pooled floor for T = 4, rho = 0.5, sigma = 0.5."""
    if is_placeholder(answer):
        return not_answered()
    value = as_number(answer)
    if value is None:
        return feedback(False, f"the answer should be one finite number (a test MSE), got {answer!r}.")
    expected = pooled_floor(_NOISE, _RELATEDNESS, _TASKS)
    verdict = closeness(value, expected)
    if verdict == "right":
        return feedback(True, "no amount of data brings pooled least squares below this floor: the noise "
                              "plus the distance of each task from the average task.")
    task_term = (1 - _RELATEDNESS) * (1 - 1 / _TASKS)
    if matches(value, task_term):
        return feedback(False, "you left out the noise sigma^2: even the true weights have test error sigma^2.")
    if matches(value, _NOISE**2 + (1 - _RELATEDNESS)):
        return feedback(False, "the average task includes task t itself, which shrinks the distance by the "
                               "factor (1 - 1/T).")
    if matches(value, _NOISE + task_term):
        return feedback(False, "sigma = 0.5 is a standard deviation; the noise term of a squared error is "
                               "sigma squared.")
    if verdict == "close":
        return feedback(False, CLOSE_MESSAGE)
    return feedback(False, "expand w_t - w_bar = sqrt(1 - rho) (u_t - u_bar) and take the expected squared norm.")


def check_task_relations(answers: object) -> bool:
    """Exercise ch1-ex-relations: ``{"a": ..., "b": ..., "c": ..., "d": ...}`` with values
    ``"independent"``, ``"related"`` or ``"dependent"``."""
    if is_placeholder(answers):
        return not_answered()
    if not isinstance(answers, dict):
        return feedback(False, 'give a dict such as {"a": "independent", "b": "related", ...}.')
    if any(is_placeholder(v) for v in answers.values()):
        return not_answered("every `...` in the dict")
    missing = sorted(set(_RELATIONS) - set(answers))
    if missing:
        return feedback(False, f"no answer for {missing}.")
    allowed = {"independent", "related", "dependent"}
    wrong = []
    for key, expected in _RELATIONS.items():
        given = answers[key]
        if not isinstance(given, str) or given.strip().lower() not in allowed:
            return feedback(False, f"answer {key!r} should be one of {sorted(allowed)}, got {given!r}.")
        if given.strip().lower() != expected:
            wrong.append(key)
    if wrong:
        return feedback(False, f"look again at {wrong}. Ask: could one task's output be computed from, or "
                               "constrain, the other's? Do they share inputs or structure at all?")
    return feedback(True, "; ".join(f"{k}: {_WHY[k]}" for k in _RELATIONS) + ".")


# ---------------------------------------------------------------- graded function (exercise ch1-ex-pooled)


def pooled_least_squares(Xs: list[np.ndarray], ys: list[np.ndarray]) -> np.ndarray:
    """The reference: one weight vector fitted by least squares to all tasks' examples together."""
    return np.linalg.lstsq(np.vstack(Xs), np.concatenate(ys), rcond=None)[0]


def _mean_of_task_fits(Xs: list[np.ndarray], ys: list[np.ndarray]) -> np.ndarray:
    return np.mean([np.linalg.lstsq(X, y, rcond=None)[0] for X, y in zip(Xs, ys)], axis=0)


def _pooled_cases(seed: int = 101) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    cases = []
    for num_tasks, n, dim in ((2, 6, 2), (3, [4, 9, 5], 3), (4, 12, 5), (5, [20, 6, 6, 30, 8], 4)):
        sizes = n if isinstance(n, list) else [n] * num_tasks
        Xs = [rng.normal(size=(m, dim)) * rng.uniform(0.5, 3.0) for m in sizes]
        ys = [X @ rng.normal(size=dim) + 0.3 * rng.normal(size=len(X)) for X in Xs]
        cases.append((Xs, ys))
    return cases


def check_pooled_least_squares(fn: object, framework: str = "numpy") -> bool:
    """Exercise ch1-ex-pooled: ``fn(Xs, ys)`` returns the pooled least-squares weights (shape ``(d,)``)
    for lists of per-task inputs ``Xs`` (each ``(n_t, d)``) and targets ``ys`` (each ``(n_t,)``).

    Graded on hidden random task sets of different sizes, as numpy arrays or
    float32 torch / TensorFlow tensors (``framework``).
    """
    return grade_function(
        fn, pooled_least_squares, _pooled_cases(), ("Xs", "ys"), framework=framework,
        what="your `pooled_least_squares`",
        mistakes=[(_mean_of_task_fits, "That is the mean of the tasks' own least-squares fits; pooling stacks "
                                       "all examples into one data set and fits once.")],
        success="pooling is ordinary least squares on the stacked examples: one model for all tasks, "
                "whatever task an example came from.",
    )
