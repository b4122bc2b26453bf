"""Checkers for the exercises of chapter 1, "Why multi-task learning".

Each checker prints a short message (``Correct`` or ``Not yet``, with a hint)
and returns ``True`` or ``False``. Malformed answers get a message that
explains the expected form instead of an exception.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

__all__ = ["pooled_floor", "check_pooled_floor", "check_task_relations"]

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


def _say(correct: bool, message: str) -> bool:
    print(("Correct: " if correct else "Not yet: ") + message)
    return correct


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
    if isinstance(answer, bool) or not isinstance(answer, Real) or not np.isfinite(float(answer)):
        return _say(False, f"the answer should be a finite number (a test MSE), got {answer!r}.")
    value = float(answer)
    expected = pooled_floor(_NOISE, _RELATEDNESS, _TASKS)
    if np.isclose(value, expected, atol=1e-6):
        return _say(True, f"sigma^2 + (1 - rho)(1 - 1/T) = 0.25 + 0.5 * 0.75 = {expected:.3f}. No amount of "
                    "data brings pooled least squares below it.")
    noise_term, task_term = _NOISE**2, (1 - _RELATEDNESS) * (1 - 1 / _TASKS)
    if np.isclose(value, task_term):
        hint = "you left out the noise sigma^2: even the true weights have test error sigma^2."
    elif np.isclose(value, noise_term + (1 - _RELATEDNESS)):
        hint = ("that is sigma^2 + (1 - rho): the average task includes task t itself, which shrinks the "
                "distance by the factor (1 - 1/T).")
    elif np.isclose(value, _NOISE + task_term):
        hint = "sigma = 0.5 is a standard deviation; the noise term of a squared error is sigma^2 = 0.25."
    else:
        hint = "expand w_t - w_bar = sqrt(1 - rho) (u_t - u_bar) and take the expected squared norm."
    return _say(False, hint)


def check_task_relations(answers: object) -> bool:
    """Exercise ch1-ex-relations: ``{"a": ..., "b": ..., "c": ..., "d": ...}`` with values
    ``"independent"``, ``"related"`` or ``"dependent"``."""
    if not isinstance(answers, dict):
        return _say(False, 'give a dict such as {"a": "independent", "b": "related", ...}.')
    missing = sorted(set(_RELATIONS) - set(answers))
    if missing:
        return _say(False, f"no answer for {missing}.")
    allowed = {"independent", "related", "dependent"}
    wrong = []
    for key, expected in _RELATIONS.items():
        given = answers[key]
        if not isinstance(given, str) or given.strip().lower() not in allowed:
            return _say(False, f"answer {key!r} should be one of {sorted(allowed)}, got {given!r}.")
        if given.strip().lower() != expected:
            wrong.append(key)
    if wrong:
        return _say(False, f"look again at {wrong}. Ask: could one task's output be computed from, or "
                    "constrain, the other's? Do they share inputs or structure at all?")
    return _say(True, "; ".join(f"{k}: {v} ({_WHY[k]})" for k, v in _RELATIONS.items()) + ".")
