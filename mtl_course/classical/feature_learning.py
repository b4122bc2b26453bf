"""Tasks that share features: a common support (L2,1 norm) or a common subspace (trace norm).

Argyriou, Evgeniou and Pontil (NIPS 2006; Machine Learning 2008) learn task
weights ``w_t = U a_t`` in a shared orthonormal basis ``U`` and penalize the
(2,1)-norm of ``A``: few features ``U[:, j]`` are used, by all tasks together.
With ``U`` fixed to the identity this selects input features shared across
tasks (:class:`MultiTaskFeatureLearning`); minimizing over ``U`` as well turns
the penalty into the trace norm of ``W`` (their Theorem: the squared (2,1)-norm
minimized over rotations is the squared trace norm), i.e. a shared low-rank
subspace (:class:`TraceNormMTL`). Both are convex and solved here by FISTA.
"""

from __future__ import annotations

import numpy as np

from mtl_course.checks import check_nonnegative
from mtl_course.classical.base import IterativeSolverMixin, MultiTaskLinearModel
from mtl_course.classical.proximal import prox_l21, prox_trace_norm, proximal_least_squares


class _ProximalMTL(IterativeSolverMixin, MultiTaskLinearModel):
    """``min_W sum_t ||y_t - X_t w_t - b_t||^2 + alpha * norm(W)`` by FISTA; subclasses give the norm."""

    def __init__(self, alpha: float = 1.0, *, fit_intercept: bool = True, tol: float = 1e-8, max_iter: int = 5000) -> None:
        super().__init__(fit_intercept=fit_intercept)
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter

    @staticmethod
    def _prox(V: np.ndarray, tau: float) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def _norm(W: np.ndarray) -> float:
        raise NotImplementedError

    def penalty(self, W: np.ndarray) -> float:
        return float(self.alpha) * self._norm(W)

    def _fit_coef(self, X_list, y_list):
        alpha = check_nonnegative(self.alpha, "alpha")
        self._check_solver_options()
        result = proximal_least_squares(
            X_list, y_list, lambda V, step: self._prox(V, alpha * step), tol=float(self.tol), max_iter=int(self.max_iter)
        )
        self._record_convergence(result.n_iter, result.converged)
        return result.W


class MultiTaskFeatureLearning(_ProximalMTL):
    """Multi-task feature selection with the L2,1 norm (Argyriou, Evgeniou and Pontil, NIPS 2006 / ML 2008).

    Book eq. ``ch3-l21``:

        min_W  sum_t ||y_t - X_t w_t - b_t||^2 + alpha sum_j ||W[:, j]||_2 ,

    the (2,1)-norm of ``W`` in the input coordinates (``U = I`` in the paper).
    A feature's weights across tasks form one group, so a feature is kept or
    dropped for all tasks together. The paper penalizes the *squared* norm;
    both give the same path of solutions (only the value of ``alpha`` that
    reaches a given solution differs). With one shared input matrix this is
    scikit-learn's ``MultiTaskLasso`` with ``alpha_sklearn = alpha / (2 n)``.

    Solved by FISTA with group soft-thresholding (:func:`prox_l21`).

    Attributes:
        selected_features_: indices of the features with a non-zero column of ``coef_``.
        n_iter_, converged_: solver report.
    """

    _prox = staticmethod(prox_l21)

    @staticmethod
    def _norm(W: np.ndarray) -> float:
        return float(np.sum(np.linalg.norm(W, axis=0)))

    def _fit_coef(self, X_list, y_list):
        W = super()._fit_coef(X_list, y_list)
        self.selected_features_ = np.flatnonzero(np.linalg.norm(W, axis=0) > 0)
        return W


class TraceNormMTL(_ProximalMTL):
    """Low-rank multi-task learning with the trace (nuclear) norm.

    Book eq. ``ch3-trace``:

        min_W  sum_t ||y_t - X_t w_t - b_t||^2 + alpha ||W||_* ,

    ``||W||_*`` = sum of singular values, the convex envelope of the rank on
    the spectral-norm ball (Fazel, Hindi and Boyd, ACC 2001) and, by Argyriou,
    Evgeniou and Pontil (Machine Learning 2008), multi-task feature learning
    with a learned rotation. Tasks end up in a shared low-dimensional subspace
    of the inputs.

    Solved by FISTA with singular value thresholding (:func:`prox_trace_norm`).

    Attributes:
        singular_values_: singular values of ``coef_`` (descending).
        rank_: number of non-zero singular values (> 1e-10 times the largest).
        n_iter_, converged_: solver report.
    """

    _prox = staticmethod(prox_trace_norm)

    @staticmethod
    def _norm(W: np.ndarray) -> float:
        return float(np.sum(np.linalg.svd(W, compute_uv=False)))

    def _fit_coef(self, X_list, y_list):
        W = super()._fit_coef(X_list, y_list)
        self.singular_values_ = np.linalg.svd(W, compute_uv=False)
        top = self.singular_values_[0] if self.singular_values_.size else 0.0
        self.rank_ = int(np.sum(self.singular_values_ > 1e-10 * top)) if top > 0 else 0
        return W
