"""Gradient aggregators for PyTorch: a Jacobian ``J`` (tasks x parameters) in, one direction out.

Each function validates ``J``, computes the Gram matrix ``J @ J.T`` in ``J``'s
dtype and on its device, hands it (as float64 numpy) to the matching
``*_weights`` function of :mod:`mtl_course.core.aggregation`, which holds the
formula and the paper, and returns ``w @ J`` in ``J``'s dtype and device.
The names and arguments match :mod:`mtl_course.tf.aggregators` one for one.

Typical use, with :func:`mtl_course.torch.gradients.jacobian`::

    J = jacobian(losses, shared_params)
    set_gradients(shared_params, upgrad(J))
    optimizer.step()

Only the small ``T x T`` solve leaves the device. Pass a float64 ``J`` for the
most accurate weights (a float32 Gram matrix is accurate to about 1e-7, and
near-singular cases are decided with a float32 tolerance).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from mtl_course.core import aggregation as core

__all__ = [
    "mean",
    "mgda",
    "pcgrad",
    "cagrad",
    "nash_mtl",
    "imtl_g",
    "aligned_mtl",
    "upgrad",
    "AGGREGATORS",
]


def _check_jacobian(J: torch.Tensor) -> None:
    """Shape and dtype checks; finiteness is checked on the (much smaller) result."""
    if not isinstance(J, torch.Tensor):
        raise TypeError(f"J must be a torch.Tensor, got {type(J).__name__}")
    if J.ndim != 2:
        raise ValueError(f"J must be 2-D (tasks, parameters), got shape {tuple(J.shape)}")
    if J.shape[0] == 0:
        raise ValueError("J has no rows: there must be at least one task")
    if not J.is_floating_point():
        raise TypeError(f"J must have a floating dtype, got {J.dtype}")


def _raise_if_not_finite(J: torch.Tensor, summary: torch.Tensor | np.ndarray) -> None:
    """``summary`` (the Gram matrix or the mean) is finite whenever J is, and NaN or
    inf whenever J has a NaN or inf, so only the error path scans all of J."""
    if isinstance(summary, torch.Tensor):
        # The sum propagates NaN and inf and is the cheapest full pass (about 3x
        # cheaper than aminmax). A sum of finite values that overflows lands on
        # the error path below, which then reports the overflow.
        summary = np.array([summary.sum().item()])
    if bool(np.isfinite(summary).all()):
        return
    bad_rows = (~torch.isfinite(J)).any(dim=1).nonzero().flatten().tolist()
    if bad_rows:
        raise ValueError(f"J contains NaN or inf in row(s) {bad_rows}")
    raise ValueError(
        f"J J^T overflowed in {J.dtype} (the gradients are too large); "
        "rescale the losses or use float64"
    )


def _gram(J: torch.Tensor) -> tuple[np.ndarray, float]:
    """The Gram matrix as float64 numpy, and the zero tolerance for J's dtype."""
    compute_dtype = J.dtype if J.dtype in (torch.float32, torch.float64) else torch.float32
    Jc = J.to(compute_dtype)
    G = (Jc @ Jc.T).cpu().numpy().astype(np.float64)
    _raise_if_not_finite(J, G)
    return G, core.gram_rtol(J.shape[0], torch.finfo(compute_dtype).eps)


def _combine(J: torch.Tensor, weights: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(weights, dtype=J.dtype, device=J.device) @ J


def mean(J: torch.Tensor) -> torch.Tensor:
    """The mean gradient (:func:`mtl_course.core.aggregation.mean_weights`)."""
    _check_jacobian(J)
    T = J.shape[0]
    d = torch.full((T,), 1.0 / T, dtype=J.dtype, device=J.device) @ J  # faster than J.mean(0)
    _raise_if_not_finite(J, d)
    return d


def mgda(J: torch.Tensor) -> torch.Tensor:
    """MGDA, the min-norm convex combination (:func:`mtl_course.core.aggregation.mgda_weights`)."""
    _check_jacobian(J)
    return _combine(J, core.mgda_weights(_gram(J)[0]))


def pcgrad(
    J: torch.Tensor, generator: np.random.Generator | int | None = None
) -> torch.Tensor:
    """PCGrad, the sum of de-conflicted gradients.

    See :func:`mtl_course.core.aggregation.pcgrad_weights`. ``generator`` (a numpy
    ``Generator``, an int seed or ``None``) draws the random task orders.
    """
    _check_jacobian(J)
    return _combine(J, core.pcgrad_weights(_gram(J)[0], generator))


def cagrad(J: torch.Tensor, c: float = 0.5) -> torch.Tensor:
    """CAGrad with ball radius ``c * ||mean gradient||``.

    See :func:`mtl_course.core.aggregation.cagrad_weights`.
    """
    _check_jacobian(J)
    G, rtol = _gram(J)
    return _combine(J, core.cagrad_weights(G, c=c, rtol=rtol))


def nash_mtl(J: torch.Tensor, max_iter: int = 100) -> torch.Tensor:
    """Nash-MTL, solving ``G alpha = 1 / alpha``.

    See :func:`mtl_course.core.aggregation.nash_mtl_weights`.
    """
    _check_jacobian(J)
    G, rtol = _gram(J)
    return _combine(J, core.nash_mtl_weights(G, rtol=rtol, max_iter=max_iter))


def imtl_g(J: torch.Tensor) -> torch.Tensor:
    """IMTL-G, equal projections on every unit gradient.

    See :func:`mtl_course.core.aggregation.imtl_g_weights`.
    """
    _check_jacobian(J)
    G, rtol = _gram(J)
    return _combine(J, core.imtl_g_weights(G, rtol=rtol))


def aligned_mtl(J: torch.Tensor) -> torch.Tensor:
    """Aligned-MTL, the mean of gradients aligned to condition number 1.

    See :func:`mtl_course.core.aggregation.aligned_mtl_weights`.
    """
    _check_jacobian(J)
    G, rtol = _gram(J)
    return _combine(J, core.aligned_mtl_weights(G, rtol=rtol))


def upgrad(J: torch.Tensor) -> torch.Tensor:
    """UPGrad, the mean of the gradients projected onto the dual cone.

    See :func:`mtl_course.core.aggregation.upgrad_weights`.
    """
    _check_jacobian(J)
    return _combine(J, core.upgrad_weights(_gram(J)[0]))


AGGREGATORS: dict[str, Callable[..., torch.Tensor]] = {
    "mean": mean,
    "mgda": mgda,
    "pcgrad": pcgrad,
    "cagrad": cagrad,
    "nash_mtl": nash_mtl,
    "imtl_g": imtl_g,
    "aligned_mtl": aligned_mtl,
    "upgrad": upgrad,
}
