"""Regularized multi-task learning: every task is a shared model plus a small offset.

Evgeniou and Pontil (KDD 2004) write task ``t``'s weights as ``w_t = w_0 + v_t``
and penalize the shared part ``w_0`` and the task-specific offsets ``v_t``
separately. Minimizing over ``w_0`` in closed form turns the penalty into one on
the ``w_t`` alone: a ridge term plus a pull of every task towards the mean task
("mean-regularized MTL", Evgeniou, Micchelli and Pontil, JMLR 2005). The same
penalty with the hinge loss is the multi-task SVM of the KDD paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.svm import SVC

from mtl_course.checks import check_nonnegative, check_rate
from mtl_course.classical._validation import check_tasks, check_X_list
from mtl_course.classical.base import MultiTaskLinearModel, solve_coupled_ridge


def mean_regularization_coupling(num_tasks: int, alpha_norm: float, alpha_mean: float) -> np.ndarray:
    """The ``(T, T)`` matrix ``P`` with ``sum_st P_st w_s.w_t = alpha_norm sum||w_t||^2 + alpha_mean sum||w_t - w_bar||^2``.

    ``P = alpha_norm I + alpha_mean (I - 11'/T)``.
    """
    eye = np.eye(num_tasks)
    return alpha_norm * eye + alpha_mean * (eye - np.full((num_tasks, num_tasks), 1.0 / num_tasks))


def regularized_to_mean_regularized(lambda_task: float, lambda_shared: float, num_tasks: int) -> tuple[float, float]:
    """Map Evgeniou-Pontil's ``(lambda_1, lambda_2)`` to mean-regularized ``(alpha_norm, alpha_mean)``.

    Book eq. ``ch3-ep-equivalence``: eliminating ``w_0 = lambda_1/(lambda_1+lambda_2) w_bar``
    from ``lambda_1/T sum ||v_t||^2 + lambda_2 ||w_0||^2`` leaves

        alpha_norm = lambda_1 lambda_2 / (T (lambda_1 + lambda_2)),
        alpha_mean = lambda_1^2        / (T (lambda_1 + lambda_2)).

    Both are 0 when ``lambda_1 = 0`` (no penalty on the offsets: independent least squares).
    """
    lam1 = check_nonnegative(lambda_task, "lambda_task")
    lam2 = check_nonnegative(lambda_shared, "lambda_shared")
    if lam1 == 0.0:
        return 0.0, 0.0
    total = num_tasks * (lam1 + lam2)
    return lam1 * lam2 / total, lam1 * lam1 / total


class MeanRegularizedMTL(MultiTaskLinearModel):
    """Mean-regularized multi-task ridge regression (Evgeniou, Micchelli and Pontil, JMLR 2005).

    Book eq. ``ch3-mean-reg``; solved exactly (one linear system):

        min_W  sum_t ||y_t - X_t w_t - b_t||^2
               + alpha_norm sum_t ||w_t||^2 + alpha_mean sum_t ||w_t - w_bar||^2,

    with ``w_bar = (1/T) sum_t w_t``. ``alpha_mean = 0`` is independent ridge;
    ``alpha_mean -> inf`` forces all tasks to one shared ``w`` (pooled ridge
    with penalty ``T alpha_norm ||w||^2``).

    Args:
        alpha_norm: ridge strength on every ``w_t``, >= 0.
        alpha_mean: strength of the pull towards the mean task, >= 0.
        fit_intercept: one unpenalized intercept per task (default True).
    """

    def __init__(self, alpha_norm: float = 1.0, alpha_mean: float = 1.0, *, fit_intercept: bool = True) -> None:
        super().__init__(fit_intercept=fit_intercept)
        self.alpha_norm = alpha_norm
        self.alpha_mean = alpha_mean

    def _coupling(self, num_tasks: int) -> np.ndarray:
        alpha_norm = check_nonnegative(self.alpha_norm, "alpha_norm")
        alpha_mean = check_nonnegative(self.alpha_mean, "alpha_mean")
        return mean_regularization_coupling(num_tasks, alpha_norm, alpha_mean)

    def _fit_coef(self, X_list, y_list):
        return solve_coupled_ridge(X_list, y_list, self._coupling(len(X_list)))

    def penalty(self, W: np.ndarray) -> float:
        return float(np.sum(self._coupling(len(W)) * (W @ W.T)))


class RegularizedMTL(MeanRegularizedMTL):
    """Regularized multi-task learning, ``w_t = w_0 + v_t`` (Evgeniou and Pontil, KDD 2004).

    Book eq. ``ch3-ep``:

        min_{w_0, v}  sum_t ||y_t - X_t (w_0 + v_t) - b_t||^2
                      + (lambda_task / T) sum_t ||v_t||^2 + lambda_shared ||w_0||^2 .

    Solved exactly through its mean-regularized form
    (:func:`regularized_to_mean_regularized`), then ``w_0`` is recovered as
    ``lambda_task / (lambda_task + lambda_shared) * w_bar``.

    Limits (tested): ``lambda_task -> 0`` gives independent least squares;
    ``lambda_task -> inf`` forces ``v_t = 0``, i.e. :class:`PooledRidge` with
    ``alpha = lambda_shared`` (exactly so with ``fit_intercept=False``; with
    intercepts the tasks keep their own intercepts, whereas ``PooledRidge``
    shares one).

    Args:
        lambda_task: penalty on the task offsets ``v_t`` (small: tasks free), >= 0.
        lambda_shared: penalty on the shared part ``w_0``, >= 0.
        fit_intercept: one unpenalized intercept per task (default True).

    Attributes:
        coef_: ``(T, d)``, rows ``w_t``; ``shared_coef_``: ``w_0``, ``(d,)``;
        task_coef_: ``(T, d)``, rows ``v_t``; ``intercept_``: ``(T,)``.
    """

    def __init__(self, lambda_task: float = 1.0, lambda_shared: float = 1.0, *, fit_intercept: bool = True) -> None:
        MultiTaskLinearModel.__init__(self, fit_intercept=fit_intercept)
        self.lambda_task = lambda_task
        self.lambda_shared = lambda_shared

    def _coupling(self, num_tasks: int) -> np.ndarray:
        alpha_norm, alpha_mean = regularized_to_mean_regularized(self.lambda_task, self.lambda_shared, num_tasks)
        return mean_regularization_coupling(num_tasks, alpha_norm, alpha_mean)

    def _fit_coef(self, X_list, y_list):
        W = super()._fit_coef(X_list, y_list)
        lam1, lam2 = float(self.lambda_task), float(self.lambda_shared)
        share = lam1 / (lam1 + lam2) if lam1 + lam2 > 0 else 1.0
        self.shared_coef_ = share * W.mean(axis=0)
        self.task_coef_ = W - self.shared_coef_
        return W


class MultiTaskSVM:
    """Regularized multi-task SVM, the hinge-loss form of :class:`RegularizedMTL` (Evgeniou and Pontil, KDD 2004).

    Book eq. ``ch3-mtsvm``; labels ``y_ti`` in {-1, +1}:

        min_{w_0, v, b}  sum_t sum_i max(0, 1 - y_ti ((w_0 + v_t) . x_ti + b))
                         + (lambda_task / T) sum_t ||v_t||^2 + lambda_shared ||w_0||^2 .

    As in the paper it is solved as one kernel SVM on (input, task) pairs with
    the multi-task kernel

        K((x, s), (z, t)) = (1 / (2 lambda_shared) + T / (2 lambda_task) [s = t]) x . z ,

    by scikit-learn's ``SVC(kernel="precomputed", C=1)`` (libsvm). ``w_0`` and
    ``v_t`` are read back from the dual coefficients. One unpenalized bias ``b``
    is shared by all tasks (libsvm fits a single bias).

    Args:
        lambda_task, lambda_shared: penalties as in :class:`RegularizedMTL`, > 0.
        tol: libsvm stopping tolerance.
    """

    def __init__(self, lambda_task: float = 1.0, lambda_shared: float = 1.0, *, tol: float = 1e-6) -> None:
        self.lambda_task = lambda_task
        self.lambda_shared = lambda_shared
        self.tol = tol

    def _kernel_scales(self, num_tasks: int) -> tuple[float, float]:
        lam1 = check_rate(self.lambda_task, "lambda_task")
        lam2 = check_rate(self.lambda_shared, "lambda_shared")
        return 1.0 / (2.0 * lam2), num_tasks / (2.0 * lam1)

    def fit(self, X_list: Sequence[np.ndarray], y_list: Sequence[np.ndarray]) -> MultiTaskSVM:
        X_list, y_list = check_tasks(X_list, y_list)
        labels = np.concatenate(y_list)
        if not np.all(np.isin(labels, (-1.0, 1.0))):
            raise ValueError("MultiTaskSVM needs labels in {-1, +1}")
        if np.unique(labels).size < 2:
            raise ValueError("MultiTaskSVM needs both labels -1 and +1 among all tasks")
        T = len(X_list)
        shared_scale, task_scale = self._kernel_scales(T)
        X = np.concatenate(X_list)
        task = np.repeat(np.arange(T), [len(x) for x in X_list])
        gram = X @ X.T
        kernel = (shared_scale + task_scale * (task[:, None] == task[None, :])) * gram
        svm = SVC(kernel="precomputed", C=1.0, tol=self.tol).fit(kernel, labels)
        # svm.classes_ == [-1, 1], so dual_coef_ holds alpha_i y_i for the +1-positive decision.
        signed_alpha = np.zeros(len(X))
        signed_alpha[svm.support_] = svm.dual_coef_[0]
        self.shared_coef_ = shared_scale * (signed_alpha @ X)
        self.task_coef_ = np.stack([task_scale * (signed_alpha[task == t] @ X[task == t]) for t in range(T)])
        self.coef_ = self.shared_coef_ + self.task_coef_
        self.intercept_ = float(svm.intercept_[0])
        self.n_tasks_, self.n_features_in_ = self.coef_.shape
        self.n_iter_ = int(np.sum(svm.n_iter_))
        return self

    def decision_function(self, X_list: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Scores ``(w_0 + v_t) . x + b``, one array per task."""
        if not hasattr(self, "coef_"):
            raise RuntimeError("this MultiTaskSVM is not fitted yet: call fit first")
        X_list = check_X_list(X_list, self.n_features_in_)
        if len(X_list) != self.n_tasks_:
            raise ValueError(f"the model was fitted on {self.n_tasks_} tasks, got {len(X_list)}")
        return [X @ w + self.intercept_ for X, w in zip(X_list, self.coef_)]

    def predict(self, X_list: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Labels in {-1, +1}, one array per task."""
        return [np.where(s >= 0, 1.0, -1.0) for s in self.decision_function(X_list)]

    def score(self, X_list: Sequence[np.ndarray], y_list: Sequence[np.ndarray]) -> list[float]:
        """Accuracy of each task (a list)."""
        X_list, y_list = check_tasks(X_list, y_list, getattr(self, "n_features_in_", None))
        return [float(np.mean(p == y)) for p, y in zip(self.predict(X_list), y_list)]

    def objective(self, X_list: Sequence[np.ndarray], y_list: Sequence[np.ndarray]) -> float:
        """The minimized objective (hinge losses plus penalties) at the fitted parameters."""
        X_list, y_list = check_tasks(X_list, y_list, getattr(self, "n_features_in_", None))
        scores = self.decision_function(X_list)
        hinge = sum(float(np.sum(np.maximum(0.0, 1.0 - y * s))) for y, s in zip(y_list, scores))
        T = self.n_tasks_
        return (
            hinge
            + float(self.lambda_task) / T * float(np.sum(self.task_coef_**2))
            + float(self.lambda_shared) * float(np.sum(self.shared_coef_**2))
        )
