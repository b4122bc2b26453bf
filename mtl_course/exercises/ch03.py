"""Checkers for the exercises of chapter 3, "Classical multi-task learning with convex models".

Each checker prints one message (``Correct``, ``Not yet`` with a hint, or
``Not answered yet`` for the placeholder ``...``) and returns ``True`` or
``False``; reading and comparing answers is :mod:`mtl_course.exercises.grading`.
"""

from __future__ import annotations

import numpy as np

from mtl_course.classical.proximal import prox_l21
from mtl_course.classical.regularized import regularized_to_mean_regularized
from mtl_course.exercises.grading import (
    CLOSE_MESSAGE,
    as_count,
    as_number,
    as_vector,
    closeness,
    feedback,
    grade_function,
    is_placeholder,
    matches,
    not_answered,
    wrong_components,
)

__all__ = [
    "PROX_MATRIX",
    "PROX_TAU",
    "check_low_rank_parameter_count",
    "check_mean_regularization",
    "check_prox_l21",
    "check_prox_l21_function",
]

# exercise ch3-ex-equivalence: Evgeniou-Pontil strengths and number of tasks
_LAMBDA_TASK, _LAMBDA_SHARED, _NUM_TASKS = 6.0, 2.0, 3

#: exercise ch3-ex-prox: a (T=2, d=3) weight matrix, one row per task, and the threshold.
PROX_MATRIX = np.array([[3.0, 0.6, 0.0], [4.0, -0.8, 2.0]])
PROX_TAU = 2.0

# exercise ch3-ex-count: tasks, features, rank
_COUNT_T, _COUNT_D, _COUNT_R = 10, 20, 2


def check_mean_regularization(alpha_norm: object, alpha_mean: object) -> bool:
    """Exercise ch3-ex-equivalence: the mean-regularized strengths equal to
    ``lambda_task = 6``, ``lambda_shared = 2`` with ``T = 3`` tasks."""
    if is_placeholder(alpha_norm) or is_placeholder(alpha_mean):
        return not_answered()
    values = {"alpha_norm": as_number(alpha_norm), "alpha_mean": as_number(alpha_mean)}
    for name, value in values.items():
        if value is None:
            return feedback(False, f"`{name}` should be one finite number.")
    expected = dict(zip(values, regularized_to_mean_regularized(_LAMBDA_TASK, _LAMBDA_SHARED, _NUM_TASKS)))
    verdicts = {name: closeness(values[name], expected[name]) for name in values}
    if all(v == "right" for v in verdicts.values()):
        return feedback(True, "minimizing over w_0 turns the shared-mean penalty into a pull towards the "
                              "task average plus a norm penalty.")
    if matches(values["alpha_norm"], expected["alpha_mean"]) and matches(values["alpha_mean"], expected["alpha_norm"]):
        return feedback(False, "the two values are swapped: which one multiplies sum ||w_t||^2?")
    wrong = [name for name, v in verdicts.items() if v != "right"]
    if all(verdicts[name] == "close" for name in wrong):
        return feedback(False, f"{' and '.join(wrong)}: " + CLOSE_MESSAGE)
    return feedback(False, f"{' and '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} off. Minimize over "
                           "w_0 first (w_0 = lambda_1 / (lambda_1 + lambda_2) * w_bar), then expand "
                           "||w_bar||^2 with sum ||w_t||^2 = sum ||w_t - w_bar||^2 + T ||w_bar||^2. Do not "
                           "forget the 1/T in lambda_1 / T.")


def _elementwise(V: np.ndarray, tau: float) -> np.ndarray:
    return np.sign(V) * np.maximum(np.abs(V) - tau, 0.0)


def _row_wise(V: np.ndarray, tau: float) -> np.ndarray:
    return prox_l21(np.asarray(V).T, tau).T


def check_prox_l21(answer: object) -> bool:
    """Exercise ch3-ex-prox: ``prox`` of ``PROX_TAU * ||W||_{2,1}`` at :data:`PROX_MATRIX`
    (a ``(2, 3)`` array, one row per task)."""
    if is_placeholder(answer):
        return not_answered()
    W = as_vector(answer, PROX_MATRIX.shape)
    if W is None:
        return feedback(False, f"the answer should be a 2 x 3 array of finite numbers (tasks x features), "
                               f"got {answer!r}.")
    expected = prox_l21(PROX_MATRIX, PROX_TAU)
    verdict = closeness(W, expected)
    if verdict == "right":
        return feedback(True, "a feature whose column norm is at most tau is removed from every task; the "
                              "others keep their direction and shrink.")
    if matches(W, _row_wise(PROX_MATRIX, PROX_TAU)):
        return feedback(False, "you grouped by task (rows). The L2,1 norm groups each *feature* across tasks: "
                               "use columns.")
    if matches(W, _elementwise(PROX_MATRIX, PROX_TAU)):
        return feedback(False, "that is the lasso's entry-wise soft-thresholding; shrink each column's "
                               "Euclidean norm instead.")
    if verdict == "close":
        return feedback(False, CLOSE_MESSAGE)
    columns = sorted({i % PROX_MATRIX.shape[1] for i in wrong_components(W, expected)})
    return feedback(False, f"column{'s' if len(columns) > 1 else ''} {' and '.join(map(str, columns))} "
                           f"{'are' if len(columns) > 1 else 'is'} off: scale each column by "
                           "max(0, 1 - tau / ||column||).")


def check_low_rank_parameter_count(answer: object) -> bool:
    """Exercise ch3-ex-count: degrees of freedom of a rank-2 weight matrix with T = 10 tasks and d = 20 features."""
    if is_placeholder(answer):
        return not_answered()
    value = as_count(answer)
    if value is None:
        return feedback(False, f"the answer should be a whole number, got {answer!r}.")
    expected = _COUNT_R * (_COUNT_T + _COUNT_D - _COUNT_R)
    if value == expected:
        return feedback(True, f"far fewer than the T d = {_COUNT_T * _COUNT_D} numbers of independent tasks: "
                              "this is what low-rank methods gain with few samples per task.")
    if value == _COUNT_R * (_COUNT_T + _COUNT_D):
        return feedback(False, "r (T + d) counts the factors A (T x r) and B (r x d), but A B = (A M)(M^-1 B) for "
                               "any invertible r x r matrix M: subtract the redundant parameters.")
    if value == _COUNT_T * _COUNT_D:
        return feedback(False, "that is the count for unrelated tasks; a rank-2 matrix is fixed by far fewer "
                               "numbers.")
    return feedback(False, "write W = A B with A: T x r and B: r x d, count, then remove what an invertible M "
                           "in A B = (A M)(M^-1 B) leaves unchanged.")


# ---------------------------------------------------------------- graded function (exercise ch3-ex-prox-code)


def _prox_cases(seed: int = 303) -> list[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(seed)
    cases = [(PROX_MATRIX.copy(), PROX_TAU)]
    for tasks, features, tau in ((2, 4, 1.0), (3, 5, 1.5), (4, 6, 0.5), (5, 3, 3.0)):
        V = rng.normal(size=(tasks, features)) * rng.uniform(0.2, 2.0, size=features)  # some small columns
        cases.append((V, tau))
    cases.append((np.zeros((2, 3)), 1.0))  # all columns zero: no division by zero
    return cases


def check_prox_l21_function(fn: object) -> bool:
    """Exercise ch3-ex-prox-code: ``fn(V, tau)`` returns the proximal operator of
    ``tau ||W||_{2,1}`` at ``V`` (rows: tasks, columns: features), graded on hidden
    matrices (one of them all zero)."""
    return grade_function(
        fn, prox_l21, _prox_cases(), ("V", "tau"), what="your `prox_l21`",
        mistakes=[(_row_wise, "You grouped by rows (tasks); the L2,1 norm groups each feature, a column."),
                  (_elementwise, "That is entry-wise soft-thresholding (the lasso); shrink whole columns.")],
        success="group soft-thresholding: each feature is kept or removed for all tasks together.",
    )
