r"""What per-task gradients cost: ``T`` backward passes, one batched Jacobian, or the representation.

Gradient methods (chapter 8) need every task's gradient on the shared
parameters, the rows of the Jacobian ``J`` (``T x P``). Three ways to get them
on a hard-sharing network (trunk ``z = h(x)``, one head per task):

* ``"loop"``: ``T`` calls of ``torch.autograd.grad``, one per task loss;
* ``"batched"``: :func:`mtl_course.torch.gradients.jacobian`, one backward pass
  vectorized over the ``T`` unit vectors (``torch.vmap``);
* ``"representation"``: :func:`mtl_course.torch.representation_jacobian`,
  the gradients with respect to the shared representation ``z`` (``T`` rows of
  ``B x Z`` entries), which only back-propagate through the heads. MGDA-UB
  (Sener and Koltun, "Multi-Task Learning as Multi-Objective Optimization",
  NeurIPS 2018) runs MGDA on these instead of ``J``.

:func:`gradient_cost_table` times each (the fastest of a few repeats,
forward pass included) for several task counts and reports how many
numbers the gradient matrix holds. Timings depend on the machine: the book
marks them as such and only relies on their ordering.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mtl_course.torch.gradients import jacobian, representation_jacobian
from mtl_course.torch.models import HardSharing, mlp

__all__ = ["WAYS", "cost_model", "per_task_gradients", "gradient_cost_table"]

WAYS: tuple[str, ...] = ("loop", "batched", "representation")
"""The three ways of computing per-task gradients, in the table's order."""


def cost_model(num_tasks: int, in_features: int = 64, width: int = 128, depth: int = 3,
               seed: int = 0) -> HardSharing:
    """A hard-sharing MLP: a ``depth``-layer ReLU trunk of ``width`` units and ``num_tasks``
    linear regression heads named ``t0, t1, ...`` (initialised from ``seed``)."""
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
        raise ValueError(f"num_tasks must be a positive int, got {num_tasks!r}")
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        trunk = mlp([in_features] + [width] * depth, output_activation=True)
        heads = {f"t{t}": mlp([width, 1]) for t in range(num_tasks)}
        return HardSharing(trunk, heads)
    finally:
        torch.random.set_rng_state(generator_state)


def per_task_gradients(model: HardSharing, x: torch.Tensor, targets: torch.Tensor,
                       way: str) -> torch.Tensor:
    """The per-task gradient matrix by ``way`` (see :data:`WAYS`).

    ``targets`` is ``(B, T)``, one regression target per task (mean squared
    error). Returns ``(T, P)`` for ``"loop"`` and ``"batched"`` (``P`` shared
    parameters; the two agree to rounding) and ``(T, B * Z)`` for
    ``"representation"``.
    """
    if way not in WAYS:
        raise ValueError(f"unknown way {way!r}; choose one of {WAYS}")
    names = model.task_names
    if targets.ndim != 2 or targets.shape != (x.shape[0], len(names)):
        raise ValueError(
            f"targets must have shape (batch, tasks) = ({x.shape[0]}, {len(names)}), "
            f"got {tuple(targets.shape)}"
        )
    z = model.representation(x)
    outputs = model.heads_forward(z)
    losses = [F.mse_loss(outputs[name].squeeze(-1), targets[:, t]) for t, name in enumerate(names)]
    shared = model.shared_parameters()
    if way == "representation":
        return representation_jacobian(losses, z, retain_graph=False)
    if way == "batched":
        return jacobian(losses, shared)
    rows = []
    for t, loss in enumerate(losses):
        grads = torch.autograd.grad(loss, shared, retain_graph=t < len(losses) - 1)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def gradient_cost_table(task_counts: Sequence[int] = (2, 4, 8), batch_size: int = 64,
                        in_features: int = 64, width: int = 128, depth: int = 3,
                        repeats: int = 7, seed: int = 0) -> list[dict[str, object]]:
    """Time every way of :data:`WAYS` for every task count, on the CPU.

    Returns one row per (tasks, way): ``tasks``, ``way``, ``seconds`` (the fastest
    of ``repeats`` timed runs after one warm-up run, forward pass included: the
    minimum is the least disturbed by other work on the machine)
    and ``numbers`` (entries of the returned gradient matrix; times 4 bytes
    in float32).
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    if not task_counts:
        raise ValueError("task_counts is empty")
    rng = np.random.default_rng(seed)
    rows = []
    for T in task_counts:
        model = cost_model(T, in_features, width, depth, seed)
        device = next(model.parameters()).device
        x = torch.as_tensor(rng.standard_normal((batch_size, in_features)), dtype=torch.float32, device=device)
        targets = torch.as_tensor(rng.standard_normal((batch_size, T)), dtype=torch.float32, device=device)
        for way in WAYS:
            per_task_gradients(model, x, targets, way)  # warm-up (allocations, vmap set-up)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                gradients = per_task_gradients(model, x, targets, way)
                times.append(time.perf_counter() - start)
            rows.append({"tasks": T, "way": way, "seconds": float(np.min(times)),
                         "numbers": int(gradients.numel())})
    return rows
