r"""Lookahead inter-task affinity measured while training, in PyTorch (chapter 10).

:func:`task_affinity` trains a multi-task model with plain SGD on the sum of
the task losses and, every ``every`` steps, records the lookahead affinity of
Fifty, Amid, Zhao, Yu, Anil and Finn, "Efficiently Identifying Task Groupings
for Multi-Task Learning", NeurIPS 2021 (the formula and the grouping step are
in :mod:`mtl_course.core.affinity`). Its twin is :func:`mtl_course.tf.affinity.task_affinity`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from mtl_course.core import tasks as core_tasks
from mtl_course.core.affinity import AffinityTrace, check_affinity_arguments, lookahead_affinity
from mtl_course.core.tasks import Task
from mtl_course.torch.gradients import jacobian, unflatten_gradients
from mtl_course.torch.train import Data, task_loss

__all__ = ["task_affinity"]


def task_affinity(model: nn.Module, data: Data, tasks: Mapping[str, Task | str], epochs: int = 1,
                  batch_size: int = 64, lr: float = 0.05, every: int = 1, seed: int = 0) -> AffinityTrace:
    r"""Train ``model`` and record the lookahead inter-task affinity (Fifty et al., NeurIPS 2021).

    At every ``every``-th mini-batch step, for each task ``i`` the shared
    parameters take the SGD step of task ``i`` alone,
    :math:`\theta_{s|i}^{t+1} = \theta_s^t - \eta \nabla_{\theta_s} L_i`, and every
    task's loss is evaluated there on the same batch, with the heads unchanged:
    :math:`Z^t_{i\to j} = 1 - L_j(\theta_{s|i}^{t+1}) / L_j(\theta_s^t)`. Then the model
    takes its real step: SGD with learning rate :math:`\eta` = ``lr`` on the
    sum of the task losses, so each lookahead is exactly the step the model
    would take if ``i`` were its only task. (The paper applies the training
    optimizer's own update rule; with SGD that is this step.)

    Args:
        model: a multi-task model of :mod:`mtl_course.torch.models` (it needs
            ``task_names``, ``forward -> dict`` and ``shared_parameters()``);
            it is trained in place, on the device its parameters are on.
        data: a :class:`~mtl_course.data.MultiTaskSplit` or ``(x, {task: y})``.
        tasks: task name -> :class:`~mtl_course.core.tasks.Task` (or a loss name).
        epochs, batch_size: passes over ``data`` and mini-batch size.
        lr: the SGD learning rate :math:`\eta` of the training and lookahead steps.
        every: record the affinity every ``every`` steps (each record costs
            one forward pass per task).
        seed: seeds the mini-batch order (initialise the model yourself).

    Returns:
        An :class:`~mtl_course.core.affinity.AffinityTrace`; ``.affinity`` is
        the average over the recorded steps.

    Examples:
        >>> import numpy as np
        >>> import torch
        >>> from mtl_course import torch as mtl
        >>> _ = torch.manual_seed(0)
        >>> model = mtl.HardSharing(mtl.mlp((3, 4)), {'a': mtl.mlp((4, 1)), 'b': mtl.mlp((4, 1))})
        >>> x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
        >>> data = (x, {'a': x[:, 0], 'b': x[:, 0] + x[:, 1]})
        >>> trace = task_affinity(model, data, {'a': 'mse', 'b': 'mse'}, batch_size=16)  # 2 steps
        >>> trace.task_names, trace.steps.shape, trace.losses.shape
        (('a', 'b'), (2, 2, 2), (2, 2))
    """
    check_affinity_arguments(epochs, lr, every)
    split = core_tasks.training_split(data)
    specs = core_tasks.resolve_tasks(tasks, split.task_names, getattr(model, "task_names", None))
    names = list(specs)
    shared = list(model.shared_parameters())
    if not shared:
        raise ValueError("the model has no shared parameters: there is no lookahead step to take")
    param_name = {id(p): name for name, p in model.named_parameters()}
    shared_names = [param_name[id(p)] for p in shared]
    dev = shared[0].device
    x = torch.as_tensor(np.ascontiguousarray(split.x), device=dev)
    ys = {k: torch.as_tensor(np.ascontiguousarray(v), device=dev)
          for k, v in core_tasks.cast_targets(split, specs).items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    steps, losses, step = [], [], 0
    model.train()
    for _ in range(int(epochs)):
        for index in core_tasks.batch_indices(len(split), batch_size, rng):
            idx = torch.as_tensor(index, device=dev)
            xb = x[idx]
            outputs = model(xb)
            task_losses = [task_loss(n, specs[n], outputs[n], ys[n][idx]) for n in names]
            if step % every == 0:
                J = jacobian(task_losses, shared, retain_graph=True)  # checks for NaN/inf losses
                before = np.array([float(loss.detach()) for loss in task_losses])
                after = np.empty((len(names), len(names)))
                with torch.no_grad():
                    for i in range(len(names)):
                        moved = {name: p - lr * g for name, p, g
                                 in zip(shared_names, shared, unflatten_gradients(J[i], shared))}
                        out_i = functional_call(model, moved, (xb,))
                        after[i] = [float(task_loss(n, specs[n], out_i[n], ys[n][idx])) for n in names]
                steps.append(lookahead_affinity(before, after))
                losses.append(before)
            optimizer.zero_grad(set_to_none=True)
            torch.stack(task_losses).sum().backward()
            optimizer.step()
            step += 1
    return AffinityTrace(tuple(names), np.array(steps), np.array(losses))
