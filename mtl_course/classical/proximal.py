"""Accelerated proximal gradient (FISTA) and the proximal operators of the MTL norms.

For ``F(W) = f(W) + g(W)`` with ``f`` smooth (gradient ``L``-Lipschitz) and
``g`` convex (here a norm, or a squared norm) with a cheap proximal operator

    prox_{tau g}(V) = argmin_W  g(W) + ||W - V||_F^2 / (2 tau),

FISTA (Beck and Teboulle, SIAM J. Imaging Sciences 2009) iterates
``W_{k+1} = prox_{g/L}(Y_k - grad f(Y_k) / L)`` from an extrapolated point
``Y_k``. Here momentum is reset whenever it points uphill (gradient-based
adaptive restart, O'Donoghue and Candes, Found. Comput. Math. 2015), which
removes the oscillations that plain FISTA shows on strongly convex problems.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mtl_course.checks import check_nonnegative


def _check_prox(V: np.ndarray, tau: float) -> tuple[np.ndarray, float]:
    """``V`` as a finite float64 matrix and ``tau`` as a finite number >= 0, or a clear error."""
    V = np.asarray(V, dtype=np.float64)
    if V.ndim != 2:
        raise ValueError(f"V must be a 2-D matrix (tasks x features), got shape {V.shape}")
    if not np.all(np.isfinite(V)):
        raise ValueError("V contains NaN or inf")
    tau = check_nonnegative(tau, "tau")
    return V, tau


def prox_l21(V: np.ndarray, tau: float) -> np.ndarray:
    """Proximal operator of ``tau ||W||_{2,1}`` (group soft-thresholding of the features).

    ``W`` has one row per task, so a feature is a *column*;
    ``||W||_{2,1} = sum_j ||W[:, j]||_2``. Each column is shrunk towards zero
    by ``tau`` in Euclidean norm and set exactly to zero when its norm is <= tau,
    which removes the feature from *every* task at once.
    """
    V, tau = _check_prox(V, tau)
    norms = np.linalg.norm(V, axis=0)
    scale = np.where(norms > tau, 1.0 - tau / np.where(norms > 0, norms, 1.0), 0.0)
    return V * scale


def prox_trace_norm(V: np.ndarray, tau: float) -> np.ndarray:
    """Proximal operator of ``tau ||W||_*``: singular value thresholding.

    With ``V = U diag(s) R'``, returns ``U diag(max(s - tau, 0)) R'`` (Cai,
    Candes and Shen, SIAM J. Optimization 2010). Small singular values become
    exactly zero, so the result has low rank.
    """
    V, tau = _check_prox(V, tau)
    U, s, Rt = np.linalg.svd(V, full_matrices=False)
    return (U * np.maximum(s - tau, 0.0)) @ Rt


def prox_squared_trace_norm(V: np.ndarray, tau: float) -> np.ndarray:
    """Proximal operator of ``tau ||W||_*^2`` (the squared trace norm).

    The singular vectors are kept; the singular values ``sigma`` (descending)
    become ``s = max(sigma - 2 tau S, 0)`` with ``S = sum(s)``, the KKT
    conditions of ``min_s tau (sum s)^2 + ||s - sigma||^2 / 2``. If the ``k``
    largest survive, ``S = (sigma_1 + ... + sigma_k) / (1 + 2 tau k)``; ``k`` is
    the largest count with ``sigma_k > 2 tau S``.
    """
    V, tau = _check_prox(V, tau)
    U, sigma, Rt = np.linalg.svd(V, full_matrices=False)
    counts = np.arange(1, sigma.size + 1)
    totals = np.cumsum(sigma) / (1.0 + 2.0 * tau * counts)
    active = sigma > 2.0 * tau * totals
    if not np.any(active):
        return np.zeros_like(V)
    k = int(np.flatnonzero(active)[-1])
    return (U * np.maximum(sigma - 2.0 * tau * totals[k], 0.0)) @ Rt


@dataclass(frozen=True)
class FistaResult:
    """Solution ``W``, the number of iterations run, and whether ``tol`` was reached."""

    W: np.ndarray
    n_iter: int
    converged: bool


def fista(
    gradient: Callable[[np.ndarray], np.ndarray],
    prox: Callable[[np.ndarray, float], np.ndarray],
    lipschitz: float,
    W0: np.ndarray,
    *,
    tol: float = 1e-8,
    max_iter: int = 5000,
) -> FistaResult:
    """Minimize ``f + g`` by FISTA with adaptive restart.

    Stops when the proximal-gradient step is small,
    ``||W_{k+1} - Y_k||_F <= tol * max(1, ||W_{k+1}||_F)``; this residual is
    zero exactly at a minimizer (the fixed-point condition of the prox step).

    Args:
        gradient: ``W -> grad f(W)``.
        prox: ``(V, tau) -> prox_{tau g}(V)``.
        lipschitz: a Lipschitz constant ``L > 0`` of ``grad f``.
        W0: starting point.
        tol: relative tolerance on the step.
        max_iter: iteration budget.
    """
    if not lipschitz > 0:
        raise ValueError(f"the Lipschitz constant must be > 0, got {lipschitz}")
    step = 1.0 / lipschitz
    W = np.array(W0, dtype=np.float64)
    Y, momentum = W.copy(), 1.0
    for iteration in range(1, max_iter + 1):
        W_next = prox(Y - step * gradient(Y), step)
        residual = np.linalg.norm(W_next - Y)
        if residual <= tol * max(1.0, np.linalg.norm(W_next)):
            return FistaResult(W_next, iteration, True)
        if np.vdot(Y - W_next, W_next - W) > 0:  # momentum points uphill: restart
            momentum = 1.0
        momentum_next = (1.0 + np.sqrt(1.0 + 4.0 * momentum**2)) / 2.0
        Y = W_next + (momentum - 1.0) / momentum_next * (W_next - W)
        W, momentum = W_next, momentum_next
    return FistaResult(W, max_iter, False)


def proximal_least_squares(
    X_list: Sequence[np.ndarray],
    y_list: Sequence[np.ndarray],
    prox: Callable[[np.ndarray, float], np.ndarray],
    *,
    ridge: float = 0.0,
    tol: float = 1e-8,
    max_iter: int = 5000,
) -> FistaResult:
    """FISTA for ``sum_t ||y_t - X_t w_t||^2 + ridge ||W||_F^2 + g(W)``, ``W`` of shape ``(T, d)``.

    ``prox(V, step)`` must return ``prox_{step g}(V)``. The smooth part has
    gradient ``2 (X_t'X_t w_t - X_t'y_t) + 2 ridge w_t``, Lipschitz with
    ``L = 2 (max_t lambda_max(X_t'X_t) + ridge)``. Starts from ``W = 0``.
    """
    grams = np.stack([X.T @ X for X in X_list])
    correlations = np.stack([X.T @ y for X, y in zip(X_list, y_list)])

    def gradient(W: np.ndarray) -> np.ndarray:
        return 2.0 * (np.einsum("tij,tj->ti", grams, W) - correlations + ridge * W)

    lipschitz = 2.0 * (max(np.linalg.eigvalsh(G)[-1] for G in grams) + ridge)
    if lipschitz <= 0.0:  # all inputs are zero (e.g. one centered sample per task) and no ridge
        return FistaResult(np.zeros_like(correlations), 0, True)
    return fista(gradient, prox, lipschitz, np.zeros_like(correlations), tol=tol, max_iter=max_iter)
