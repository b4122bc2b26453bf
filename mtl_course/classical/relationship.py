"""Learning the task relationship: multi-task relationship learning (MTRL)."""

from __future__ import annotations

import numpy as np

from mtl_course.checks import check_nonnegative, check_rate
from mtl_course.classical.base import IterativeSolverMixin, MultiTaskLinearModel, solve_coupled_ridge, squared_loss
from mtl_course.classical.proximal import prox_squared_trace_norm, proximal_least_squares


def covariance_to_correlation(covariance: np.ndarray) -> np.ndarray:
    """``D^{-1/2} S D^{-1/2}`` with ``D = diag(S)``; rows with zero variance get correlation 0 (and 1 on the diagonal)."""
    std = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    safe = np.where(std > 0, std, 1.0)
    correlation = covariance / np.outer(safe, safe)
    correlation[std == 0, :] = 0.0
    correlation[:, std == 0] = 0.0
    np.fill_diagonal(correlation, 1.0)
    return correlation


def _matrix_sqrt_psd(S: np.ndarray) -> np.ndarray:
    eigenvalues, eigenvectors = np.linalg.eigh(S)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


class MultiTaskRelationshipLearning(IterativeSolverMixin, MultiTaskLinearModel):
    """Multi-task relationship learning (Zhang and Yeung, UAI 2010).

    Book eq. ``ch3-mtrl``; learns the weights ``W`` (``T x d``) together with a
    task covariance matrix ``Omega`` (``T x T``)::

        min_{W, b, Omega}  sum_t ||y_t - X_t w_t - b_t||^2 + lambda_1 ||W||_F^2
                           + lambda_2 tr(W' Omega^{-1} W)
        s.t.  Omega >= 0 (PSD),  tr(Omega) = 1 .

    ``tr(W' Omega^{-1} W) = sum_{s,t} (Omega^{-1})_{st} w_s . w_t``: a task
    pair with a positive (negative) learned covariance is pulled towards equal
    (opposite) weights. The problem is jointly convex. For fixed ``W`` the best
    ``Omega`` is ``(W W')^{1/2} / tr((W W')^{1/2})`` (book eq. ``ch3-omega``),
    and plugging it in leaves ``lambda_1 ||W||_F^2 + lambda_2 ||W||_*^2``
    (squared trace norm). Two solvers:

    * ``solver="alternating"``: the paper's algorithm, exact block
      minimizations in turn. W-step: the coupled ridge problem with
      ``P = lambda_1 I + lambda_2 Omega^{-1}``; Omega-step: the formula above
      with ``W W' + eps I`` (``eps > 0`` keeps ``Omega`` invertible, as in
      Argyriou et al.'s alternating algorithm). Stops when the perturbed
      objective decreases by less than ``tol`` (relative). It is fast when the
      solution has full rank and very slow when it is rank deficient (strong
      ``lambda_2`` or few samples): then ``Omega`` is nearly singular.
    * ``solver="proximal"`` (default): FISTA on the eliminated problem with
      the proximal operator of the squared trace norm
      (:func:`~mtl_course.classical.proximal.prox_squared_trace_norm`),
      then the Omega-step once; exact (no ``eps``) and fast in every regime.

    Differences from the paper: the loss here is a plain sum over samples
    (the paper averages within each task) and the factors 1/2 are dropped.

    Args:
        lambda_1: ridge strength, >= 0.
        lambda_2: strength of the task-relationship penalty, > 0.
        solver: ``"proximal"`` or ``"alternating"`` (see above).
        eps: perturbation of ``W W'`` for the alternating solver, > 0.
        fit_intercept: one unpenalized intercept per task.
        tol: relative tolerance (FISTA step, or objective decrease when alternating).
        max_iter: maximum number of iterations.

    Attributes:
        task_covariance_: learned ``Omega``, ``(T, T)``, trace 1.
        task_correlation_: ``Omega`` rescaled to unit diagonal.
        n_iter_, converged_: solver report.
    """

    def __init__(
        self,
        lambda_1: float = 0.1,
        lambda_2: float = 1.0,
        *,
        solver: str = "proximal",
        eps: float = 1e-8,
        fit_intercept: bool = True,
        tol: float = 1e-8,
        max_iter: int = 5000,
    ) -> None:
        super().__init__(fit_intercept=fit_intercept)
        self.solver = solver
        self.lambda_1 = lambda_1
        self.lambda_2 = lambda_2
        self.eps = eps
        self.tol = tol
        self.max_iter = max_iter

    def penalty(self, W: np.ndarray) -> float:
        """``lambda_1 ||W||_F^2 + lambda_2 ||W||_*^2``: the penalty with the best ``Omega`` plugged in."""
        trace_norm = float(np.sum(np.linalg.svd(W, compute_uv=False)))
        return float(self.lambda_1) * float(np.sum(W**2)) + float(self.lambda_2) * trace_norm**2

    def _fit_coef(self, X_list, y_list):
        lambda_1 = check_nonnegative(self.lambda_1, "lambda_1")
        lambda_2 = check_rate(self.lambda_2, "lambda_2")
        self._check_solver_options()
        if self.solver == "alternating":
            W, root, n_iter, converged = self._alternate(X_list, y_list, lambda_1, lambda_2, check_rate(self.eps, "eps"))
        elif self.solver == "proximal":
            result = proximal_least_squares(
                X_list,
                y_list,
                lambda V, step: prox_squared_trace_norm(V, lambda_2 * step),
                ridge=lambda_1,
                tol=float(self.tol),
                max_iter=int(self.max_iter),
            )
            W, n_iter, converged = result.W, result.n_iter, result.converged
            root = _matrix_sqrt_psd(W @ W.T)
        else:
            raise ValueError(f"solver must be 'proximal' or 'alternating', got {self.solver!r}")
        self._record_convergence(n_iter, converged)
        T = len(X_list)
        # Omega-step in closed form; with W = 0 every Omega is optimal and we report I / T.
        self.task_covariance_ = root / np.trace(root) if np.trace(root) > 0 else np.eye(T) / T
        self.task_correlation_ = covariance_to_correlation(self.task_covariance_)
        return W

    def _alternate(self, X_list, y_list, lambda_1: float, lambda_2: float, eps: float):
        """Zhang and Yeung's block minimization on the eps-perturbed objective."""
        T = len(X_list)
        eye = np.eye(T)
        omega = eye / T
        previous, converged = np.inf, False
        for iteration in range(1, int(self.max_iter) + 1):  # noqa: B007 (the count is returned after the loop)
            W = solve_coupled_ridge(X_list, y_list, lambda_1 * eye + lambda_2 * np.linalg.inv(omega))
            root = _matrix_sqrt_psd(W @ W.T + eps * eye)
            omega = root / np.trace(root)
            # Perturbed objective after the Omega-step: its penalty term equals lambda_2 tr(root)^2.
            current = (
                squared_loss(X_list, y_list, W, np.zeros(T))
                + lambda_1 * float(np.sum(W**2))
                + lambda_2 * float(np.trace(root)) ** 2
            )
            if previous - current <= float(self.tol) * max(1.0, abs(current)):
                converged = True
                break
            previous = current
        return W, root, iteration, converged
