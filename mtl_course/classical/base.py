"""The common skeleton of the linear multi-task estimators.

Every estimator predicts task ``t`` with a linear model
``f_t(x) = w_t . x + b_t`` and stores the weights as rows of ``coef_``
(shape ``(T, d)``, one row per task, as in scikit-learn's multi-output models)
and the intercepts in ``intercept_`` (shape ``(T,)``).

Loss convention used by every objective in this subpackage (and by
scikit-learn's ``Ridge``): the *sum* of squared errors of all tasks,

    L(W, b) = sum_t || y_t - X_t w_t - b_t 1 ||^2 .

Intercepts are never penalized. With ``fit_intercept=True`` each task's inputs
and targets are centered by that task's means, the penalized problem is solved
on centered data, and ``b_t = mean(y_t) - mean(X_t) . w_t``. For the squared
loss this is exact: it is what minimizing over unpenalized ``b_t`` gives.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.linalg

from mtl_course.classical._validation import check_tasks, check_X_list


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped at ``max_iter`` before reaching ``tol``."""


def solve_psd(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``A x = b`` for a symmetric positive semi-definite ``A``.

    Uses a Cholesky factorization; when ``A`` is singular (for example least
    squares with fewer samples than features) it returns the minimum-norm
    solution, which still minimizes the quadratic ``x'Ax/2 - b'x`` because the
    right-hand sides built in this package lie in the range of ``A``.
    """
    try:
        factor = scipy.linalg.cho_factor(A, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return scipy.linalg.lstsq(A, b, check_finite=False)[0]
    return scipy.linalg.cho_solve(factor, b, check_finite=False)


def solve_coupled_ridge(
    X_list: Sequence[np.ndarray], y_list: Sequence[np.ndarray], coupling: np.ndarray
) -> np.ndarray:
    """Minimize ``sum_t ||y_t - X_t w_t||^2 + sum_{s,t} P_st w_s . w_t`` exactly.

    ``P = coupling`` is a symmetric PSD ``(T, T)`` matrix that couples the tasks:
    ``P = alpha I`` is independent ridge, ``P = rho_1 I + rho_2 (I - 11'/T)`` is
    mean-regularized MTL, and ``P = lambda_1 I + lambda_2 Omega^{-1}`` is the
    weight step of task relationship learning. The normal equations are

        (blockdiag(X_t' X_t) + P kron I_d) vec(W) = [X_1' y_1; ...; X_T' y_T],

    a ``Td x Td`` system solved directly (fine for the small problems of the
    course). Returns ``W`` with shape ``(T, d)``.
    """
    T, d = len(X_list), X_list[0].shape[1]
    A = np.kron(coupling, np.eye(d))
    rhs = np.empty(T * d)
    for t, (X, y) in enumerate(zip(X_list, y_list)):
        block = slice(t * d, (t + 1) * d)
        A[block, block] += X.T @ X
        rhs[block] = X.T @ y
    return solve_psd(A, rhs).reshape(T, d)


def squared_loss(
    X_list: Sequence[np.ndarray], y_list: Sequence[np.ndarray], W: np.ndarray, b: np.ndarray
) -> float:
    """``sum_t ||y_t - X_t w_t - b_t||^2``, the data term of every objective here."""
    return float(sum(np.sum((y - X @ w - bt) ** 2) for X, y, w, bt in zip(X_list, y_list, W, b)))


class MultiTaskLinearModel:
    """Base class: validation, centering, ``predict``, ``score`` and ``objective``.

    Subclasses implement ``_fit_coef(X_list, y_list) -> W`` on (centered) data
    and ``penalty(W) -> float``.
    """

    #: True for models that share one intercept across all tasks (pooled ridge).
    _shared_intercept = False

    def __init__(self, *, fit_intercept: bool = True) -> None:
        self.fit_intercept = fit_intercept

    # -- to implement ---------------------------------------------------
    def _fit_coef(self, X_list: list[np.ndarray], y_list: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def penalty(self, W: np.ndarray) -> float:
        """The regularizer ``Omega(W)`` of the model's objective."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------
    def fit(self, X_list: Sequence[np.ndarray], y_list: Sequence[np.ndarray]) -> MultiTaskLinearModel:
        """Fit all tasks jointly. ``X_list[t]``: ``(n_t, d)``; ``y_list[t]``: ``(n_t,)``."""
        X_list, y_list = check_tasks(X_list, y_list)
        x_means, y_means = self._offsets(X_list, y_list)
        Xc = [X - m for X, m in zip(X_list, x_means)]
        yc = [y - m for y, m in zip(y_list, y_means)]
        W = np.asarray(self._fit_coef(Xc, yc), dtype=np.float64)
        self.coef_ = W
        self.intercept_ = np.asarray(y_means) - np.einsum("td,td->t", np.asarray(x_means), W)
        self.n_tasks_, self.n_features_in_ = W.shape
        return self

    def _offsets(self, X_list: list[np.ndarray], y_list: list[np.ndarray]):
        T, d = len(X_list), X_list[0].shape[1]
        if not self.fit_intercept:
            return [np.zeros(d)] * T, [0.0] * T
        if self._shared_intercept:
            x_mean = np.concatenate(X_list).mean(axis=0)
            y_mean = float(np.concatenate(y_list).mean())
            return [x_mean] * T, [y_mean] * T
        return [X.mean(axis=0) for X in X_list], [float(y.mean()) for y in y_list]

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def predict(self, X_list: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Predictions ``X_t w_t + b_t``, one array per task."""
        self._check_fitted()
        X_list = check_X_list(X_list, self.n_features_in_)
        if len(X_list) != self.n_tasks_:
            raise ValueError(f"the model was fitted on {self.n_tasks_} tasks, got {len(X_list)}")
        return [X @ w + b for X, w, b in zip(X_list, self.coef_, self.intercept_)]

    def score(self, X_list: Sequence[np.ndarray], y_list: Sequence[np.ndarray]) -> list[float]:
        """Mean squared error of each task (a list; lower is better, unlike scikit-learn's R^2)."""
        self._check_fitted()
        X_list, y_list = check_tasks(X_list, y_list, self.n_features_in_)
        predictions = self.predict(X_list)
        return [float(np.mean((y - p) ** 2)) for y, p in zip(y_list, predictions)]

    def objective(self, X_list: Sequence[np.ndarray], y_list: Sequence[np.ndarray]) -> float:
        """The minimized objective ``L(W, b) + Omega(W)`` at the fitted ``coef_``, ``intercept_``."""
        self._check_fitted()
        X_list, y_list = check_tasks(X_list, y_list, self.n_features_in_)
        return squared_loss(X_list, y_list, self.coef_, self.intercept_) + self.penalty(self.coef_)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"


class IterativeSolverMixin:
    """``tol``, ``max_iter``, ``n_iter_`` and a :class:`ConvergenceWarning` when ``tol`` is not reached."""

    def _record_convergence(self, n_iter: int, converged: bool) -> None:
        self.n_iter_ = int(n_iter)
        self.converged_ = bool(converged)
        if not converged:
            warnings.warn(
                f"{type(self).__name__} stopped after max_iter={self.max_iter} iterations "
                f"before reaching tol={self.tol}; increase max_iter or loosen tol",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _check_solver_options(self) -> None:
        if not (float(self.tol) > 0):
            raise ValueError(f"tol must be > 0, got {self.tol}")
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
