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
near-singular cases are decided with a float32 tolerance). float16 and bfloat16
Jacobians get a float32 Gram matrix. When ``J J^T`` would underflow or overflow
(gradients below about 1e-12 or above 1e19 in float32), each row of ``J`` is
rescaled by a power of two before the product, so the weights do not depend on
the gradients' absolute scale; a direction too large for ``J``'s dtype raises.

Differentiability: the weights are computed from ``J.detach()`` and held
constant (as torchjd does), so when ``J.requires_grad`` the result ``w @ J`` is
differentiable with respect to ``J`` through the combination only, exactly as
for ``mean``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

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


def _raise_if_bad_rows(J: torch.Tensor) -> None:
    bad_rows = (~torch.isfinite(J)).any(dim=1).nonzero().flatten().tolist()
    if bad_rows:
        raise ValueError(f"J contains NaN or inf in row(s) {bad_rows}")


def _raise_if_not_finite(J: torch.Tensor, d: torch.Tensor) -> None:
    """The direction ``d`` is finite whenever J is and nothing overflowed, and NaN
    or inf whenever J has a NaN or inf, so only the error path scans all of J."""
    # The sum propagates NaN and inf and is the cheapest full pass (about 3x
    # cheaper than aminmax). A sum of finite values can overflow (float16), so
    # a non-finite sum is confirmed on d itself before anything is reported.
    if bool(torch.isfinite(d.sum())) or bool(torch.isfinite(d).all()):
        return
    _raise_if_bad_rows(J)
    raise ValueError(
        f"the aggregated direction overflowed in {J.dtype} (the gradients are too large); "
        "rescale the losses or use a wider dtype"
    )


def _gram(J: torch.Tensor) -> tuple[np.ndarray, float]:
    """The Gram matrix as float64 numpy, and the zero tolerance for J's dtype.

    Computed in J's dtype (float32 for half precisions). Where it overflowed, or
    a diagonal entry of a non-zero row is so small that underflow may have eaten
    its digits, it is recomputed in float64 from J with each row divided by its
    largest entry, and the scales are put back.
    """
    compute_dtype = J.dtype if J.dtype in (torch.float32, torch.float64) else torch.float32
    info = torch.finfo(compute_dtype)
    rtol = core.gram_rtol(J.shape[0], info.eps)
    J = J.detach()
    Jc = J.to(compute_dtype)
    G = (Jc @ Jc.T).cpu().numpy().astype(np.float64)
    small = ~(np.diag(G) >= info.tiny / info.eps**2)
    finite = bool(np.isfinite(G).all())
    if finite and not small.any():
        return G, rtol
    if not finite:
        _raise_if_bad_rows(J)
    row_max = J.abs().amax(dim=1).to(torch.float64)
    if finite and not bool((row_max.cpu().numpy() > 0)[small].any()):
        return G, rtol  # the small rows are exactly zero
    scales = torch.where(row_max > 0, row_max, torch.ones_like(row_max))
    Js = J.to(torch.float64) / scales[:, None]
    s = scales.cpu().numpy()
    return (Js @ Js.T).cpu().numpy() * np.outer(s, s), rtol


def _combine(J: torch.Tensor, weights: np.ndarray, G: np.ndarray) -> torch.Tensor:
    """``weights @ J`` in J's dtype; raises if the direction overflows that dtype.

    ``|weights| @ sqrt(diag(G))`` bounds every entry of the result, so it is only
    checked when that bound comes near the dtype's largest number.
    """
    info = torch.finfo(J.dtype)
    largest = float(np.max(np.abs(weights)))
    if largest > info.max / 4:  # weights not representable in J's dtype: combine in float64
        w = torch.as_tensor(weights, dtype=torch.float64, device=J.device)
        d = (w @ J.to(torch.float64)).to(J.dtype)
    elif info.bits < 32:  # half precision: weights rounded to 3 digits would move d; round d once
        w = torch.as_tensor(weights, dtype=torch.float32, device=J.device)
        d = (w @ J.to(torch.float32)).to(J.dtype)
    else:
        d = torch.as_tensor(weights, dtype=J.dtype, device=J.device) @ J
    if not float(np.abs(weights) @ np.sqrt(np.diag(G))) < info.max / 2:
        _raise_if_not_finite(J, d)
    return d


def _finite_probe(d: torch.Tensor) -> float:
    """A number that is NaN or inf whenever ``d`` holds a NaN or inf: ``d . d`` (one BLAS
    pass; squares, so no ``-inf + inf``) in float32 and float64, the sum in half
    precisions (whose squares overflow at 256). It can be inf for a finite ``d`` (an
    overflow), so a non-finite probe is confirmed on ``d`` before anything is reported."""
    if d.dtype in (torch.float32, torch.float64):
        return torch.dot(d, d).item()
    return d.sum().item()


_MEAN_WEIGHTS: dict[tuple, torch.Tensor] = {}


def mean(J: torch.Tensor) -> torch.Tensor:
    """The mean gradient (:func:`mtl_course.core.aggregation.mean_weights`).

    Raises ``ValueError`` naming the rows if ``J`` holds NaN or inf. That check
    reads the result, not ``J`` (the weights are positive, so a NaN or inf anywhere
    in ``J`` reaches the result): one reduction over the ``P`` entries of the result,
    and the full check that names the rows only when that reduction is not finite.

    The reduction reads ``P`` numbers where the product reads ``T P`` and writes
    ``P`` (reading each cache line before writing it): about ``1 / (T + 2)`` more
    memory traffic. Computing and checking the result in chunks small enough to stay
    in cache saves part of that at best, but its extra calls and its reliance on the
    cache made it slower and far more variable on a loaded CPU (1.2-1.5x torchjd's
    ``Mean`` against 1.0-1.2x; ``benchmarks/aggregators.py``), so the product is one call.
    A kernel fusing the product and the check, compiled by ``torch.compile`` for the
    CPU, was slower still (1.2-1.7x, after a 36 s compile), so large ``P`` pays the
    one extra read: ``benchmarks/aggregators.py --methods mean`` prints it beside the
    product alone.

    Examples:
        >>> import torch
        >>> J = torch.tensor([[1.0, 0.0], [-0.5, 1.0]], dtype=torch.float64)
        >>> mean(J).round(decimals=4)
        tensor([0.2500, 0.5000], dtype=torch.float64)
    """
    _check_jacobian(J)
    T = J.shape[0]
    key = (T, J.dtype, J.device)
    w = _MEAN_WEIGHTS.get(key)
    if w is None:
        w = _MEAN_WEIGHTS.setdefault(key, torch.full((T,), 1.0 / T, dtype=J.dtype, device=J.device))
    d = torch.mv(J.T, w)  # the same bits as w @ J, a little faster; faster than J.mean(0)
    probe = _finite_probe(d.detach())
    if not math.isfinite(probe):  # NaN or inf in J, or a finite d whose probe overflowed
        _raise_if_not_finite(J, d)
    return d


def mgda(J: torch.Tensor) -> torch.Tensor:
    """MGDA, the min-norm convex combination (:func:`mtl_course.core.aggregation.mgda_weights`).

    Examples:
        >>> import torch
        >>> J = torch.tensor([[1.0, 0.0], [-0.5, 1.0]], dtype=torch.float64)
        >>> mgda(J).round(decimals=4)
        tensor([0.3077, 0.4615], dtype=torch.float64)
    """
    _check_jacobian(J)
    G, _ = _gram(J)
    return _combine(J, core.mgda_weights(G), G)


def pcgrad(
    J: torch.Tensor, generator: np.random.Generator | int | None = None
) -> torch.Tensor:
    """PCGrad, the sum of de-conflicted gradients.

    See :func:`mtl_course.core.aggregation.pcgrad_weights`. ``generator`` (a numpy
    ``Generator``, an int seed or ``None``) draws the random task orders.

    Examples:
        >>> import torch
        >>> J = torch.tensor([[1.0, 0.0], [-0.5, 1.0]], dtype=torch.float64)
        >>> pcgrad(J, generator=0).round(decimals=4)
        tensor([0.8000, 1.4000], dtype=torch.float64)
    """
    _check_jacobian(J)
    G, _ = _gram(J)
    return _combine(J, core.pcgrad_weights(G, generator), G)


def cagrad(J: torch.Tensor, c: float = 0.5) -> torch.Tensor:
    """CAGrad with ball radius ``c * ||mean gradient||``.

    See :func:`mtl_course.core.aggregation.cagrad_weights` (which also says how
    it differs from the authors' code, LibMTL and torchjd: no final rescaling).

    Examples:
        >>> import torch
        >>> J = torch.tensor([[1.0, 0.0], [-0.5, 1.0]], dtype=torch.float64)
        >>> cagrad(J, c=0.5).round(decimals=4)
        tensor([0.4579, 0.6868], dtype=torch.float64)
    """
    _check_jacobian(J)
    G, rtol = _gram(J)
    return _combine(J, core.cagrad_weights(G, c=c, rtol=rtol), G)


def nash_mtl(J: torch.Tensor, max_iter: int = 100) -> torch.Tensor:
    """Nash-MTL, solving ``G alpha = 1 / alpha``.

    See :func:`mtl_course.core.aggregation.nash_mtl_weights` (solved exactly:
    no normalisation of the Gram matrix and no clipping of the update, unlike
    the authors' code).

    Examples:
        >>> import torch
        >>> J = torch.tensor([[1.0, 0.0], [-0.5, 1.0]], dtype=torch.float64)
        >>> nash_mtl(J).round(decimals=4)
        tensor([0.7435, 1.2030], dtype=torch.float64)
    """
    _check_jacobian(J)
    G, rtol = _gram(J)
    return _combine(J, core.nash_mtl_weights(G, rtol=rtol, max_iter=max_iter), G)


def imtl_g(J: torch.Tensor) -> torch.Tensor:
    """IMTL-G, equal projections on every unit gradient.

    See :func:`mtl_course.core.aggregation.imtl_g_weights` (applied to the
    parameter gradients ``J``; the paper uses the gradients on the shared features).

    Examples:
        >>> import torch
        >>> J = torch.tensor([[1.0, 0.0], [-0.5, 1.0]], dtype=torch.float64)
        >>> imtl_g(J).round(decimals=4)
        tensor([0.2918, 0.4721], dtype=torch.float64)
    """
    _check_jacobian(J)
    G, rtol = _gram(J)
    return _combine(J, core.imtl_g_weights(G, rtol=rtol), G)


def aligned_mtl(J: torch.Tensor) -> torch.Tensor:
    """Aligned-MTL, the mean of gradients aligned to condition number 1.

    See :func:`mtl_course.core.aggregation.aligned_mtl_weights` (the mean of
    the aligned gradients; LibMTL uses their sum, ``T`` times longer).

    Examples:
        >>> import torch
        >>> J = torch.tensor([[1.0, 0.0], [-0.5, 1.0]], dtype=torch.float64)
        >>> aligned_mtl(J).round(decimals=4)
        tensor([0.2840, 0.4734], dtype=torch.float64)
    """
    _check_jacobian(J)
    G, rtol = _gram(J)
    return _combine(J, core.aligned_mtl_weights(G, rtol=rtol), G)


def upgrad(J: torch.Tensor) -> torch.Tensor:
    """UPGrad, the mean of the gradients projected onto the dual cone.

    See :func:`mtl_course.core.aggregation.upgrad_weights` (projections solved
    exactly; torchjd adds a 1e-4 ridge to the normalised Gram matrix).

    Examples:
        >>> import torch
        >>> J = torch.tensor([[1.0, 0.0], [-0.5, 1.0]], dtype=torch.float64)
        >>> d = upgrad(J)
        >>> d.round(decimals=4), bool((J @ d >= 0).all())
        (tensor([0.4000, 0.7000], dtype=torch.float64), True)
    """
    _check_jacobian(J)
    G, rtol = _gram(J)
    return _combine(J, core.upgrad_weights(G, rtol=rtol), G)


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
"""Aggregator name -> aggregator function; :func:`~mtl_course.torch.train.fit` accepts each name as its ``method``.

Examples:
    >>> import torch
    >>> sorted(AGGREGATORS)
    ['aligned_mtl', 'cagrad', 'imtl_g', 'mean', 'mgda', 'nash_mtl', 'pcgrad', 'upgrad']
    >>> AGGREGATORS["mgda"](torch.eye(2, dtype=torch.float64))
    tensor([0.5000, 0.5000], dtype=torch.float64)
"""
