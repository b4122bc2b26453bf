"""Checkers for the exercises of chapter 3, "Classical multi-task learning with convex models".

Each checker prints a short message (``Correct`` or ``Not yet``, with a hint)
and returns ``True`` or ``False``. Malformed answers (text where a number is
expected, a matrix of the wrong shape) get a message that explains the expected
form instead of an exception.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from mtl_course.classical.proximal import prox_l21
from mtl_course.classical.regularized import regularized_to_mean_regularized

__all__ = [
    "PROX_MATRIX",
    "PROX_TAU",
    "check_low_rank_parameter_count",
    "check_mean_regularization",
    "check_prox_l21",
]

# exercise ch3-ex-equivalence: Evgeniou-Pontil strengths and number of tasks
_LAMBDA_TASK, _LAMBDA_SHARED, _NUM_TASKS = 6.0, 2.0, 3

#: exercise ch3-ex-prox: a (T=2, d=3) weight matrix, one row per task, and the threshold.
PROX_MATRIX = np.array([[3.0, 0.6, 0.0], [4.0, -0.8, 2.0]])
PROX_TAU = 2.0

# exercise ch3-ex-count: tasks, features, rank
_COUNT_T, _COUNT_D, _COUNT_R = 10, 20, 2


def _say(correct: bool, message: str) -> bool:
    print(("Correct: " if correct else "Not yet: ") + message)
    return correct


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(float(value))


def check_mean_regularization(alpha_norm: object, alpha_mean: object) -> bool:
    """Exercise ch3-ex-equivalence: the mean-regularized strengths equal to
    ``lambda_task = 6``, ``lambda_shared = 2`` with ``T = 3`` tasks."""
    for name, value in (("alpha_norm", alpha_norm), ("alpha_mean", alpha_mean)):
        if not _is_number(value):
            return _say(False, f"`{name}` should be a finite number, got {value!r}.")
    expected_norm, expected_mean = regularized_to_mean_regularized(_LAMBDA_TASK, _LAMBDA_SHARED, _NUM_TASKS)
    norm_ok = np.isclose(float(alpha_norm), expected_norm, rtol=1e-6)
    mean_ok = np.isclose(float(alpha_mean), expected_mean, rtol=1e-6)
    if norm_ok and mean_ok:
        return _say(True, f"alpha_norm = {expected_norm:g} and alpha_mean = {expected_mean:g}.")
    if np.isclose(float(alpha_norm), expected_mean) and np.isclose(float(alpha_mean), expected_norm):
        return _say(False, "the two values are swapped: which one multiplies sum ||w_t||^2?")
    wrong = [name for name, ok in (("alpha_norm", norm_ok), ("alpha_mean", mean_ok)) if not ok]
    return _say(
        False,
        f"{' and '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} off. Minimize over w_0 first "
        "(w_0 = lambda_1 / (lambda_1 + lambda_2) * w_bar), then expand ||w_bar||^2 with "
        "sum ||w_t||^2 = sum ||w_t - w_bar||^2 + T ||w_bar||^2. Do not forget the 1/T in lambda_1 / T.",
    )


def check_prox_l21(answer: object) -> bool:
    """Exercise ch3-ex-prox: ``prox`` of ``PROX_TAU * ||W||_{2,1}`` at :data:`PROX_MATRIX`
    (a ``(2, 3)`` array, one row per task)."""
    try:
        W = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return _say(False, f"the answer should be a 2 x 3 array of numbers, got {answer!r}.")
    if W.shape != PROX_MATRIX.shape:
        return _say(False, f"the answer should have shape {PROX_MATRIX.shape} (tasks x features), got {W.shape}.")
    expected = prox_l21(PROX_MATRIX, PROX_TAU)
    if np.allclose(W, expected, atol=1e-6):
        return _say(True, "features 1 and 2 (column norms 1 and 2, both <= tau = 2) are removed from both tasks; "
                    "feature 0 keeps its direction and shrinks from norm 5 to 3.")
    row_wise = prox_l21(PROX_MATRIX.T, PROX_TAU).T
    if np.allclose(W, row_wise, atol=1e-6):
        return _say(False, "you grouped by task (rows). The L2,1 norm groups each *feature* across tasks: use columns.")
    elementwise = np.sign(PROX_MATRIX) * np.maximum(np.abs(PROX_MATRIX) - PROX_TAU, 0.0)
    if np.allclose(W, elementwise, atol=1e-6):
        return _say(False, "that is the lasso's entry-wise soft-thresholding; shrink each column's Euclidean norm instead.")
    wrong = sorted({int(j) for j in np.argwhere(~np.isclose(W, expected, atol=1e-6))[:, 1]})
    return _say(False, f"column(s) {wrong} are off: scale each column by max(0, 1 - tau / ||column||).")


def check_low_rank_parameter_count(answer: object) -> bool:
    """Exercise ch3-ex-count: degrees of freedom of a rank-2 weight matrix with T = 10 tasks and d = 20 features."""
    if not _is_number(answer) or float(answer) != int(float(answer)):
        return _say(False, f"the answer should be a whole number, got {answer!r}.")
    expected = _COUNT_R * (_COUNT_T + _COUNT_D - _COUNT_R)
    value = int(float(answer))
    if value == expected:
        return _say(True, f"r (T + d - r) = {expected}, against T d = {_COUNT_T * _COUNT_D} for independent tasks.")
    if value == _COUNT_R * (_COUNT_T + _COUNT_D):
        return _say(False, "r (T + d) counts the factors A (T x r) and B (r x d), but A B = (A M)(M^-1 B) for any "
                    "invertible r x r matrix M: subtract the r^2 redundant parameters.")
    if value == _COUNT_T * _COUNT_D:
        return _say(False, "that is the count for unrelated tasks; a rank-2 matrix is fixed by far fewer numbers.")
    return _say(False, "write W = A B with A: T x r and B: r x d, count, then remove what an invertible M in "
                "A B = (A M)(M^-1 B) leaves unchanged.")
