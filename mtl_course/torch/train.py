"""The multi-task training loop in PyTorch: :func:`fit`, :func:`evaluate`, :func:`predict`, :func:`save`, :func:`load`.

``fit`` trains any model of :mod:`mtl_course.torch.models` (``task_names``,
``forward -> dict``, ``shared_parameters()``, ``task_parameters(name)``) with
either a loss *weighting* (:mod:`mtl_course.torch.weighting`: one backward of
``sum_i w_i L_i``) or a gradient *aggregator*
(:data:`mtl_course.torch.aggregators.AGGREGATORS`: the Jacobian of the task
losses w.r.t. the shared parameters is combined into one direction). Its twin
with the same arguments and the same :class:`~mtl_course.core.tasks.History` is
:func:`mtl_course.tf.train.fit`.
"""

from __future__ import annotations

import functools

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import tqdm
from torch import nn

from mtl_course.core import tasks as core_tasks
from mtl_course.core.tasks import History, Task
from mtl_course.core.weighting import gradnorm_layer_index
from mtl_course.data.types import MultiTaskSplit
from mtl_course.torch.runtime import device as default_device
from mtl_course.torch.weighting import RLW, WEIGHTINGS, GradNorm, UncertaintyWeighting, Weighting

Data = MultiTaskSplit | tuple[np.ndarray, Mapping[str, np.ndarray]]
Method = Weighting | str | Callable[[torch.Tensor], torch.Tensor]

__all__ = ["History", "Task", "evaluate", "fit", "load", "predict", "save", "task_loss"]


def task_loss(name: str, task: Task, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean loss of one task (see :class:`~mtl_course.core.tasks.Task` for the built-in losses)."""
    if not isinstance(task.loss, str):
        return task.loss(prediction, target)
    shape = core_tasks.aligned_shape(name, tuple(prediction.shape), tuple(target.shape), task.loss)
    if task.loss == "cross_entropy":
        return F.cross_entropy(prediction, target)
    prediction = prediction.reshape(shape)
    if task.loss == "mse":
        return F.mse_loss(prediction, target.to(prediction.dtype))
    return F.binary_cross_entropy_with_logits(prediction, target.to(prediction.dtype))


def resolve_method(method: Method, tasks: Mapping[str, Task], seed: int | None = None) -> Weighting | Callable:
    """A weighting (bound to ``tasks``) or an aggregator function from ``method``.

    Names: the weightings in :data:`mtl_course.torch.weighting.WEIGHTINGS`
    ("equal", "uncertainty", "gradnorm", "dwa", "rlw") and the aggregators in
    :data:`mtl_course.torch.aggregators.AGGREGATORS` ("mgda", "pcgrad", ...).
    "uncertainty" takes each task's kind from its loss; "rlw" and "pcgrad"
    draw their random weights / task orders from a generator seeded with
    ``seed`` (an aggregator passed as a function is used as given).
    """
    names = list(tasks)
    if isinstance(method, Weighting):
        return method.bind(names)
    if isinstance(method, str):
        if method == "uncertainty":
            return UncertaintyWeighting(names, kinds=[t.kind for t in tasks.values()])
        if method == "rlw":
            return RLW(generator=seed, tasks=names)
        if method in WEIGHTINGS:
            return WEIGHTINGS[method](tasks=names)
        from mtl_course.torch.aggregators import AGGREGATORS

        if method == "pcgrad":  # its random task order, seeded like RLW's draws
            return functools.partial(AGGREGATORS["pcgrad"], generator=np.random.default_rng(seed))
        if method in AGGREGATORS:
            return AGGREGATORS[method]
        raise ValueError(f"unknown method {method!r}; weightings: {sorted(WEIGHTINGS)}, "
                         f"aggregators: {sorted(AGGREGATORS)}")
    if callable(method):
        return method
    raise TypeError(f"method must be a Weighting, a name or an aggregator function, got {method!r}")


def _optimizer(optimizer: torch.optim.Optimizer | str | None, params: list[nn.Parameter], lr: float,
               method: Weighting | Callable) -> torch.optim.Optimizer:
    if optimizer is None or optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if isinstance(optimizer, torch.optim.Optimizer):
        owned = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if isinstance(method, nn.Module) and any(id(p) not in owned for p in method.parameters()):
            raise ValueError("the optimizer must also own the weighting's parameters "
                             "(build it from list(model.parameters()) + list(method.parameters()))")
        return optimizer
    raise ValueError(f"optimizer must be None, 'adam', 'sgd' or a torch optimizer, got {optimizer!r}")


def _to_tensors(split: MultiTaskSplit, tasks: Mapping[str, Task], dev: torch.device
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    x = torch.as_tensor(np.ascontiguousarray(split.x), device=dev)
    ys = {k: torch.as_tensor(np.ascontiguousarray(v), device=dev)
          for k, v in core_tasks.cast_targets(split, tasks).items()}
    return x, ys


def _backward_aggregated(model: nn.Module, losses: list[torch.Tensor], task_names: list[str],
                         aggregator: Callable, penalty: torch.Tensor | None) -> None:
    """Shared params get ``aggregator(J)``, task params their own loss's gradient, all params the penalty's."""
    from mtl_course.torch.jacobian import jacobian, unflatten_gradients

    shared = list(model.shared_parameters())
    if shared:
        direction = aggregator(jacobian(losses, shared, retain_graph=True))
        for p, g in zip(shared, unflatten_gradients(direction, shared)):
            p.grad = g.detach().clone()
    own = [p for name in task_names for p in model.task_parameters(name)]
    if own:
        # A task's own parameters only reach its own loss, so the gradient of the
        # sum is each task's own gradient.
        grads = torch.autograd.grad(torch.stack(losses).sum(), own, retain_graph=penalty is not None,
                                    allow_unused=True)
        for p, g in zip(own, grads):
            if g is not None:
                p.grad = g
    if penalty is not None:
        penalty.backward()


def fit(model: nn.Module, train_data: Data, tasks: Mapping[str, Task | str], method: Method = "equal",
        epochs: int = 10, batch_size: int = 64, optimizer: torch.optim.Optimizer | str | None = None,
        lr: float = 1e-3, val_data: Data | None = None, seed: int = 0, progress: bool = True,
        device: torch.device | str | None = None) -> History:
    """Train ``model`` on ``tasks`` and return its :class:`~mtl_course.core.tasks.History`.

    Args:
        model: a multi-task model. It is moved to ``device`` (default :func:`mtl_course.torch.device <mtl_course.torch.runtime.device>`)
            in place, like ``model.to(device)``, and stays there after ``fit``.
        train_data: a :class:`~mtl_course.data.MultiTaskSplit` or ``(x, {task: y})``.
        tasks: task name -> :class:`~mtl_course.core.tasks.Task` (or a loss name as shorthand).
        method: a :class:`~mtl_course.torch.weighting.Weighting` object or name, or an aggregator
            function or name (see :func:`resolve_method`).
        optimizer: None or "adam" (Adam), "sgd", or a torch optimizer that
            owns the model's and the weighting's parameters.
        val_data: scored with :func:`evaluate` after each epoch.
        seed: seeds the mini-batch shuffling (a numpy Generator) and, for
            ``method="rlw"``, the random weights. Model initialisation is the
            caller's (use :func:`mtl_course.torch.seed_everything <mtl_course.torch.runtime.seed_everything>`).
        progress: a ``tqdm.tqdm`` bar over epochs with the latest losses
            (also silenced by the environment variable ``TQDM_DISABLE=1``).

    Models with a ``penalty()`` (soft sharing) get it added to the objective.
    With an aggregator, ``J = jacobian(losses, model.shared_parameters())``
    and the shared parameters' gradient is ``aggregator(J)``; every task's own
    parameters get the gradient of its own loss; one optimizer step follows.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    split = core_tasks.training_split(train_data)
    specs = core_tasks.resolve_tasks(tasks, split.task_names, getattr(model, "task_names", None))
    names = list(specs)
    resolved = resolve_method(method, specs, seed)
    dev = torch.device(device) if device is not None else default_device()
    model.to(dev)
    if isinstance(resolved, nn.Module):
        resolved.to(dev)
    params = list(model.parameters()) + (list(resolved.parameters()) if isinstance(resolved, nn.Module) else [])
    opt = _optimizer(optimizer, params, lr, resolved)
    gradnorm_params = None
    if isinstance(resolved, GradNorm):
        shared = list(model.shared_parameters())
        gradnorm_params = [shared[gradnorm_layer_index([tuple(p.shape) for p in shared])]]
    has_penalty = callable(getattr(model, "penalty", None))
    x, ys = _to_tensors(split, specs, dev)
    rng = np.random.default_rng(seed)
    history = History(task_names=names)

    kwargs = {} if progress else {"disable": True}  # leave `disable` to TQDM_DISABLE otherwise
    bar = tqdm.tqdm(range(epochs), desc="fit", unit="epoch", **kwargs)
    for _ in bar:
        start = time.perf_counter()
        model.train()
        sums = np.zeros(len(names))
        steps = 0
        for index in core_tasks.batch_indices(len(split), batch_size, rng):
            idx = torch.as_tensor(index, device=dev)
            outputs = model(x[idx])
            losses = [task_loss(n, specs[n], outputs[n], ys[n][idx]) for n in names]
            values = np.array(torch.stack(losses).detach().tolist())  # float64 on the host (MPS has none)
            opt.zero_grad(set_to_none=True)
            penalty = model.penalty() if has_penalty else None
            if isinstance(resolved, Weighting):
                named = dict(zip(names, losses))
                total = resolved(named)
                if gradnorm_params is not None:
                    resolved.update(named, gradnorm_params)
                (total if penalty is None else total + penalty).backward()
            else:
                if not np.all(np.isfinite(values)):
                    bad = [n for n, v in zip(names, values) if not np.isfinite(v)]
                    raise ValueError(f"non-finite (NaN or inf) loss for task(s) {bad}")
                _backward_aggregated(model, losses, names, resolved, penalty)
            opt.step()
            sums += values
            steps += 1
        mean_loss = dict(zip(names, (sums / max(steps, 1)).tolist()))
        weights = resolved.weights if isinstance(resolved, Weighting) else None
        if isinstance(resolved, Weighting):
            resolved.end_epoch()
        val_loss = val_metric = None
        if val_data is not None:
            val_metric, val_loss = evaluate(model, val_data, specs, return_losses=True)
        history.record(mean_loss, weights, time.perf_counter() - start, val_loss, val_metric)
        bar.set_postfix({n: f"{v:.4g}" for n, v in mean_loss.items()})
    return history


def predict(model: nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 256) -> dict[str, np.ndarray]:
    """The model's outputs on ``x`` as numpy arrays (eval mode, no gradients, in batches)."""
    dev = next(iter(model.parameters())).device
    x = torch.as_tensor(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x, device=dev)
    was_training = model.training
    model.eval()
    chunks: dict[str, list[np.ndarray]] = {}
    try:
        with torch.no_grad():
            for index in core_tasks.batch_indices(len(x), batch_size, None):
                for name, out in model(x[index]).items():
                    chunks.setdefault(name, []).append(out.cpu().numpy())
    finally:
        model.train(was_training)
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def evaluate(model: nn.Module, data: Data, tasks: Mapping[str, Task | str], batch_size: int = 256,
             return_losses: bool = False) -> dict[str, float] | tuple[dict[str, float], dict[str, float]]:
    """Each task's metric on ``data`` (and, with ``return_losses=True``, its mean loss too).

    Metrics are computed once on all predictions (so AUC is exact), from the
    raw outputs reshaped like the targets.
    """
    split = core_tasks.as_split(data)
    specs = core_tasks.resolve_tasks(tasks, split.task_names, getattr(model, "task_names", None))
    outputs = predict(model, split.x, batch_size)
    targets = core_tasks.cast_targets(split, specs)
    metrics, losses = {}, {}
    for name, task in specs.items():
        pred, y = outputs[name], targets[name]
        if isinstance(task.loss, str):
            pred = pred.reshape(core_tasks.aligned_shape(name, pred.shape, y.shape, task.loss))
        metrics[name] = task.score(pred, y)
        if return_losses:
            with torch.no_grad():
                losses[name] = float(task_loss(name, task, torch.as_tensor(pred), torch.as_tensor(y)))
    return (metrics, losses) if return_losses else metrics


def save(path: str | Path, model: nn.Module, method: Weighting | None = None,
         optimizer: torch.optim.Optimizer | None = None) -> None:
    """Save the state dicts of the model, the weighting and the optimizer with ``torch.save``."""
    state: dict[str, Any] = {"model": model.state_dict()}
    if isinstance(method, nn.Module):
        state["method"] = method.state_dict()
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    torch.save(state, path)


def load(path: str | Path, model: nn.Module, method: Weighting | None = None,
         optimizer: torch.optim.Optimizer | None = None) -> None:
    """Load what :func:`save` wrote into existing objects (``torch.load(..., weights_only=True)``)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    for key, obj in (("method", method), ("optimizer", optimizer)):
        if obj is None:
            continue
        if key not in state:
            raise ValueError(f"{path} holds no {key} state")
        obj.load_state_dict(state[key])
