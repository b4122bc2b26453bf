"""Per-task gradients as one Jacobian matrix, writing a direction back into ``.grad``, and
:func:`backward`, the one call of a hand-written loop with a gradient aggregator.

Gradient methods (chapter 8) need every task's gradient on the shared
parameters, stacked as the rows of ``J`` (tasks x parameters). One backward
pass per task costs ``T`` passes; :func:`jacobian` instead runs a single
backward that is vectorised over the ``T`` unit vectors (``torch.vmap``
through ``is_grads_batched=True``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from mtl_course.core.methods import resolve_aggregator

__all__ = [
    "jacobian",
    "representation_jacobian",
    "unflatten_gradients",
    "set_gradients",
    "backward",
    "aggregator_weights",
]


def stack_losses(
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
    With ``retain_graph=False`` (the default) the graph is freed by this
    call, as by ``loss.backward()``; pass True to backpropagate through the
    losses again afterwards (as :func:`backward` does).

    If an operation in the graph has no batching rule (custom autograd
    functions that call ``.item()``, some extensions), it falls back to one
    backward per task and warns (once per call site, Python's default warning
    filter). The fallback needs the graph that the failed batched attempt
    may already have freed: if so, a ValueError says to call again with
    ``retain_graph=True``.

    Examples:
        >>> import torch
        >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> jacobian([w.sum(), (w ** 2).sum()], [w])
        tensor([[1., 1.],
                [2., 4.]])
    """
    values, stacked = stack_losses(losses)
    params = _param_list(params)
    T = len(values)
    try:
        grads = torch.autograd.grad(
            stacked,
            params,
            grad_outputs=torch.eye(T, dtype=stacked.dtype, device=stacked.device),
            is_grads_batched=True,
            retain_graph=retain_graph,
            allow_unused=True,  # unused parameters give None, made zero columns below
        )
    except RuntimeError as error:  # vmap could not batch some backward operation
        if not retain_graph and _graph_freed(values[0], params):
            raise ValueError(
                f"jacobian: the batched backward failed ({str(error).splitlines()[0]}) and freed the "
                "graph; call jacobian(..., retain_graph=True) to fall back to one backward pass per task"
            ) from error
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


def _graph_freed(loss: torch.Tensor, params: list[torch.Tensor]) -> bool:
    try:
        torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    except RuntimeError as error:
        return "backward through the graph a second time" in str(error)
    return False


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

    Examples:
        >>> import torch
        >>> z = torch.tensor([[1.0, 2.0]], requires_grad=True)
        >>> representation_jacobian([z.sum(), (z ** 2).sum()], z)
        tensor([[1., 1.],
                [2., 4.]])
    """
    if not isinstance(representation, torch.Tensor) or not representation.requires_grad:
        raise ValueError("representation must be a tensor that requires grad")
    return jacobian(losses, [representation], retain_graph=retain_graph)


def unflatten_gradients(
    direction: torch.Tensor, params: Iterable[torch.Tensor]
) -> list[torch.Tensor]:
    """Split a flat direction (``P`` elements, as a row of :func:`jacobian`) into
    tensors shaped like ``params`` (views of ``direction``, in the same order).

    Examples:
        >>> import torch
        >>> layer = torch.nn.Linear(2, 1)
        >>> [tuple(g.shape) for g in unflatten_gradients(torch.arange(3.0), layer.parameters())]
        [(1, 2), (1,)]
    """
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

    Examples:
        >>> import torch
        >>> layer = torch.nn.Linear(2, 1)
        >>> set_gradients(layer.parameters(), torch.arange(3.0))  # weight (1, 2) then bias (1,)
        >>> layer.weight.grad, layer.bias.grad
        (tensor([[0., 1.]]), tensor([2.]))
    """
    params = list(params)
    for p, g in zip(params, unflatten_gradients(direction, params)):
        g = g.to(dtype=p.dtype, device=p.device)
        if accumulate and p.grad is not None:
            p.grad.add_(g)
        else:
            p.grad = g.clone()


def _task_parameters_of(losses: list[torch.Tensor], shared: list[torch.Tensor]) -> list[torch.Tensor]:
    """The leaf tensors the losses reach, other than ``shared`` (found by walking the graph)."""
    skip = {id(p) for p in shared}
    seen: set[torch.autograd.graph.Node] = set()
    stack = [loss.grad_fn for loss in losses]
    found: dict[int, torch.Tensor] = {}
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)  # an AccumulateGrad node: a leaf
        if variable is not None and id(variable) not in skip:
            found.setdefault(id(variable), variable)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return list(found.values())


def aggregator_weights(J: torch.Tensor, direction: torch.Tensor) -> np.ndarray:
    r"""Task weights ``w`` with ``w @ J = direction`` (float64 numpy, one per row of ``J``).

    Every aggregator of :mod:`mtl_course.torch.aggregators` returns such a
    combination of the rows; ``w`` solves :math:`G w = J d` with
    :math:`G = J J^\top` by least squares (the minimum-norm solution when
    ``G`` is singular, so rows that are equal or zero share or get no weight).

    Examples:
        >>> import torch
        >>> from mtl_course.torch import mgda
        >>> J = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
        >>> aggregator_weights(J, mgda(J)).round(6)
        array([0.8, 0.2])
    """
    J64 = J.detach().double()
    G = (J64 @ J64.T).cpu().numpy()
    b = (J64 @ direction.detach().double().reshape(-1)).cpu().numpy()
    return np.linalg.lstsq(G, b, rcond=None)[0]


def backward(
    losses: Sequence[torch.Tensor] | Mapping[str, torch.Tensor],
    shared_params: Iterable[torch.Tensor],
    aggregator: Callable[[torch.Tensor], torch.Tensor] | str,
    retain_graph: bool = False,
) -> np.ndarray:
    r"""Fill ``.grad`` for a gradient-aggregation step and return the aggregator's task weights.

    The one call of a hand-written training loop (like torchjd's ``mtl_backward``):

    - the shared parameters get :math:`d = A(J)`, the aggregator applied to the
      Jacobian :math:`J` of the losses with respect to them (:func:`jacobian`);
    - every other parameter the losses reach (each task's head) gets the
      gradient of :math:`\sum_t L_t`, which for a head that only its own task
      uses is that task's own gradient.

    Gradients are added to existing ``.grad`` values, as ``loss.backward()``
    does (call ``optimizer.zero_grad()`` first). ``aggregator`` is a function
    ``J -> direction`` or a name in :data:`~mtl_course.torch.aggregators.AGGREGATORS`.
    Returns the weights ``w`` (float64, one per loss) with ``w @ J = d``
    (:func:`aggregator_weights`), for logging. A task with no labelled rows
    in the batch has no gradient: leave its loss out (``fit`` does, and logs
    its weight as 0).

    Examples:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> trunk, heads = torch.nn.Linear(3, 4), [torch.nn.Linear(4, 1) for _ in range(2)]
        >>> x, y = torch.randn(8, 3), torch.randn(8, 2)
        >>> z = trunk(x)
        >>> losses = [((h(z).squeeze(1) - y[:, t]) ** 2).mean() for t, h in enumerate(heads)]
        >>> w = backward(losses, trunk.parameters(), "upgrad")
        >>> w.shape, trunk.weight.grad.shape, heads[0].weight.grad is not None
        ((2,), torch.Size([4, 3]), True)
    """
    from mtl_course.torch.aggregators import AGGREGATORS

    aggregator = resolve_aggregator(aggregator, AGGREGATORS)
    shared = _param_list(shared_params)
    weights, J, direction = aggregate_backward(losses, shared, aggregator, retain_graph)
    return weights if weights is not None else aggregator_weights(J, direction)


def aggregate_backward(
    losses: Sequence[torch.Tensor] | Mapping[str, torch.Tensor],
    shared: list[torch.Tensor],
    aggregator: Callable[[torch.Tensor], torch.Tensor],
    retain_graph: bool = False,
    recorder: object = None,
) -> tuple[np.ndarray | None, torch.Tensor | None, torch.Tensor | None]:
    """What :func:`backward` does; the one home of the aggregated backward step (``fit`` uses it).

    Returns ``(weights, J, direction)``: for the built-in aggregators (their
    weights depend on ``G = J J^T`` only, :func:`mtl_course.core.gramian.gram_rule`)
    the weights ``w`` are exact and the shared gradient is ``w @ J``; with a
    ``recorder`` (a :class:`~mtl_course.torch.gramian.LayerGramian` that
    recorded the forward pass) ``J`` is never formed: ``G`` is built layer by
    layer and one backward pass of ``sum_t w_t L_t`` gives ``w @ J`` (then
    ``J`` and ``direction`` are None). For any other aggregator ``weights`` is
    None (see :func:`aggregator_weights`).
    """
    from mtl_course.torch.gramian import gramian_weights

    values, stacked = stack_losses(losses)
    weights = J = direction = None
    if recorder is not None:
        G = recorder.gramian(values)
        w = gramian_weights(aggregator, G)
        if w is not None:
            total = (w.to(stacked.dtype) * stacked).sum()
            grads = torch.autograd.grad(total, shared, retain_graph=True, allow_unused=True)
            for p, g in zip(shared, grads):
                g = torch.zeros_like(p) if g is None else g
                p.grad = g if p.grad is None else p.grad + g
            weights = w.double().cpu().numpy()
    if weights is None:
        J = jacobian(values, shared, retain_graph=True)
        w = gramian_weights(aggregator, J @ J.T)
        if w is None:
            direction = aggregator(J)
        else:  # the same direction as aggregator(J), with its weights
            direction = w.to(J.dtype) @ J
            weights = w.double().cpu().numpy()
        for p, g in zip(shared, unflatten_gradients(direction, shared)):
            g = g.detach().to(dtype=p.dtype, device=p.device)
            p.grad = g.clone() if p.grad is None else p.grad + g
    others = _task_parameters_of(values, shared)
    if others:
        torch.autograd.backward(stacked.sum(), inputs=others, retain_graph=retain_graph)
    return weights, J, direction
