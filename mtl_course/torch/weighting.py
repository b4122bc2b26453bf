"""Loss weightings in PyTorch (chapter 7): total loss = sum_i w_i L_i.

Each weighting is an ``nn.Module``: call it on the task losses (a dict
``name -> scalar tensor`` or a sequence in task order) and it returns the
total loss; ``.weights`` is the current weight vector (numpy, task order).
Learnable state (the log-variances of :class:`UncertaintyWeighting`) is an
``nn.Parameter``, so give ``weighting.parameters()`` to the optimizer
together with the model's; every other piece of state (loss history, random
generator, GradNorm's weights) travels in ``state_dict()`` as extra state.

The rules themselves live in :mod:`mtl_course.core.weighting` (numpy) and are
shared with the TensorFlow twins in :mod:`mtl_course.tf.weighting`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mtl_course.core import weighting as core

Losses = Mapping[str, torch.Tensor] | Sequence[torch.Tensor]
Tasks = Sequence[str] | int | None


class Weighting(core.WeightingBase, nn.Module):
    """Base class: orders and validates the task losses, holds the task binding.

    ``tasks`` (names or a count) may be given at construction or left to
    :meth:`~mtl_course.core.weighting.WeightingBase.bind` (``fit`` calls it) or to the first call. The bookkeeping
    (``task_names``, ``num_tasks``, ``bind``, ``weights``, ``compute_weights``,
    ``end_epoch``) is :class:`~mtl_course.core.weighting.WeightingBase`'s, shared
    with the TensorFlow twin; this class adds the tensors.

    Your own weighting: override ``compute_weights(losses) -> weights``
    (numpy in, numpy out) and :meth:`forward` returns ``sum_i w_i L_i`` and
    logs ``w``; a subclass that overrides :meth:`forward` instead (for
    learnable weights) sets ``self.weights = w`` there to log them.

    Examples:
        >>> import torch
        >>> weighting = EqualWeighting(tasks=['a', 'b'])
        >>> weighting.stack({'b': torch.tensor(2.0), 'a': torch.tensor(1.0)})
        tensor([1., 2.])
        >>> class InverseLoss(Weighting):
        ...     def compute_weights(self, losses):
        ...         return len(losses) * (1 / losses) / (1 / losses).sum()
        >>> weighting = InverseLoss(tasks=["a", "b"])
        >>> total = weighting({"a": torch.tensor(1.0), "b": torch.tensor(3.0)})
        >>> weighting.weights
        array([1.5, 0.5])
    """

    def __init__(self, tasks: Tasks = None) -> None:
        super().__init__()
        self._start(tasks)

    def forward(self, losses: Losses) -> torch.Tensor:
        """``sum_i w_i L_i`` with ``w = compute_weights(loss values)`` (for subclasses that only
        override :meth:`~mtl_course.core.weighting.WeightingBase.compute_weights`)."""
        stacked = self.stack(losses)
        return self._weighted_sum(stacked, self._weights_from_losses())

    def stack(self, losses: Losses) -> torch.Tensor:
        """The losses as a 1-D tensor in task order, checked to be finite scalars."""
        ordered = self._order.arrange(losses)
        try:  # fast path: scalar tensors of one dtype and device
            stacked = torch.stack(ordered)
        except (TypeError, RuntimeError):
            stacked = None
        if stacked is None or stacked.dim() != 1:
            stacked = self._stack_checked(ordered)
        # tolist() is the cheapest way to read the values on CPU (a sync on GPU, as any check is).
        self._keep_values(stacked.detach().tolist())
        return stacked

    def _stack_checked(self, ordered: list) -> torch.Tensor:
        for i, loss in enumerate(ordered):
            if not isinstance(loss, torch.Tensor):
                raise TypeError(f"loss of task {self._order.label(i)} is a {type(loss).__name__}, not a tensor")
            if loss.numel() != 1:
                raise ValueError(f"loss of task {self._order.label(i)} is not a scalar (shape {tuple(loss.shape)})")
        return torch.stack([loss.reshape(()) for loss in ordered])

    def _weighted_sum(self, stacked: torch.Tensor, weights: np.ndarray) -> torch.Tensor:
        # Weights that change rarely (static, DWA) are copied to the device once.
        cached = getattr(self, "_weights_tensor", None)
        if cached is None or cached[0] is not weights or cached[1].device != stacked.device \
                or cached[1].dtype != stacked.dtype:
            cached = (weights, torch.as_tensor(weights, dtype=stacked.dtype, device=stacked.device))
            self._weights_tensor = cached
        return (cached[1] * stacked).sum()

    # Non-parameter state goes through torch's extra-state hook as plain values
    # (str, tensors), which torch.load(..., weights_only=True) accepts.
    def get_extra_state(self) -> dict[str, Any]:
        state = self._plain_state()
        return {k: torch.from_numpy(np.array(v)) if isinstance(v, (np.ndarray, np.generic)) else v
                for k, v in state.items()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._load_plain_state({k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in state.items()})

    def extra_repr(self) -> str:
        return f"tasks={list(self.task_names) if self.task_names else self.num_tasks}"


class EqualWeighting(Weighting):
    """Equal weighting: ``L = sum_i L_i`` (all weights 1).

    The sum (not the mean) is the common convention in the MTL literature and
    in libraries such as LibMTL; the mean is the same direction with the
    learning rate divided by the number of tasks.

    Examples:
        >>> import torch
        >>> weighting = EqualWeighting()
        >>> weighting({'a': torch.tensor(1.0), 'b': torch.tensor(3.0)}), weighting.weights
        (tensor(4.), array([1., 1.]))
    """

    def forward(self, losses: Losses) -> torch.Tensor:
        return self.stack(losses).sum()


class StaticWeighting(Weighting):
    """Fixed non-negative weights: ``L = sum_i alpha_i L_i`` (chapter 2's linear scalarization).

    ``weights`` is a mapping ``task -> weight`` (which also fixes the task
    names) or a sequence in task order.

    Examples:
        >>> import torch
        >>> weighting = StaticWeighting({'a': 0.25, 'b': 0.75})
        >>> weighting({'a': torch.tensor(1.0), 'b': torch.tensor(3.0)})
        tensor(2.5000)
    """

    def __init__(self, weights: Mapping[str, float] | Sequence[float]) -> None:
        names, w = core.static_weights(weights)
        super().__init__(names if names is not None else len(w))
        self._weights = w

    def forward(self, losses: Losses) -> torch.Tensor:
        return self._weighted_sum(self.stack(losses), self._weights)


class UncertaintyWeighting(Weighting):
    """Homoscedastic uncertainty weighting with learnable log-variances.

    Kendall, Gal, Cipolla, "Multi-Task Learning Using Uncertainty to Weigh
    Losses for Scene Geometry and Semantics", CVPR 2018 (eq. 7 and 10). With
    ``s_i = log sigma_i^2`` (the log-variance parameterisation the paper
    recommends: unconstrained and numerically stable)::

        regression:      L_i / (2 sigma_i^2) + log sigma_i = exp(-s_i) L_i / 2 + s_i / 2
        classification:  L_i / sigma_i^2    + log sigma_i = exp(-s_i) L_i     + s_i / 2

    The total adds these over tasks. ``weights`` are the effective multipliers
    ``exp(-s_i) / 2`` or ``exp(-s_i)``. ``log_vars`` is an ``nn.Parameter``:
    the model's optimizer must own it. For fixed losses the optimum is
    :func:`mtl_course.core.weighting.uncertainty_optimum`. (LibMTL's ``UW``
    uses the regression form for every task and starts from ``s = -0.5``.)

    Args:
        tasks: task names or the number of tasks.
        kinds: "regression" or "classification", for all tasks or per task.
        init: initial ``s_i`` (0: sigma = 1), finite.

    The losses must be non-negative (a negative loss raises ``ValueError``:
    the objective would have no minimum and ``s_i`` would run to -inf).

    Examples:
        >>> import torch
        >>> weighting = UncertaintyWeighting(['a', 'b'])
        >>> total = weighting({'a': torch.tensor(1.0), 'b': torch.tensor(3.0)})
        >>> round(float(total.detach()), 4), weighting.weights  # s_i = 0: L_1/2 + L_2/2
        (2.0, array([0.5, 0.5]))
        >>> len(list(weighting.parameters()))  # the log-variances, trained with the model
        1
    """

    def __init__(self, tasks: Sequence[str] | int, kinds: str | Sequence[str] = "regression",
                 init: float = 0.0) -> None:
        if tasks is None:
            raise ValueError("UncertaintyWeighting needs its tasks (names or a count) up front")
        super().__init__(tasks)
        factors = core.uncertainty_factors(kinds, self.num_tasks)
        self.kinds = tuple(kinds) if not isinstance(kinds, str) else (kinds,) * self.num_tasks
        self.register_buffer("factors", torch.as_tensor(factors, dtype=torch.float32), persistent=False)
        self.log_vars = nn.Parameter(torch.full((self.num_tasks,), core.uncertainty_init(init)))

    @property
    def weights(self) -> np.ndarray:
        return core.uncertainty_multipliers(self.log_vars.detach().cpu().numpy(), self.factors.cpu().numpy())

    def forward(self, losses: Losses) -> torch.Tensor:
        stacked = self.stack(losses)
        if min(self._values) < 0:
            core.check_nonnegative_losses(self._values, self._order, "UncertaintyWeighting", core.UNCERTAINTY_NEEDS)
        s = self.log_vars.to(stacked.dtype)
        return (self.factors.to(stacked.dtype) * torch.exp(-s) * stacked + 0.5 * s).sum()


class DWA(core.DWABase, Weighting):
    """Dynamic Weight Average (Liu, Johns, Davison, CVPR 2019), see
    :func:`~mtl_course.core.weighting.dwa_weights`.

    ``w_i(k) = T softmax(r(k-1) / tau)_i`` with ``r_i(k-1) = L_i(k-1) / L_i(k-2)``
    from the epoch-average training losses of epoch k, for T tasks and the
    temperature ``tau`` (``temperature``); 1 for the first two epochs (as the
    paper and LibMTL's ``DWA``). Every call adds the loss values to the running
    epoch average; the training loop must call :meth:`~mtl_course.core.weighting.DWABase.end_epoch` after each epoch.
    The average is the plain mean over calls (LibMTL's weights each batch by its
    size, which differs only when batches differ in size).

    Examples:
        >>> import torch
        >>> weighting = DWA(temperature=2.0)
        >>> for epoch_losses in ([1.0, 1.0], [1.0, 1.0], [0.5, 1.0]):  # epochs 1-2 use equal weights
        ...     total = weighting({'a': torch.tensor(epoch_losses[0]), 'b': torch.tensor(epoch_losses[1])})
        ...     weighting.end_epoch()
        >>> weighting.weights.round(4)
        array([0.8756, 1.1244])
    """

    def __init__(self, temperature: float = 2.0, tasks: Tasks = None) -> None:
        super().__init__(tasks)
        self._start_dwa(temperature)

    def forward(self, losses: Losses) -> torch.Tensor:
        stacked = self.stack(losses)
        self._averages.add(self._values)
        if self._weights is None:
            self._weights = self._initial_weights(stacked.shape[0])
        return self._weighted_sum(stacked, self._weights)


class RLW(core.RLWBase, Weighting):
    """Random Loss Weighting (Lin et al., TMLR 2022), see :func:`~mtl_course.core.weighting.rlw_weights`.

    Every call draws new weights ``softmax(lambda)``, ``lambda ~ N(0, I)``,
    from a numpy Generator (``generator``: a Generator, an int seed, or None
    for fresh entropy) so the torch and tf twins agree draw for draw.
    ``weights`` is the last draw (uniform ``1/T`` for T tasks before the first). The
    weights sum to 1, not to T (as in the paper and LibMTL's ``RLW``), so the
    total is on the scale of one task's loss, not of the equal-weighting sum.

    Examples:
        >>> import torch
        >>> weighting = RLW(generator=0)
        >>> total = weighting({'a': torch.tensor(1.0), 'b': torch.tensor(3.0)})
        >>> weighting.weights.round(4), round(float(weighting.weights.sum()), 6)
        (array([0.5641, 0.4359]), 1.0)
    """

    def __init__(self, distribution: str = "normal", generator: np.random.Generator | int | None = None,
                 tasks: Tasks = None) -> None:
        super().__init__(tasks)
        self._start_rlw(distribution, generator)

    def forward(self, losses: Losses) -> torch.Tensor:
        stacked = self.stack(losses)
        return self._weighted_sum(stacked, self._draw(stacked.shape[0]))


class GradNorm(Weighting):
    """GradNorm (Chen, Badrinarayanan, Lee, Rabinovich, ICML 2018), see
    :func:`~mtl_course.core.weighting.gradnorm_update`.

    Two calls per training step, in this order::

        total = gradnorm(losses)                     # sum_i w_i(k) L_i, w held constant
        gradnorm.update(losses, shared_parameters)   # w(k) -> w(k+1)
        total.backward()

    ``update`` needs the parameters of the last shared layer ``W`` (``fit``
    passes the last shared weight matrix, :func:`~mtl_course.core.weighting.gradnorm_layer_index`)
    and the graph of the losses (it differentiates each ``L_i`` w.r.t. ``W``
    with ``retain_graph=True``: one extra backward per task to ``W``). It
    takes one Adam step of size ``lr`` on the gradient of
    ``L_grad = sum_i |G_i - mean(G) r_i^alpha|`` (:func:`~mtl_course.core.weighting.gradnorm_gradient`,
    the target held constant) and renormalises the weights to sum to the
    number of tasks, as the paper's Algorithm 1. ``L_i(0)`` is the loss at the first call
    (LibMTL's: the average over the first epoch, trained with equal weights).
    The TensorFlow twin's ``update(losses, shared_variables, tape)`` also takes
    the (persistent) tape.

    The weights have their own Adam (:class:`~mtl_course.core.weighting.Adam`,
    in numpy so both twins take the same steps), not the model's optimizer, so
    they are not ``nn.Parameter``s and travel, with Adam's moments, as extra
    state. (LibMTL's ``GradNorm`` differs in three conventions: it
    parameterises the weights as ``T softmax(logits)`` instead of
    renormalising, steps them with the training optimizer, and takes the
    gradient norms over all shared parameters rather than the last layer.)

    Args:
        alpha: the asymmetry ``alpha`` (larger pulls training rates together harder).
        lr: Adam's step size for the weights. Adam's step is about ``lr``
            per step whatever the loss scale, so the weights move smoothly; a
            weight can travel at most about ``lr`` times the number of steps.

    Examples:
        >>> import torch
        >>> W = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
        >>> losses = {'a': W.sum(), 'b': 3 * W.sum()}  # b's gradient is 3 times larger
        >>> gradnorm = GradNorm(alpha=1.5, lr=0.025)
        >>> total = gradnorm(losses)  # w = (1, 1) at first
        >>> gradnorm.update(losses, [W]).round(4)  # a's weight grows, b's shrinks; the sum stays 2
        array([1.025, 0.975])
    """

    def __init__(self, alpha: float = 1.5, lr: float = 0.025, tasks: Tasks = None) -> None:
        if not alpha >= 0:
            raise ValueError(f"GradNorm alpha must be >= 0, got {alpha}")
        if not lr > 0:
            raise ValueError(f"GradNorm lr must be positive, got {lr}")
        super().__init__(tasks)
        self.alpha, self.lr = float(alpha), float(lr)
        self._initial_losses: np.ndarray | None = None
        self._adam = core.Adam()

    def forward(self, losses: Losses) -> torch.Tensor:
        stacked = self.stack(losses)
        if self._initial_losses is None:
            self._initial_losses = np.array(self._values)
        return self._weighted_sum(stacked, self.weights)

    def update(self, losses: Losses, shared_parameters: Iterable[torch.Tensor]) -> np.ndarray:
        """One GradNorm step on the weights; returns the new weights."""
        params = list(shared_parameters)
        if not params:
            raise ValueError("GradNorm needs the shared layer's parameters (got none)")
        stacked = self.stack(losses)
        if self._initial_losses is None:
            raise ValueError("call the GradNorm weighting on the losses before update()")
        norms = torch.stack([_grad_norm(loss, params) for loss in stacked]).cpu().numpy()
        self._weights = core.gradnorm_update(self.weights, norms, np.array(self._values),
                                             self._initial_losses, self.alpha, self.lr, optimizer=self._adam)
        return self.weights

    def _core_state(self) -> dict[str, Any]:
        k = self.num_tasks or 0
        init = self._initial_losses
        return {"task_weights": self.weights if k else np.zeros(0),
                "initial_losses": np.full(k, np.nan) if init is None else init,
                **self._adam.state(k)}

    def _load_core_state(self, state: Mapping[str, Any]) -> None:
        w = np.asarray(state["task_weights"], dtype=np.float64)
        self._weights = w if w.size else None
        init = np.asarray(state["initial_losses"], dtype=np.float64)
        self._initial_losses = None if init.size == 0 or np.isnan(init).all() else init
        self._adam.load_state(state)


def _grad_norm(loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    squares = [g.double().pow(2).sum() for g in grads if g is not None]
    return torch.stack(squares).sum().sqrt() if squares else torch.zeros((), dtype=torch.float64)


WEIGHTINGS: dict[str, type[Weighting]] = {
    "equal": EqualWeighting,
    "uncertainty": UncertaintyWeighting,
    "gradnorm": GradNorm,
    "dwa": DWA,
    "rlw": RLW,
}
"""Weightings ``fit`` can build by name (static weights need their values, so pass an object).

Examples:
    >>> sorted(WEIGHTINGS)
    ['dwa', 'equal', 'gradnorm', 'rlw', 'uncertainty']
    >>> WEIGHTINGS["dwa"](temperature=2.0).temperature
    2.0
"""
