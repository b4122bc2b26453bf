"""Per-task gradients as one Jacobian matrix, and writing a direction back into ``.grad``.

Gradient methods (chapter 8) need every task's gradient on the shared
parameters, stacked as the rows of ``J`` (tasks x parameters). One backward
pass per task costs ``T`` passes; :func:`jacobian` instead runs a single
backward that is vectorised over the ``T`` unit vectors (``torch.vmap``
through ``is_grads_batched=True``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence

import torch

__all__ = [
    "jacobian",
    "representation_jacobian",
    "unflatten_gradients",
    "set_gradients",
]


def _stack_losses(
    losses: Sequence[torch.Tensor] | Mapping[str, torch.Tensor],
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The losses as a list and stacked into a vector, after checking them."""
    names = list(losses.keys()) if isinstance(losses, Mapping) else None
    values = list(losses.values()) if isinstance(losses, Mapping) else list(losses)
    if not values:
        raise ValueError("losses is empty: there must be at least one task loss")
    for k, loss in enumerate(values):
        label = repr(names[k]) if names else str(k)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(f"loss {label} must be a scalar tensor")
        if not loss.requires_grad:
            raise ValueError(f"loss {label} does not require grad (was it computed under no_grad?)")
    stacked = torch.stack([loss.reshape(()) for loss in values])
    finite = torch.isfinite(stacked)
    if not bool(finite.all()):
        bad = [repr(names[k]) if names else str(k) for k in (~finite).nonzero().flatten().tolist()]
        raise ValueError(f"loss(es) {', '.join(bad)} are NaN or inf")
    return values, stacked


def _param_list(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    params = list(params)
    if not params:
        raise ValueError("params is empty: pass the tensors to differentiate with respect to")
    for k, p in enumerate(params):
        if not isinstance(p, torch.Tensor) or not p.requires_grad:
            raise ValueError(f"params[{k}] must be a tensor that requires grad")
    return params


def jacobian(
    losses: Sequence[torch.Tensor] | Mapping[str, torch.Tensor],
    params: Iterable[torch.Tensor],
    retain_graph: bool = False,
) -> torch.Tensor:
    r"""The Jacobian of the task losses with respect to ``params``, shape ``(T, P)``.

    Row ``t`` is :math:`\nabla_\theta L_t` flattened, with the parameters
    concatenated in the order given (``P`` is their total number of elements);
    parameters a loss does not depend on give zero columns. ``losses`` is a
    sequence or a dict (task name -> loss) of scalar tensors.

    One backward pass computes all rows: ``torch.autograd.grad`` of the stacked
    losses with the identity as a batch of ``grad_outputs``
    (``is_grads_batched=True`` runs the backward under ``torch.vmap``).
    If an operation in the graph has no batching rule (custom autograd
    functions that call ``.item()``, some extensions), it falls back to one
    backward per task and warns (once per call site, Python's default warning
    filter). For that fallback the batched attempt keeps the graph; it is freed
    as usual when the losses go out of scope, or after the last backward when
    the fallback runs with ``retain_graph=False``.
    """
    values, stacked = _stack_losses(losses)
    params = _param_list(params)
    T = len(values)
    try:
        grads = torch.autograd.grad(
            stacked,
            params,
            grad_outputs=torch.eye(T, dtype=stacked.dtype, device=stacked.device),
            is_grads_batched=True,
            retain_graph=True,
            allow_unused=True,  # unused parameters give None, made zero columns below
        )
    except RuntimeError as error:  # vmap could not batch some backward operation
        warnings.warn(
            f"jacobian: batched backward failed ({str(error).splitlines()[0]}); "
            "falling back to one backward pass per task",
            UserWarning,
            stacklevel=2,
        )
        rows = []
        for t, loss in enumerate(values):
            task_grads = torch.autograd.grad(
                loss,
                params,
                retain_graph=retain_graph or t < T - 1,
                allow_unused=True,
                materialize_grads=True,
            )
            rows.append(torch.cat([g.reshape(-1) for g in task_grads]))
        return torch.stack(rows)
    columns = [
        p.new_zeros(T, p.numel()) if g is None else g.reshape(T, -1) for g, p in zip(grads, params)
    ]
    return torch.cat(columns, dim=1)


def representation_jacobian(
    losses: Sequence[torch.Tensor] | Mapping[str, torch.Tensor],
    representation: torch.Tensor,
    retain_graph: bool = True,
) -> torch.Tensor:
    r"""Gradients of the task losses with respect to the shared representation ``z``.

    Returns ``(T, z.numel())`` (a batch of representations is flattened too).
    MGDA-UB (Sener and Koltun, "Multi-Task Learning as Multi-Objective
    Optimization", NeurIPS 2018, section 3.3) runs MGDA on these rows instead
    of the parameter gradients: one backward through the task heads only,
    an upper bound that is much cheaper than :func:`jacobian` on the trunk.
    ``retain_graph`` defaults to True because the weighted loss is then
    backpropagated through the whole network.
    """
    if not isinstance(representation, torch.Tensor) or not representation.requires_grad:
        raise ValueError("representation must be a tensor that requires grad")
    return jacobian(losses, [representation], retain_graph=retain_graph)


def unflatten_gradients(
    direction: torch.Tensor, params: Iterable[torch.Tensor]
) -> list[torch.Tensor]:
    """Split a flat direction (``P`` elements, as a row of :func:`jacobian`) into
    tensors shaped like ``params`` (views of ``direction``, in the same order)."""
    params = list(params)
    total = sum(p.numel() for p in params)
    if direction.ndim != 1 or direction.numel() != total:
        raise ValueError(
            f"direction must be 1-D with {total} elements (the parameters' total), "
            f"got shape {tuple(direction.shape)}"
        )
    pieces = torch.split(direction, [p.numel() for p in params])
    return [piece.view_as(p) for piece, p in zip(pieces, params)]


def set_gradients(
    params: Iterable[torch.Tensor], direction: torch.Tensor, accumulate: bool = False
) -> None:
    """Write a flat direction into the parameters' ``.grad``, ready for ``optimizer.step()``.

    Overwrites ``.grad`` by default (no ``zero_grad`` needed); with
    ``accumulate=True`` it adds to an existing ``.grad`` instead (for example
    to a regularizer's gradient from an ordinary ``backward()``).
    """
    params = list(params)
    for p, g in zip(params, unflatten_gradients(direction, params)):
        g = g.to(dtype=p.dtype, device=p.device)
        if accumulate and p.grad is not None:
            p.grad.add_(g)
        else:
            p.grad = g.clone()
