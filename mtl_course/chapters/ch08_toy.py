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
* :func:`~mtl_course.core.aggregation.two_task_weights` computes the weights
  of every aggregator of :mod:`mtl_course.core.aggregation` for a whole batch
  of 2 x 2 Gram matrices with the two-task closed forms written there (rows
  where a closed form does not apply, such as parallel or zero gradients, are
  handed to the package's general ``*_weights`` function, so the result is
  always the package's);
* :func:`adam_trajectories` is Adam (Kingma and Ba, ICLR 2015) in numpy with
  PyTorch's defaults, one independent optimizer state per start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtl_course.core.aggregation import TWO_TASK_METHODS, two_task_weights
from mtl_course.data.toy import LOWER, TwoObjectiveToy, bowls, log_arguments

__all__ = [
    "METHODS",
    "ToyRun",
    "toy_jacobian",
    "adam_trajectories",
    "run_methods",
    "distance_to_pareto_set",
    "reaches_pareto_set",
    "outcome_table",
    "plot_toy_run",
]

METHODS: tuple[str, ...] = TWO_TASK_METHODS
"""The aggregators of :mod:`mtl_course.core.aggregation`, in the book's order."""

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
        a1, a2 = log_arguments(x1, np.zeros_like(x1))
        g1 = np.log(np.maximum(np.abs(a1), LOWER)) + 6.0
        g2 = np.log(np.maximum(np.abs(a2), LOWER)) + 6.0
        q1, q2 = bowls(x1, np.zeros_like(x1))
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
        weights = np.stack([two_task_weights(method, G[i], c) for i, method in enumerate(methods)])
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
    :math:`d = w^\top J` with ``w =`` :func:`~mtl_course.core.aggregation.two_task_weights` ``(method, J J^T, c)``, then
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
