"""Checkers for the exercises of chapter 5, "Soft parameter sharing".

Each checker prints a short message (``Correct`` or ``Not yet``, with a hint)
and returns ``True`` or ``False``. Malformed answers get a message that
explains the expected form instead of an exception.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

__all__ = [
    "PENALTY_SETTING",
    "TRACE_NORM_MATRICES",
    "check_penalty_gradient",
    "check_trace_norms",
    "l2_penalty_gradient",
]

#: Exercise ch5-ex-gradient: three towers with two parameters each, and the strength.
PENALTY_SETTING = {"theta": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), "strength": 0.5}

#: Exercise ch5-ex-trace: the matrices W (rows = tasks) of the exercise.
TRACE_NORM_MATRICES = {
    "equal": np.array([[1.0, 0.0], [1.0, 0.0]]),
    "parallel": np.array([[1.0, 0.0], [2.0, 0.0]]),
    "orthogonal": np.array([[1.0, 0.0], [0.0, 1.0]]),
}


def _say(correct: bool, message: str) -> bool:
    print(("Correct: " if correct else "Not yet: ") + message)
    return correct


def l2_penalty_gradient(theta: np.ndarray, strength: float) -> np.ndarray:
    r"""Gradient of ``strength * sum_{t<s} ||theta_t - theta_s||^2`` with respect to every ``theta_t``:
    ``2 * strength * sum_{s != t} (theta_t - theta_s) = 2 * strength * (T theta_t - sum_s theta_s)``."""
    theta = np.asarray(theta, dtype=float)
    return 2.0 * strength * (len(theta) * theta - theta.sum(axis=0))


def check_penalty_gradient(gradient: object) -> bool:
    """Exercise ch5-ex-gradient: the gradient of the L2 coupling penalty with respect to
    task 1's parameters ``theta_1``, a pair of numbers, in the setting :data:`PENALTY_SETTING`."""
    try:
        answer = np.asarray(gradient, dtype=float)
    except (TypeError, ValueError):
        return _say(False, f"answer with two numbers, e.g. [0.5, -1.0], got {gradient!r}.")
    if answer.shape != (2,) or not np.isfinite(answer).all():
        return _say(False, f"answer with two finite numbers (the gradient has the shape of theta_1), got {gradient!r}.")
    theta, strength = PENALTY_SETTING["theta"], PENALTY_SETTING["strength"]
    expected = l2_penalty_gradient(theta, strength)[0]
    if np.allclose(answer, expected):
        return _say(True, f"{expected.tolist()}: 2 * 0.5 * ((theta_1 - theta_2) + (theta_1 - theta_3)), the pull "
                    "of task 1's parameters towards the others.")
    if np.allclose(answer, expected / 2):
        return _say(False, "missing the factor 2 from differentiating the square.")
    if np.allclose(answer, -expected):
        return _say(False, "wrong sign: the gradient points away from the other towers; "
                    "the descent step goes towards them.")
    return _say(False, "only the pairs (1, 2) and (1, 3) involve theta_1; "
                "differentiate ||theta_1 - theta_s||^2 for each.")


def check_trace_norms(equal: object, parallel: object, orthogonal: object) -> bool:
    """Exercise ch5-ex-trace: the trace (nuclear) norms of the three matrices of
    :data:`TRACE_NORM_MATRICES`."""
    answers = {"equal": equal, "parallel": parallel, "orthogonal": orthogonal}
    for name, value in answers.items():
        if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(float(value)):
            return _say(False, f"`{name}` should be a finite number, got {value!r}.")
    for name, value in answers.items():
        expected = float(np.linalg.norm(TRACE_NORM_MATRICES[name], ord="nuc"))
        if not np.isclose(float(value), expected, atol=1e-3):
            frobenius = float(np.linalg.norm(TRACE_NORM_MATRICES[name]))
            hint = (" That is the Frobenius norm (root of the sum of squared singular values); "
                    "the trace norm sums them."
                    if np.isclose(float(value), frobenius, atol=1e-3) else
                    " The trace norm is the sum of the singular values.")
            return _say(False, f"the trace norm of the `{name}` matrix is not right.{hint}")
    return _say(True, "sqrt(2) = 1.414, sqrt(5) = 2.236 and 2: rank-one matrices (parallel task vectors) are cheap "
                "even when the rows differ, as for `parallel`, so the trace norm asks the tasks to share "
                "directions, not to be equal as the L2 penalty does.")
