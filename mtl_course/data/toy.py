r"""The two-objective toy problem of the gradient-conflict chapter (numpy only).

The 2-D problem used to compare MGDA, PCGrad and CAGrad by Liu, Liu, Jin,
Stone and Liu, "Conflict-Averse Gradient Descent for Multi-task Learning",
NeurIPS 2021, and reused (with the first objective scaled by 0.1) by Navon,
Shamsian, Achituve, Maron, Kawaguchi, Chechik and Fetaya, "Multi-Task Learning
as a Bargaining Game" (Nash-MTL), ICML 2022. The functions below are the ones
of the papers' public code, rewritten in vectorized numpy with analytic
gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.optimize import brentq

from mtl_course.checks import check_real, positive_int

__all__ = ["TwoObjectiveToy", "toy_two_objective"]

LOWER = 5e-6
"""The floor of ``|a|`` inside the logarithms (the papers' ``LOWER``)."""


def _frozen(rows: list[list[float]]) -> np.ndarray:
    array = np.array(rows, dtype=np.float64)
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class TwoObjectiveToy:
    r"""Two conflicting objectives of :math:`x = (x_1, x_2) \in \mathbb R^2`.

    With :math:`t = \tanh`,

    .. math::

        g_1 &= \log\max(|{-\tfrac12 x_1} - \tfrac72 + t(x_2)|, \text{LOWER}) + 6, \\
        g_2 &= \log\max(|{-\tfrac12 x_1} + \tfrac72 - t(x_2)|, \text{LOWER}) + 6, \\
        q_{1,2} &= \big((x_1 \mp 7)^2 + 0.1\,(x_2 + 8)^2\big)/10 - 20, \\
        c_1 &= \max(t(x_2/2), 0), \quad c_2 = \max(t(-x_2/2), 0), \\
        f_1 &= s\,(c_1 g_1 + c_2 q_1), \quad f_2 = c_1 g_2 + c_2 q_2,

    with :math:`s` = ``scale`` (1 in CAGrad, 0.1 in Nash-MTL). For
    :math:`x_2 > 0` the objectives are deep, narrow log valleys; for
    :math:`x_2 < 0` they are quadratic bowls centred at :math:`x_1 = \pm 7`.
    The Pareto set is the segment :math:`x_1 \in [-7, 7]` at
    :math:`x_2 \approx -8.36` (see :meth:`pareto_set`).

    Where a ``max`` clips (the argument is below its floor) the gradient of
    that piece is 0; at the floor itself the gradient passes, exactly as
    ``torch.clamp`` differentiates in the papers' code (so the start (0, 0)
    of the Nash-MTL paper, where both gates sit at their floor, can move).
    """

    scale: float = 1.0

    cagrad_starts: ClassVar[np.ndarray] = _frozen([[-8.5, 7.5], [-8.5, -5.0], [9.0, 9.0]])
    """Initial points of Liu et al. (2021)."""
    nashmtl_starts: ClassVar[np.ndarray] = _frozen(
        [[-8.5, 7.5], [0.0, 0.0], [9.0, 9.0], [-7.5, -0.5], [9.0, -1.0]]
    )
    """Initial points of Navon et al. (2022)."""

    def __post_init__(self) -> None:
        scale = check_real(self.scale, "scale")
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")

    @staticmethod
    def _points(points: object) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(points, dtype=np.float64)
        if x.ndim == 0 or x.shape[-1] != 2:
            raise ValueError(f"points must have shape (..., 2), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("points contain NaN or inf")
        return x[..., 0], x[..., 1]

    def losses(self, points: object) -> np.ndarray:
        """``[f_1, f_2]`` at every point: shape ``(..., 2)`` for points ``(..., 2)``."""
        x1, x2 = self._points(points)
        a1, a2 = log_arguments(x1, x2)
        g1 = np.log(np.maximum(np.abs(a1), LOWER)) + 6.0
        g2 = np.log(np.maximum(np.abs(a2), LOWER)) + 6.0
        q1, q2 = bowls(x1, x2)
        c1 = np.maximum(np.tanh(0.5 * x2), 0.0)
        c2 = np.maximum(np.tanh(-0.5 * x2), 0.0)
        return np.stack([self.scale * (c1 * g1 + c2 * q1), c1 * g2 + c2 * q2], axis=-1)

    def jacobian(self, points: object) -> np.ndarray:
        """Analytic ``J[..., i, j] = d f_i / d x_j``: shape ``(..., 2, 2)``."""
        x1, x2 = self._points(points)
        a1, a2 = log_arguments(x1, x2)
        g1 = np.log(np.maximum(np.abs(a1), LOWER)) + 6.0
        g2 = np.log(np.maximum(np.abs(a2), LOWER)) + 6.0
        sech2 = 1.0 - np.tanh(x2) ** 2
        # d log|a| = da / a, zero below the floor LOWER (torch.clamp passes it at the floor)
        live1 = np.abs(a1) >= LOWER
        live2 = np.abs(a2) >= LOWER
        inv1 = np.divide(1.0, a1, out=np.zeros_like(a1), where=live1)
        inv2 = np.divide(1.0, a2, out=np.zeros_like(a2), where=live2)
        dg1 = (-0.5 * inv1, sech2 * inv1)
        dg2 = (-0.5 * inv2, -sech2 * inv2)

        q1, q2 = bowls(x1, x2)
        dq1 = ((x1 - 7.0) / 5.0, 0.02 * (x2 + 8.0))
        dq2 = ((x1 + 7.0) / 5.0, 0.02 * (x2 + 8.0))

        half_t = np.tanh(0.5 * x2)
        c1, c2 = np.maximum(half_t, 0.0), np.maximum(-half_t, 0.0)
        dc = 0.5 * (1.0 - half_t**2)
        dc1 = np.where(half_t >= 0, dc, 0.0)  # inclusive, like torch.clamp's gradient
        dc2 = np.where(half_t <= 0, -dc, 0.0)

        J = np.empty(x1.shape + (2, 2))
        J[..., 0, 0] = self.scale * (c1 * dg1[0] + c2 * dq1[0])
        J[..., 0, 1] = self.scale * (c1 * dg1[1] + dc1 * g1 + c2 * dq1[1] + dc2 * q1)
        J[..., 1, 0] = c1 * dg2[0] + c2 * dq2[0]
        J[..., 1, 1] = c1 * dg2[1] + dc1 * g2 + c2 * dq2[1] + dc2 * q2
        return J

    def pareto_set(self, num: int = 50) -> np.ndarray:
        r"""``num`` points of the Pareto set, shape ``(num, 2)``, ``x_1`` from -7 to 7.

        On :math:`x_2 < 0` the objectives are :math:`c_2 q_i`. A point is
        Pareto stationary when :math:`\lambda \nabla f_1/s + (1-\lambda)\nabla f_2 = 0`
        for some :math:`\lambda \in [0, 1]`. The first coordinate gives
        :math:`\lambda = (x_1 + 7)/14`; the second is then solved for
        :math:`x_2` by Brent's method. ``scale`` does not move the set.
        """
        num = positive_int(num, "num")
        x1s = np.linspace(-7.0, 7.0, num)
        points = np.empty((num, 2))
        for k, x1 in enumerate(x1s):
            lam = (x1 + 7.0) / 14.0

            def stationarity(x2: float, x1: float = x1, lam: float = lam) -> float:
                J = TwoObjectiveToy().jacobian(np.array([x1, x2]))
                return lam * J[0, 1] + (1.0 - lam) * J[1, 1]

            points[k] = x1, brentq(stationarity, -12.0, -8.0, xtol=1e-12)
        return points


def log_arguments(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The arguments of the toy's two log-barrier terms, ``-x1/2 - 3.5 + tanh(x2)`` and ``-x1/2 + 3.5 - tanh(x2)``."""
    t = np.tanh(x2)
    return -0.5 * x1 - 3.5 + t, -0.5 * x1 + 3.5 - t


def bowls(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The toy's two quadratic bowls, centred at ``x1 = 7`` and ``x1 = -7`` (before the smooth switch)."""
    common = 0.1 * (x2 + 8.0) ** 2
    return ((x1 - 7.0) ** 2 + common) / 10.0 - 20.0, ((x1 + 7.0) ** 2 + common) / 10.0 - 20.0


def toy_two_objective(scale: float = 1.0) -> TwoObjectiveToy:
    """The CAGrad toy problem; ``scale=0.1`` gives the Nash-MTL variant."""
    return TwoObjectiveToy(scale=scale)
