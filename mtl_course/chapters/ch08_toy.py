r"""Every gradient method on the two-objective toy, vectorized over the starting points.

Chapter 8 reproduces the 2-D experiment of Liu et al., "Conflict-Averse
Gradient Descent for Multi-task Learning" (CAGrad), NeurIPS 2021, and of
Navon et al., "Multi-Task Learning as a Bargaining Game" (Nash-MTL), ICML 2022:
start Adam from a few points of :class:`mtl_course.data.TwoObjectiveToy`, let
an aggregator turn the 2 x 2 Jacobian into a direction at every step, and see
where each method ends.

The papers run tens of thousands of Adam steps per start and method with one
Python-level solver call per step. Here every step is one numpy operation over
all starts at once:

* the Jacobians of all starts come from the toy's analytic
  :meth:`~mtl_course.data.TwoObjectiveToy.jacobian`;
* :func:`two_task_weights` computes the weights of every aggregator of
  :mod:`mtl_course.core.aggregation` for a whole batch of 2 x 2 Gram matrices
  with the two-task closed forms below (rows where a closed form does not
  apply, such as parallel or zero gradients, are handed to the package's
  general ``*_weights`` function, so the result is always the package's);
* :func:`adam_trajectories` is Adam (Kingma and Ba, ICLR 2015) in numpy with
  PyTorch's defaults, one independent optimizer state per start.

Two-task closed forms (:math:`n_t = \|g_t\|`, :math:`\cos = g_1\cdot g_2 / (n_1 n_2)`,
:math:`u_t = g_t / n_t`):

* MGDA: :math:`\gamma g_1 + (1-\gamma) g_2`,
  :math:`\gamma = \mathrm{clip}\big((g_2-g_1)\cdot g_2/\|g_1-g_2\|^2, 0, 1\big)`.
* PCGrad: with a conflict (:math:`g_1\cdot g_2 < 0`) each gradient loses its
  component along the other; the order of the tasks does not matter for two.
* UPGrad: for two tasks, half of PCGrad's sum.
* IMTL-G: :math:`\alpha = (n_2, n_1)/(n_1+n_2)`, so
  :math:`d = \frac{n_1 n_2}{n_1+n_2}(u_1+u_2)`.
* Nash-MTL: :math:`\alpha_t = 1/(n_t\sqrt{1+\cos})`, so
  :math:`d = (u_1+u_2)/\sqrt{1+\cos}`, the unit-vector bisector scaled to
  :math:`\|d\| = \sqrt 2`.
* Aligned-MTL: the 2 x 2 eigendecomposition, batched.
* CAGrad: the dual over the segment :math:`w g_1 + (1-w) g_2` is a convex
  function of one variable whose minimiser has a closed form (see ``_cagrad``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mtl_course.core import aggregation as core
from mtl_course.data.toy import LOWER, TwoObjectiveToy, _bowls, _log_arguments

__all__ = [
    "METHODS",
    "ToyRun",
    "two_task_weights",
    "toy_jacobian",
    "adam_trajectories",
    "run_methods",
    "distance_to_pareto_set",
    "reaches_pareto_set",
    "outcome_table",
    "plot_toy_run",
]

METHODS: tuple[str, ...] = (
    "mean", "mgda", "pcgrad", "cagrad", "nash_mtl", "imtl_g", "aligned_mtl", "upgrad",
)
"""The aggregators of :mod:`mtl_course.core.aggregation`, in the book's order."""

_RTOL = core.gram_rtol(2)


def _check_grams(G: object) -> np.ndarray:
    G = np.asarray(G, dtype=np.float64)
    if G.ndim != 3 or G.shape[1:] != (2, 2):
        raise ValueError(f"G must be a batch of 2 x 2 Gram matrices, shape (S, 2, 2), got {G.shape}")
    if not np.all(np.isfinite(G)):
        raise ValueError("G contains NaN or inf")
    return (G + G.transpose(0, 2, 1)) / 2.0


def _package_weights(method: str, G: np.ndarray, c: float) -> np.ndarray:
    """The package's general solver on one Gram matrix (the reference and the fallback)."""
    if method == "cagrad":
        return core.cagrad_weights(G, c=c)
    if method == "pcgrad":
        return core.pcgrad_weights(G, generator=0)  # two tasks: the order does not matter
    return getattr(core, f"{method}_weights")(G)


def _mgda(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    denominator = G[:, 0, 0] + G[:, 1, 1] - 2.0 * G[:, 0, 1]
    ok = denominator > _RTOL * (G[:, 0, 0] + G[:, 1, 1])
    gamma = np.clip((G[:, 1, 1] - G[:, 0, 1]) / np.where(ok, denominator, 1.0), 0.0, 1.0)
    return np.stack([gamma, 1.0 - gamma], axis=1), ok


def _pcgrad(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    g12 = G[:, 0, 1]
    conflict = g12 < 0.0  # a conflict implies both gradients are non-zero
    w1 = 1.0 - np.where(conflict, g12 / np.where(conflict, G[:, 0, 0], 1.0), 0.0)
    w2 = 1.0 - np.where(conflict, g12 / np.where(conflict, G[:, 1, 1], 1.0), 0.0)
    return np.stack([w1, w2], axis=1), np.ones(len(G), dtype=bool)


def _upgrad(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    weights, ok = _pcgrad(G, n1, n2, c)
    return weights / 2.0, ok


def _cosine(G: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cosine where both gradients are non-zero, and that mask."""
    nonzero = (n1 * n2) > np.sqrt(_RTOL) * (G[:, 0, 0] + G[:, 1, 1])
    return G[:, 0, 1] / np.where(nonzero, n1 * n2, 1.0), nonzero


def _imtl_g(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    # alpha = G^{-1} n / sum, where G^{-1} n is proportional to (n2, n1) exactly;
    # nearly parallel gradients (det G below 1e-12 trace^2, where the package
    # starts to treat G as rank one) go to the package.
    _, nonzero = _cosine(G, n1, n2)
    det = G[:, 0, 0] * G[:, 1, 1] - G[:, 0, 1] ** 2
    ok = nonzero & (det > 1e-12 * (G[:, 0, 0] + G[:, 1, 1]) ** 2)
    total = np.where(ok, n1 + n2, 1.0)
    return np.stack([n2 / total, n1 / total], axis=1), ok


def _nash_mtl(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    # Exact for any 1 + cos > 0: the direction has norm sqrt(2) however close to
    # opposite the gradients are. Exactly opposite ones (1 + cos <= 0 in floating
    # point) give zero weights, the package's convention; rows with a zero gradient
    # go to the package.
    cos, nonzero = _cosine(G, n1, n2)
    agree = nonzero & (1.0 + cos > 0.0)
    root = np.sqrt(np.where(agree, 1.0 + cos, 1.0))
    weights = np.stack([1.0 / (np.where(agree, n1, 1.0) * root),
                        1.0 / (np.where(agree, n2, 1.0) * root)], axis=1)
    return np.where(agree[:, None], weights, 0.0), nonzero


def _aligned_mtl(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    eigenvalues, V = np.linalg.eigh(G)  # ascending
    ok = eigenvalues[:, 0] > _RTOL * eigenvalues[:, 1]  # full rank
    safe = np.where(ok[:, None], eigenvalues, 1.0)
    B = np.sqrt(safe[:, :1, None]) * (V / np.sqrt(safe)[:, None, :]) @ V.transpose(0, 2, 1)
    return B @ np.full(2, 0.5), ok


def _cagrad(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    # The dual on the segment g_w = w g1 + (1 - w) g2 is
    #   f(w) = k w + r sqrt(q(w)) + const,  q(w) = A w^2 + B w + C,
    # with k = (|g1|^2 - |g2|^2)/2, A = |g1 - g2|^2, B = 2 (g1.g2 - |g2|^2),
    # C = |g2|^2 and r = c |g0|. f is convex. If r^2 A > k^2 it has a minimiser on
    # the real line; f'(w) = 0 gives q(w*) = r^2 det(G) / (r^2 A - k^2) and
    # 2 A w* + B = -2 k sqrt(q(w*)) / r; clipping w* to [0, 1] gives the
    # constrained minimiser. Otherwise f is monotone with the sign of k.
    a, b, d = G[:, 0, 0], G[:, 0, 1], G[:, 1, 1]
    scale = (a + d) / 2.0
    g0_sq = (a + 2.0 * b + d) / 4.0
    r = c * np.sqrt(np.clip(g0_sq, 0.0, None))
    k, A, B, C = (a - d) / 2.0, a - 2.0 * b + d, 2.0 * (b - d), d
    det = np.clip(a * d - b * b, 0.0, None)
    margin = r**2 * A - k**2
    interior = margin > 0.0
    q_star = r**2 * det / np.where(interior, margin, 1.0)
    w_free = (-B - 2.0 * k * np.sqrt(q_star) / np.where(r > 0, r, 1.0)) / np.where(A > 0, A, 1.0) / 2.0
    w = np.where(interior, np.clip(w_free, 0.0, 1.0), np.where(k > 0.0, 0.0, 1.0))
    gw_norm = np.sqrt(np.clip(A * w**2 + B * w + C, 0.0, None))
    # The package handles c = 0, a zero mean gradient and (nearly) parallel
    # gradients, where zero may be in the convex hull and g_w vanishes.
    ok = (c > 0.0) & (g0_sq > _RTOL * scale) & (det > 1e-9 * scale**2) & (A > 0.0)
    factor = r / np.where(ok, gw_norm, 1.0)
    return 0.5 + factor[:, None] * np.stack([w, 1.0 - w], axis=1), ok


_CLOSED_FORMS: dict[str, Callable] = {
    "mgda": _mgda, "pcgrad": _pcgrad, "upgrad": _upgrad, "imtl_g": _imtl_g,
    "nash_mtl": _nash_mtl, "aligned_mtl": _aligned_mtl, "cagrad": _cagrad,
}


def two_task_weights(method: str, G: np.ndarray, c: float = 0.5) -> np.ndarray:
    r"""The weights of ``method`` for a batch of two-task Gram matrices.

    Args:
        method: one of :data:`METHODS`.
        G: ``(S, 2, 2)`` Gram matrices :math:`G_s = J_s J_s^\top`.
        c: CAGrad's radius parameter (ignored by the other methods).

    Returns:
        ``(S, 2)`` weights; row ``s`` equals
        ``mtl_course.core.aggregation.<method>_weights(G[s])`` up to the
        solvers' accuracy (the closed forms in the module docstring, with the
        package's solver for the rows where they do not apply). The direction
        for start ``s`` is ``weights[s] @ J[s]``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if not np.isfinite(c) or c < 0:
        raise ValueError(f"c must be a finite non-negative number, got {c}")
    G = _check_grams(G)
    if np.any(G[:, 0, 0] < 0) or np.any(G[:, 1, 1] < 0):
        raise ValueError("G has a negative diagonal entry: it is not a Gram matrix")
    return _weights(method, G, c)


def _weights(method: str, G: np.ndarray, c: float) -> np.ndarray:
    """:func:`two_task_weights` without the input checks (the optimisation loop's fast path)."""
    if method == "mean":
        return np.full((len(G), 2), 0.5)
    n1, n2 = np.sqrt(G[:, 0, 0]), np.sqrt(G[:, 1, 1])
    weights, ok = _CLOSED_FORMS[method](G, n1, n2, c)
    ok &= (n1 + n2) > 0.0
    if not ok.all():
        for s in np.flatnonzero(~ok):
            weights[s] = _package_weights(method, G[s], c)
    return weights


def toy_jacobian(toy: TwoObjectiveToy, points: np.ndarray) -> np.ndarray:
    r"""``toy.jacobian(points)``, with the papers' derivative of the gates on the line :math:`x_2 = 0`.

    The gates are :math:`c_1 = \max(\tanh(x_2/2), 0)` and
    :math:`c_2 = \max(\tanh(-x_2/2), 0)`, written ``torch.clamp(..., 0)`` in the
    papers' code. ``torch.clamp`` passes the gradient where its input equals the
    bound, so at :math:`x_2 = 0` (the Nash-MTL start (0, 0)) the papers'
    gradient is :math:`\partial f_i/\partial x_2 = s_i(g_i - q_i)/2`, not 0.
    Where ``toy.jacobian`` returns an all-zero matrix on that line, this
    function fills in that derivative; elsewhere it returns ``toy.jacobian``
    unchanged.
    """
    points = np.asarray(points, dtype=np.float64)
    J = toy.jacobian(points)
    fix = (points[..., 1] == 0.0) & np.all(J == 0.0, axis=(-2, -1))
    if np.any(fix):
        x1 = points[fix][:, 0]
        a1, a2 = _log_arguments(x1, np.zeros_like(x1))
        g1 = np.log(np.maximum(np.abs(a1), LOWER)) + 6.0
        g2 = np.log(np.maximum(np.abs(a2), LOWER)) + 6.0
        q1, q2 = _bowls(x1, np.zeros_like(x1))
        J_fix = J[fix]
        J_fix[:, 0, 1] = toy.scale * 0.5 * (g1 - q1)
        J_fix[:, 1, 1] = 0.5 * (g2 - q2)
        J[fix] = J_fix
    return J


def _check_run_arguments(starts: object, methods: tuple[str, ...], steps: object,
                         lr: float, record_every: object) -> np.ndarray:
    starts = np.asarray(starts, dtype=np.float64)
    if starts.ndim != 2 or starts.shape[1] != 2 or len(starts) == 0:
        raise ValueError(f"starts must have shape (S, 2) with S >= 1, got {starts.shape}")
    if not np.all(np.isfinite(starts)):
        raise ValueError("starts contain NaN or inf")
    if not methods:
        raise ValueError("methods is empty")
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    for name, value in (("steps", steps), ("record_every", record_every)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive number, got {lr}")
    return starts


def _adam(toy: TwoObjectiveToy, starts: np.ndarray, methods: tuple[str, ...], steps: int,
          lr: float, c: float, betas: tuple[float, float], eps: float,
          record_every: int) -> np.ndarray:
    """Adam for every (method, start) pair at once: returns ``(M, S, K, 2)``."""
    M, S = len(methods), len(starts)
    beta1, beta2 = betas
    x = np.broadcast_to(starts, (M, S, 2)).copy()
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    recorded = [x.copy()]
    for step in range(1, steps + 1):
        J = toy_jacobian(toy, x)  # (M, S, 2, 2)
        G = J @ J.transpose(0, 1, 3, 2)
        weights = np.stack([_weights(method, G[i], c) for i, method in enumerate(methods)])
        d = np.einsum("mst,mstp->msp", weights, J)
        m = beta1 * m + (1.0 - beta1) * d
        v = beta2 * v + (1.0 - beta2) * d**2
        m_hat = m / (1.0 - beta1**step)
        denominator = np.sqrt(v) / np.sqrt(1.0 - beta2**step) + eps
        x = x - lr * m_hat / denominator
        if step % record_every == 0 or step == steps:
            recorded.append(x.copy())
    return np.stack(recorded, axis=2)


def adam_trajectories(
    toy: TwoObjectiveToy,
    starts: np.ndarray,
    method: str,
    steps: int,
    lr: float,
    c: float = 0.5,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    record_every: int = 1,
) -> np.ndarray:
    r"""Adam on the toy from every start at once, with ``method``'s direction as the gradient.

    At each step, for every start: :math:`J` = :func:`toy_jacobian`,
    :math:`d = w^\top J` with ``w = two_task_weights(method, J J^T, c)``, then
    Adam's update with ``d`` in place of the gradient (the bias-corrected form
    of Kingma and Ba, ICLR 2015, as ``torch.optim.Adam`` computes it).

    Returns:
        ``(S, K, 2)`` positions: the start, then every ``record_every``-th
        iterate, and always the last one (``K = steps // record_every + 1``,
        plus one when ``record_every`` does not divide ``steps``).
    """
    starts = _check_run_arguments(starts, (method,), steps, lr, record_every)
    return _adam(toy, starts, (method,), steps, lr, c, betas, eps, record_every)[0]


@dataclass(frozen=True)
class ToyRun:
    """One setting of the toy experiment: where every method went from every start.

    ``trajectories[method]`` is the ``(S, K, 2)`` array of :func:`adam_trajectories`.
    """

    toy: TwoObjectiveToy
    starts: np.ndarray
    steps: int
    lr: float
    c: float
    trajectories: dict[str, np.ndarray]

    def final(self, method: str) -> np.ndarray:
        """The ``(S, 2)`` last iterates of ``method``."""
        return self.trajectories[method][:, -1]


def run_methods(
    toy: TwoObjectiveToy,
    starts: np.ndarray,
    methods: tuple[str, ...] = METHODS,
    steps: int = 3000,
    lr: float = 1e-2,
    c: float = 0.5,
    record_every: int = 10,
) -> ToyRun:
    """:func:`adam_trajectories` for every method (all methods and starts in one
    vectorized loop), gathered in a :class:`ToyRun`."""
    methods = tuple(methods)
    starts = _check_run_arguments(starts, methods, steps, lr, record_every)
    paths = _adam(toy, starts, methods, steps, lr, c, (0.9, 0.999), 1e-8, record_every)
    return ToyRun(toy, starts.copy(), steps, lr, c, dict(zip(methods, paths)))


def distance_to_pareto_set(
    toy: TwoObjectiveToy, points: np.ndarray, num: int = 141
) -> np.ndarray:
    r"""Euclidean distance from each point to the Pareto set, shape ``points.shape[:-1]``.

    The set (:meth:`TwoObjectiveToy.pareto_set`, :math:`x_1 \in [-7, 7]`,
    :math:`x_2 \approx -8.36`) is drawn as a polyline through ``num`` of its
    points; the distance to the nearest segment is exact for the polyline.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 0 or points.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2), got {points.shape}")
    polyline = toy.pareto_set(num)
    a, b = polyline[:-1], polyline[1:]  # segments (M, 2)
    p = points[..., None, :]  # (..., 1, 2)
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, axis=-1) / np.sum(ab * ab, axis=-1), 0.0, 1.0)
    nearest = a + t[..., None] * ab
    return np.min(np.linalg.norm(p - nearest, axis=-1), axis=-1)


def reaches_pareto_set(
    toy: TwoObjectiveToy, points: np.ndarray, tol: float = 0.1
) -> np.ndarray:
    """Whether each point lies within ``tol`` of the Pareto set (boolean, ``points.shape[:-1]``)."""
    if not np.isfinite(tol) or tol <= 0:
        raise ValueError(f"tol must be a positive number, got {tol}")
    return distance_to_pareto_set(toy, points) <= tol


def outcome_table(run: ToyRun, tol: float = 0.1) -> list[dict[str, object]]:
    """One row per (method, start): the final point, its distance to the Pareto set and
    whether it is within ``tol`` of it, and the final losses."""
    rows = []
    for method, trajectory in run.trajectories.items():
        final = trajectory[:, -1]
        distance = distance_to_pareto_set(run.toy, final)
        losses = run.toy.losses(final)
        for s, start in enumerate(run.starts):
            rows.append({
                "method": method,
                "start": (float(start[0]), float(start[1])),
                "final": (float(final[s, 0]), float(final[s, 1])),
                "distance": float(distance[s]),
                "reached": bool(distance[s] <= tol),
                "f1": float(losses[s, 0]),
                "f2": float(losses[s, 1]),
            })
    return rows


def plot_toy_run(run: ToyRun, methods: tuple[str, ...] | None = None, ncols: int = 4,
                 grid_points: int = 200, title: str | None = None):
    """One panel per method: the contours of ``f1 + f2``, the Pareto set (black), and the
    trajectory from every start (a marker at the start and a dot at the end).

    Returns the matplotlib figure (the caller ends the cell with ``plt.show()``).
    """
    import matplotlib.pyplot as plt

    methods = tuple(run.trajectories) if methods is None else tuple(methods)
    nrows = -(-len(methods) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.0 * nrows),
                             sharex=True, sharey=True, squeeze=False)
    grid = np.linspace(-10.0, 10.0, grid_points)
    X1, X2 = np.meshgrid(grid, grid)
    total = run.toy.losses(np.stack([X1, X2], axis=-1)).sum(axis=-1)
    front = run.toy.pareto_set(60)
    colors = plt.get_cmap("tab10").colors
    for ax, method in zip(axes.flat, methods):
        ax.contourf(X1, X2, total, levels=25, cmap="Greys", alpha=0.55)
        ax.plot(front[:, 0], front[:, 1], color="black", linewidth=3)
        for s, path in enumerate(run.trajectories[method]):
            color = colors[s % len(colors)]
            ax.plot(path[:, 0], path[:, 1], color=color, linewidth=1.5)
            ax.plot(*path[0], marker="o", color=color, markersize=5)
            ax.plot(*path[-1], marker="*", color=color, markersize=11, markeredgecolor="black")
        ax.set_title(method)
        ax.set_xlim(-10, 10)
        ax.set_ylim(-10, 10)
    for ax in axes.flat[len(methods):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
