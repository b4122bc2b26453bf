"""Multi-task linear regression with a shared linear representation.

All tasks see the inputs through the same ``k`` learned features ``z = C x``
(``C = components_``, shape ``(k, d)``) and fit their own weights ``a_t`` on top:
``w_t = C' a_t``. This is the linear ancestor of hard parameter sharing (a
shared layer plus task heads) and of the structure learning of Ando and Zhang
(JMLR 2005).
"""

from __future__ import annotations

import numpy as np

from mtl_course.checks import check_rate
from mtl_course.classical.base import IterativeSolverMixin, MultiTaskLinearModel, solve_psd, squared_loss


class SharedRepresentationMTL(IterativeSolverMixin, MultiTaskLinearModel):
    """Shared ``k``-dimensional linear representation, fitted by alternating ridge regressions.

    Book eq. ``ch3-shared-rep``; with ``A`` the ``(T, k)`` task weights
    (``loadings_``) and ``C`` the ``(k, d)`` shared features (``components_``):

        min_{A, C}  sum_t ||y_t - X_t C' a_t - b_t||^2 + alpha (||A||_F^2 + ||C||_F^2) .

    The problem is not jointly convex, but each block is a ridge regression:
    for fixed ``C`` every ``a_t`` is a ridge fit on the features ``X_t C'``;
    for fixed ``A``, ``vec(C)`` solves one ``kd x kd`` linear system. The
    objective decreases monotonically. Because
    ``min_{C'A' = W'} (||A||_F^2 + ||C||_F^2) = 2 ||W||_*`` (Srebro, Rennie and
    Jaakkola, NIPS 2004), its global minima are those of
    :class:`~mtl_course.classical.TraceNormMTL` with ``alpha_trace = 2 alpha``
    restricted to rank <= k; :meth:`penalty` reports ``2 alpha ||W||_*``.

    Initialization (deterministic): the top-``k`` SVD factors of independent
    ridge weights.

    Args:
        n_components: size ``k`` of the shared representation, ``1 <= k <= min(T, d)``.
        alpha: ridge strength on both factors, > 0 (keeps each step well posed).
        fit_intercept: one unpenalized intercept per task.
        tol: stop when the objective decreases by less than ``tol`` (relative).
        max_iter: maximum number of alternations.

    Attributes:
        components_: ``(k, d)``; ``loadings_``: ``(T, k)``; ``coef_ = loadings_ @ components_``.
        n_iter_, converged_: solver report.
    """

    def __init__(
        self,
        n_components: int = 2,
        alpha: float = 1.0,
        *,
        fit_intercept: bool = True,
        tol: float = 1e-9,
        max_iter: int = 2000,
    ) -> None:
        super().__init__(fit_intercept=fit_intercept)
        self.n_components = n_components
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter

    def penalty(self, W: np.ndarray) -> float:
        return 2.0 * float(self.alpha) * float(np.sum(np.linalg.svd(W, compute_uv=False)))

    def _fit_coef(self, X_list, y_list):
        alpha = check_rate(self.alpha, "alpha")
        self._check_solver_options()
        T, d = len(X_list), X_list[0].shape[1]
        k = int(self.n_components)
        if not 1 <= k <= min(T, d):
            raise ValueError(f"n_components must be in 1..min(T, d) = {min(T, d)}, got {self.n_components}")
        grams = np.stack([X.T @ X for X in X_list])
        correlations = np.stack([X.T @ y for X, y in zip(X_list, y_list)])

        ridge = np.stack([solve_psd(G + max(alpha, 1e-8) * np.eye(d), c) for G, c in zip(grams, correlations)])
        U, s, Vt = np.linalg.svd(ridge, full_matrices=False)
        A = U[:, :k] * np.sqrt(s[:k])
        C = np.sqrt(s[:k])[:, None] * Vt[:k]

        def objective(A: np.ndarray, C: np.ndarray) -> float:
            return squared_loss(X_list, y_list, A @ C, np.zeros(T)) + alpha * (np.sum(A**2) + np.sum(C**2))

        previous, converged = objective(A, C), False
        for iteration in range(1, int(self.max_iter) + 1):  # noqa: B007 (the count is returned after the loop)
            # Task step: ridge of y_t on the shared features X_t C'.
            task_grams = np.einsum("ia,tab,jb->tij", C, grams, C) + alpha * np.eye(k)
            A = np.linalg.solve(task_grams, (correlations @ C.T)[:, :, None])[:, :, 0]
            # Representation step: X_t C' a_t = (a_t' kron X_t) vec(C') with column-major vec(C') = C.ravel(),
            # so the normal equations are (sum_t a_t a_t' kron X_t'X_t + alpha I) vec(C') = sum_t a_t kron X_t'y_t.
            system = np.einsum("ti,tj,tab->iajb", A, A, grams).reshape(k * d, k * d) + alpha * np.eye(k * d)
            rhs = np.einsum("ti,ta->ia", A, correlations).ravel()
            C = solve_psd(system, rhs).reshape(k, d)
            current = objective(A, C)
            if previous - current <= float(self.tol) * max(1.0, abs(current)):
                converged = True
                break
            previous = current
        self._record_convergence(iteration, converged)
        self.loadings_, self.components_ = A, C
        return A @ C
