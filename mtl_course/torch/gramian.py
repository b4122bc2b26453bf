r"""The Gram matrix of the task gradients, :math:`G = J J^\top`, built layer by layer without ``J``.

Every aggregator of chapter 8 needs the Jacobian ``J`` (tasks x shared
parameters) only through :math:`G = J J^\top` (see
:mod:`mtl_course.core.gramian`), and ``J`` of a large trunk is large: ``T x P``
numbers per step. For a linear layer :math:`y = W a + b` applied to the rows
:math:`a_b` of a batch ``A``, task ``t``'s weight gradient is
:math:`\sum_b D_t[b] a_b^\top` with :math:`D_t = \partial L_t / \partial y`, so

.. math::  \langle g_s, g_t\rangle = \sum_{b, b'} (A A^\top)[b, b']\,(D_s D_t^\top)[b, b']

(plus the bias term, a column of ones in ``A``). The :math:`D_t` of every
recorded layer come from one backward pass per task to the layers' *outputs*
only: no weight gradient is formed. This is the idea
behind torchjd's Gramian engine (Quinton and Rey, "Jacobian Descent for
Multi-Objective Optimization", 2024).

:class:`LayerGramian` records, during the forward pass, the input and output of
every ``nn.Linear`` and ``nn.Conv2d`` whose parameters are among the shared
ones, then builds ``G`` block by block:

* ``nn.Linear``: the Gram trick above, or the per-task weight gradients
  :math:`D_t^\top A` when they are cheaper (large batch, narrow layer; see
  :func:`mtl_course.core.gramian.linear_layer_costs`). Leading batch dimensions
  are flattened into rows.
* ``nn.Conv2d``: the per-task gradients of that layer's weight and bias only,
  from its input and :math:`D_t` (the layer's own backward, batched over the
  tasks): the Gram trick would need the square of batch x output positions.
* **Fallback to the explicit Jacobian**: every other shared parameter (other
  layer types, a layer called more than once per forward pass, a layer whose
  output is modified in place afterwards, parameters used outside a module) gets
  its columns of ``J`` from :func:`mtl_course.torch.gradients.jacobian` and adds
  :math:`J_{rest} J_{rest}^\top`.

So no ``T x P`` tensor is formed; the largest per-task tensor is one
convolution's (or one cheap linear layer's) weight gradient. The TensorFlow
twin is :mod:`mtl_course.tf.gramian`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from mtl_course.core import gramian as core
from mtl_course.core.aggregation import gram_rtol

__all__ = ["LayerGramian", "gramian_weights"]

_LAYERS = (nn.Linear, nn.Conv2d)


class LayerGramian:
    """Records the shared layers during a forward pass, then builds ``G = J J^T`` without ``J``.

    Use it around the forward pass::

        with LayerGramian(model) as recorder:
            outputs = model(x)
        losses = [loss_fn(outputs[t], y[t]) for t in tasks]
        G = recorder.gramian(losses)             # (T, T), the losses' dtype

    Args:
        model: the module whose forward pass is recorded.
        params: the parameters ``J`` is taken with respect to (default
            ``model.shared_parameters()``).

    ``G`` equals ``J @ J.T`` of :func:`mtl_course.torch.gradients.jacobian` ``(losses, params)``
    to rounding. The context can be entered again for the next step (each entry
    starts a fresh recording).

    Examples:
        >>> import torch
        >>> from mtl_course import torch as mtl
        >>> _ = torch.manual_seed(0)
        >>> model = mtl.HardSharing(mtl.mlp((3, 4)), {'a': mtl.mlp((4, 1)), 'b': mtl.mlp((4, 1))})
        >>> x = torch.randn(8, 3)
        >>> with LayerGramian(model) as recorder:
        ...     out = model(x)
        >>> losses = [out['a'].pow(2).mean(), out['b'].abs().mean()]
        >>> G = recorder.gramian(losses)
        >>> J = mtl.jacobian(losses, model.shared_parameters())
        >>> G.shape, bool(torch.allclose(G, J @ J.T, atol=1e-6))
        (torch.Size([2, 2]), True)
    """

    def __init__(self, model: nn.Module, params: Iterable[torch.Tensor] | None = None) -> None:
        if params is None:
            if not callable(getattr(model, "shared_parameters", None)):
                raise ValueError("pass params, or a model with shared_parameters()")
            params = model.shared_parameters()
        self.params = list(params)
        if not self.params:
            raise ValueError("params is empty: there is no shared parameter to build G for")
        wanted = {id(p) for p in self.params}
        owners: dict[int, int] = {}
        for module in model.modules():
            for p in module.parameters(recurse=False):
                owners[id(p)] = owners.get(id(p), 0) + 1
        self.layers: list[nn.Module] = []
        for module in model.modules():
            own = list(module.parameters(recurse=False))
            if (isinstance(module, _LAYERS) and own and all(id(p) in wanted for p in own)
                    and all(owners[id(p)] == 1 for p in own)):
                self.layers.append(module)
        self._records: dict[int, list] = {}
        self._handles: list = []

    def __enter__(self) -> LayerGramian:
        self._records = {id(m): [] for m in self.layers}
        self._handles = [m.register_forward_hook(self._hook) for m in self.layers]
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, module: nn.Module, inputs: tuple, output: object) -> None:
        a = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        if isinstance(output, torch.Tensor) and a is not None:
            self._records[id(module)].append((a, output, a._version, output._version))
        else:
            self._records[id(module)].append(None)

    def _usable(self, module: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
        records = self._records.get(id(module), [])
        if len(records) != 1 or records[0] is None:
            return None  # not called, called more than once, or not a tensor in and out
        a, y, a_version, y_version = records[0]
        if not y.requires_grad or a._version != a_version or y._version != y_version:
            return None  # no graph, or modified in place after the layer
        return a, y

    def gramian(self, losses: Sequence[torch.Tensor] | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``G = J J^T`` (``T x T``, the losses' dtype) of the recorded forward pass.

        The autograd graph is kept for the backward pass of the weighted loss
        that usually follows (it is freed when the losses go out of scope).
        """
        from mtl_course.torch.gradients import jacobian, stack_losses

        values, stacked = stack_losses(losses)
        T = len(values)
        dtype = stacked.dtype if stacked.dtype in (torch.float32, torch.float64) else torch.float32
        G = torch.zeros(T, T, dtype=dtype, device=stacked.device)
        layers, pairs = [], []
        for module in self.layers:
            pair = self._usable(module)
            if pair is not None:
                layers.append(module)
                pairs.append(pair)
        covered = {id(p) for m in layers for p in m.parameters(recurse=False)}
        rest = [p for p in self.params if id(p) not in covered]
        if layers:
            outputs = [y for _, y in pairs]
            # One backward per task to the layer outputs only (no weight gradient is computed).
            # A single backward batched over the tasks (is_grads_batched) was slower from T = 8
            # on and held T x T copies of the heads' gradients: every head's backward gets all
            # T rows of the identity, T - 1 of them zero.
            per_task = [torch.autograd.grad(loss, outputs, retain_graph=True, allow_unused=True)
                        for loss in values]
            D = [None if all(g is None for g in grads) else
                 torch.stack([torch.zeros_like(y) if g is None else g for g in grads])
                 for grads, y in zip(zip(*per_task), outputs)]
            for module, (a, y), d in zip(layers, pairs, D):
                if d is not None:
                    G = G + _layer_block(module, a, y, d.to(dtype), T)
        if rest:
            J = jacobian(values, rest, retain_graph=True).to(dtype)
            G = G + J @ J.T
        return G


def _layer_block(module: nn.Module, a: torch.Tensor, y: torch.Tensor, d: torch.Tensor, T: int) -> torch.Tensor:
    """One layer's ``J_l J_l^T`` from its input ``a``, output ``y`` and output gradients ``d`` (T, *y.shape)."""
    if isinstance(module, nn.Linear):
        d_in, d_out = module.in_features, module.out_features
        A = a.detach().reshape(-1, d_in).to(d.dtype)
        Dt = d.reshape(T, -1, d_out)
        if module.bias is not None:
            A = torch.cat([A, A.new_ones(A.shape[0], 1)], dim=1)
        gram, explicit = core.linear_layer_costs(T, A.shape[0], A.shape[1], d_out)
        if gram <= explicit:
            E = torch.matmul(A @ A.T, Dt)  # (T, rows, d_out): E_t = (A A^T) D_t
            return Dt.reshape(T, -1) @ E.reshape(T, -1).T
        rows = (Dt.transpose(1, 2) @ A).reshape(T, -1)  # per-task [dW | db]
        return rows @ rows.T
    # nn.Conv2d: the layer's own backward to its weight and bias, batched over the tasks
    own = list(module.parameters(recurse=False))
    grads = torch.autograd.grad(y, own, grad_outputs=d.to(y.dtype), is_grads_batched=True, retain_graph=True)
    rows = torch.cat([g.reshape(T, -1).to(d.dtype) for g in grads], dim=1)
    return rows @ rows.T


def gramian_weights(aggregator: Callable, G: torch.Tensor) -> torch.Tensor | None:
    """The weights ``w`` that ``aggregator`` gives for the Gram matrix ``G``, or None if it needs ``J``.

    ``aggregator`` is one of :data:`mtl_course.torch.aggregators.AGGREGATORS` (or a
    ``functools.partial`` of one with keyword options); its direction is then
    ``w @ J``, the gradient of ``sum_t w_t L_t``. The zero tolerance is that of
    ``G``'s dtype, as the aggregator would use for a Jacobian of that dtype.

    Examples:
        >>> import torch
        >>> from mtl_course.torch import mgda
        >>> G = torch.tensor([[1.0, 0.0], [0.0, 4.0]], dtype=torch.float64)  # J J^T of J = diag(1, 2)
        >>> gramian_weights(mgda, G).round(decimals=4)
        tensor([0.8000, 0.2000], dtype=torch.float64)
    """
    from mtl_course.torch.aggregators import AGGREGATORS

    rule = core.gram_rule(aggregator, AGGREGATORS)
    if rule is None:
        return None
    rtol = gram_rtol(G.shape[0], torch.finfo(G.dtype).eps)
    w = rule(G.detach().cpu().numpy().astype(np.float64), rtol)
    return torch.as_tensor(np.asarray(w, dtype=np.float64), dtype=G.dtype, device=G.device)
