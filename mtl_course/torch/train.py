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

import contextlib
import copy
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import tqdm
from torch import nn

from mtl_course.core import methods as core_methods
from mtl_course.core import tasks as core_tasks
from mtl_course.core.files import atomic_write
from mtl_course.core.tasks import History, Task
from mtl_course.core.weighting import gradnorm_layer_index
from mtl_course.data.types import MultiTaskSplit
from mtl_course.torch.gradients import aggregate_backward, aggregator_weights
from mtl_course.torch.runtime import device as default_device
from mtl_course.torch.weighting import WEIGHTINGS, GradNorm, Weighting

Data = MultiTaskSplit | tuple[np.ndarray, Mapping[str, np.ndarray]]
Method = Weighting | str | Callable[[torch.Tensor], torch.Tensor]

__all__ = ["History", "Task", "evaluate", "fit", "load", "predict", "save", "task_loss"]


def task_loss(name: str, task: Task, prediction: torch.Tensor, target: torch.Tensor,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """The mean loss of one task over its labelled entries (see :class:`~mtl_course.core.tasks.Task`).

    ``mask`` (bool, shaped like ``target``, True = labelled) restricts the
    mean to the labelled entries; with none labelled the loss is an exact 0
    with zero gradient. A custom loss gets the rows whose entries are all labelled.

    Examples:
        >>> import torch
        >>> from mtl_course.torch import Task
        >>> pred, y = torch.tensor([1.0, 2.0, 9.0]), torch.tensor([0.0, 0.0, 0.0])
        >>> task_loss("t", Task("mse"), pred, y, mask=torch.tensor([True, True, False]))
        tensor(2.5000)
    """
    if not isinstance(task.loss, str):
        if mask is None:
            return task.loss(prediction, target)
        rows = mask.reshape(len(mask), -1).all(dim=1)
        if not bool(rows.any()):
            return prediction.sum() * 0.0
        return task.loss(prediction[rows], target[rows])
    shape = core_tasks.aligned_shape(name, tuple(prediction.shape), tuple(target.shape), task.loss)
    if mask is not None:  # unlabelled targets (NaN, -1, ...) must not reach the loss or its gradient
        target = torch.where(mask.reshape(target.shape), target, torch.zeros((), dtype=target.dtype,
                                                                            device=target.device))
    if task.loss == "cross_entropy":
        if mask is None:
            return F.cross_entropy(prediction, target)
        per_entry = F.cross_entropy(prediction, target, reduction="none")
    else:
        prediction = prediction.reshape(shape)
        target = target.to(prediction.dtype)
        if mask is None:
            if task.loss == "mse":
                return F.mse_loss(prediction, target)
            return F.binary_cross_entropy_with_logits(prediction, target)
        if task.loss == "mse":
            per_entry = (prediction - target) ** 2
        else:
            per_entry = F.binary_cross_entropy_with_logits(prediction, target, reduction="none")
    mask = mask.reshape(per_entry.shape)
    # where() (not a product) so that nothing from an unlabelled entry reaches the gradient
    total = torch.where(mask, per_entry, torch.zeros((), dtype=per_entry.dtype, device=per_entry.device)).sum()
    return total / mask.sum().clamp(min=1).to(per_entry.dtype)


def resolve_method(method: Method, tasks: Mapping[str, Task], seed: int | None = None) -> Weighting | Callable:
    """A weighting (bound to ``tasks``) or an aggregator function from ``method``.

    Names: the weightings in :data:`mtl_course.torch.weighting.WEIGHTINGS`
    ("equal", "uncertainty", "gradnorm", "dwa", "rlw") and the aggregators in
    :data:`mtl_course.torch.aggregators.AGGREGATORS` ("mgda", "pcgrad", ...).
    "uncertainty" takes each task's kind from its loss; "rlw" and "pcgrad"
    draw their random weights / task orders from a generator seeded with
    ``seed`` (an aggregator passed as a function is used as given); the rule is
    :func:`mtl_course.core.methods.resolve_method`'s.
    """
    from mtl_course.torch.aggregators import AGGREGATORS

    return core_methods.resolve_method(method, tasks, seed, Weighting, WEIGHTINGS, AGGREGATORS)


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


def _float_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _input_tensor(x: np.ndarray | torch.Tensor, model: nn.Module, dev: torch.device) -> torch.Tensor:
    """``x`` on ``dev``; floating inputs cast to the model's dtype, and integer or
    bool inputs too unless the model has an embedding (which needs indices)."""
    x = torch.as_tensor(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x)
    wants_indices = any(isinstance(m, (nn.Embedding, nn.EmbeddingBag)) for m in model.modules())
    if x.is_floating_point() or (x.dtype in _INDEX_DTYPES and not wants_indices):
        x = x.to(_float_dtype(model))
    return x.to(dev)


_INDEX_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)


def _check_model(model: nn.Module, outputs: object, names: list[str], needs_shared: bool) -> None:
    """Raise a TypeError saying what ``fit`` needs from a model that lacks it."""
    core_tasks.check_model_outputs(model, outputs, names, needs_shared, "mtl_course.torch", "a tuple or a tensor", "parameters")


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asanyarray(value)


def _scheduler(scheduler: Any, opt: torch.optim.Optimizer) -> Any:
    if scheduler is None or hasattr(scheduler, "step"):
        return scheduler
    if callable(scheduler):
        built = scheduler(opt)
        if not hasattr(built, "step"):
            raise TypeError("scheduler(optimizer) must return a torch LR scheduler")
        return built
    raise TypeError(f"scheduler must be a torch LR scheduler or a function optimizer -> scheduler, got {scheduler!r}")


def fit(model: nn.Module, train_data: Data, tasks: Mapping[str, Task | str], method: Method = "equal",
        epochs: int = 10, batch_size: int = 64, optimizer: torch.optim.Optimizer | str | None = None,
        lr: float = 1e-3, val_data: Data | None = None, seed: int = 0, progress: bool = True,
        device: torch.device | str | None = None, scheduler: Any = None, patience: int | None = None,
        monitor: str = "loss", clip_grad_norm: float | None = None,
        callback: Callable[[int, History], bool | None] | None = None) -> History:
    """Train ``model`` on ``tasks`` and return its :class:`~mtl_course.core.tasks.History`.

    Args:
        model: a multi-task model, moved to ``device`` (default :func:`mtl_course.torch.device <mtl_course.torch.runtime.device>`)
            in place, like ``model.to(device)``, and left there after ``fit``. ``model(x)`` returns a
            dict task name -> output; gradient aggregators and GradNorm also
            need ``model.shared_parameters()`` (see :func:`~mtl_course.torch.models.wrap` for your own module).
        train_data: a :class:`~mtl_course.data.MultiTaskSplit`, ``(x, {task: y})``,
            or a ``torch.utils.data.DataLoader`` (any re-iterable) yielding
            batches ``(x, {task: y})`` (then ``batch_size`` and ``seed`` are the loader's business).
            Missing labels: NaN, ``Task(ignore_label=...)`` or the mask of a
            ``numpy.ma.MaskedArray`` (see :class:`~mtl_course.core.tasks.Task`).
        tasks: task name -> :class:`~mtl_course.core.tasks.Task` (or a loss name as shorthand).
        method: a :class:`~mtl_course.torch.weighting.Weighting` object or name, or an aggregator
            function or name (see :func:`resolve_method`).
        optimizer: None or "adam" (Adam), "sgd", or a torch optimizer that
            owns the model's and the weighting's parameters.
        val_data: scored with :func:`evaluate` after each epoch (arrays or a loader).
        seed: seeds the mini-batch shuffling (a numpy Generator) and, for
            ``method="rlw"``, the random weights. Model initialisation is the
            caller's (use :func:`mtl_course.torch.seed_everything <mtl_course.torch.runtime.seed_everything>`).
        progress: a ``tqdm.tqdm`` bar over epochs with the latest losses
            (also silenced by the environment variable ``TQDM_DISABLE=1``).
        scheduler: a torch LR scheduler on ``optimizer``, or a function
            ``optimizer -> scheduler`` (for the optimizer ``fit`` builds); stepped
            after every epoch (``ReduceLROnPlateau`` with the summed validation,
            else training, loss).
        patience: early stopping: stop after ``patience`` epochs without
            improvement of ``monitor`` on ``val_data`` and restore the weights
            of the best epoch (``History.best_epoch``). None: train all epochs.
        monitor: "loss" (sum of the validation losses) or a task name (its
            validation metric, in its own direction).
        clip_grad_norm: clip the global gradient norm of the model's parameters
            to this value before each step (``torch.nn.utils.clip_grad_norm_``).
        callback: ``callback(epoch, history)`` after each epoch; returning True stops training.

    Models with a ``penalty()`` (soft sharing) get it added to the objective.
    With an aggregator, :func:`~mtl_course.torch.gradients.backward` runs on the
    losses of the tasks labelled in the batch: ``J = jacobian(losses,
    model.shared_parameters())``, the shared parameters' gradient is
    ``aggregator(J)``, every task's own parameters get the gradient of its own
    loss; one optimizer step follows. A task without labels in a batch has
    loss 0 there: it is left out of the aggregation (weight 0) and of the
    epoch's mean loss; a weighting still sees its 0 (no gradient; GradNorm
    skips its weight update on such batches).
    The built-in aggregators need ``J`` only through ``G = J J^T``: for them ``J``
    is never formed (:class:`~mtl_course.torch.gramian.LayerGramian` builds ``G``
    layer by layer, then one backward pass of ``sum_t w_t L_t``), with the same
    result to rounding.

    Examples:
        >>> import numpy as np
        >>> from mtl_course import torch as mtl
        >>> _ = mtl.seed_everything(0)
        >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
        >>> y = {"a": x.sum(1), "b": (x[:, 0] > 0).astype("float32")}
        >>> y["a"][::3] = np.nan  # a third of task a's labels are missing
        >>> model = mtl.HardSharing(mtl.mlp((3, 8)), {"a": mtl.mlp((8, 1)), "b": mtl.mlp((8, 1))})
        >>> history = mtl.fit(model, (x, y), {"a": "mse", "b": "bce"}, method="upgrad", epochs=2,
        ...                   progress=False, device="cpu")
        >>> history.epochs, len(history.weights[-1])
        (2, 2)
    """
    plan = core_tasks.plan_fit(model, train_data, tasks, val_data, epochs, patience, monitor, clip_grad_norm,
                               _numpy)
    loader, split, specs, names = plan.loader, plan.split, plan.specs, plan.names
    val_data, stopper = plan.val_data, plan.stopper
    resolved = resolve_method(method, specs, seed)
    is_weighting = isinstance(resolved, Weighting)
    dev = torch.device(device) if device is not None else default_device()
    model.to(dev)
    if isinstance(resolved, nn.Module):
        resolved.to(dev)
    params = list(model.parameters()) + (list(resolved.parameters()) if isinstance(resolved, nn.Module) else [])
    opt = _optimizer(optimizer, params, lr, resolved)
    sched = _scheduler(scheduler, opt)
    has_penalty = callable(getattr(model, "penalty", None))
    needs_shared = not is_weighting or isinstance(resolved, GradNorm)
    checked = False
    gradnorm_params = shared = None
    recorder = _gramian_recorder(model, resolved)
    if not loader:
        x_all = _input_tensor(split.x, model, dev)
        targets, masks = core_tasks.prepare_targets(split, specs)
        ys = {k: torch.as_tensor(np.ascontiguousarray(v), device=dev) for k, v in targets.items()}
        ms = {k: None if m is None else torch.as_tensor(m, device=dev) for k, m in masks.items()}
    rng = np.random.default_rng(seed)
    history = History(task_names=names, metric_names={n: core_tasks.metric_name(t) for n, t in specs.items()})
    best_state = None

    def batches():
        if loader:
            for batch in train_data:
                x, y = core_tasks.batch_pair(batch)
                yield _input_tensor(x, model, dev), {n: _numpy(y[n]) for n in names}, None
        else:
            for index in core_tasks.batch_indices(len(split), batch_size, rng):
                idx = torch.as_tensor(index, device=dev)
                yield x_all[idx], {n: ys[n][idx] for n in names}, {n: None if ms[n] is None else ms[n][idx]
                                                                    for n in names}

    kwargs = {} if progress else {"disable": True}  # leave `disable` to TQDM_DISABLE otherwise
    bar = tqdm.tqdm(range(epochs), desc="fit", unit="epoch", **kwargs)
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        sums = np.zeros(len(names))
        seen = np.zeros(len(names))
        last = None  # (weights, J, direction, present) of the last aggregated step
        for xb, yb, mb in batches():
            with recorder if recorder is not None else contextlib.nullcontext():
                outputs = model(xb)
            if not checked:
                _check_model(model, outputs, names, needs_shared)
                if needs_shared:
                    shared = list(model.shared_parameters())
                    if isinstance(resolved, GradNorm):
                        if not shared:
                            raise ValueError("GradNorm needs shared parameters; the model has none")
                        gradnorm_params = [shared[gradnorm_layer_index([tuple(p.shape) for p in shared])]]
                if not loader:
                    for n in names:
                        if specs[n].loss == "cross_entropy":
                            core_tasks.check_labels(n, specs[n], targets[n], masks[n], outputs[n].shape[-1])
                checked = True
            if loader:  # targets arrive as numpy: check them and find their masks here
                prepared = {n: core_tasks.prepare_target(
                    n, specs[n], yb[n], outputs[n].shape[-1] if specs[n].loss == "cross_entropy" else None)
                    for n in names}
                yb = {n: torch.as_tensor(np.ascontiguousarray(prepared[n][0]), device=dev) for n in names}
                mb = {n: None if prepared[n][1] is None else torch.as_tensor(prepared[n][1], device=dev)
                      for n in names}
            losses = [task_loss(n, specs[n], outputs[n], yb[n], mb[n]) for n in names]
            # one transfer to the host: the losses and, for partially labelled tasks, the label counts
            stacked = torch.stack(losses).detach()
            masked = [i for i, n in enumerate(names) if mb[n] is not None]
            if masked:
                counts = torch.stack([mb[names[i]].sum() for i in masked]).to(stacked.dtype)
                stacked = torch.cat([stacked, counts])
            host = stacked.tolist()
            values, present = np.array(host[:len(names)]), np.ones(len(names), dtype=bool)
            present[masked] = np.array(host[len(names):]) > 0
            opt.zero_grad(set_to_none=True)
            penalty = model.penalty() if has_penalty else None
            if is_weighting:
                named = dict(zip(names, losses))
                total = resolved(named)
                if gradnorm_params is not None and present.all():
                    resolved.update(named, gradnorm_params)
                (total if penalty is None else total + penalty).backward()
            else:
                if not np.all(np.isfinite(values)):
                    bad = [n for n, v in zip(names, values) if not np.isfinite(v)]
                    raise ValueError(f"non-finite (NaN or inf) loss for task(s) {bad}")
                last = _backward_aggregated(losses, present, shared, resolved, penalty, recorder) or last
            if clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            opt.step()
            sums += np.where(present, values, 0.0)
            seen += present
        mean_loss = core_tasks.epoch_mean_losses(names, sums, seen)
        if is_weighting:
            weights = resolved.weights
            resolved.end_epoch()
        else:
            weights = None
            if last is not None:
                w, J, direction, present = last
                weights = np.zeros(len(names))
                weights[present] = w if w is not None else aggregator_weights(J, direction)
        val_loss = val_metric = None
        if val_data is not None:
            val_metric, val_loss = evaluate(model, val_data, specs, return_losses=True)
        history.record(mean_loss, weights, time.perf_counter() - start, val_loss, val_metric)
        bar.set_postfix({n: f"{v:.4g}" for n, v in mean_loss.items()})
        if val_data is not None and stopper.update(val_loss, val_metric) and patience is not None:
            best_state = copy.deepcopy(model.state_dict())
        if sched is not None:
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(sum((val_loss or mean_loss).values()))
            else:
                sched.step()
        if callback is not None and callback(epoch, history):
            break
        if stopper.should_stop:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
        history.best_epoch = stopper.best_epoch
    return history


def _gramian_recorder(model: nn.Module, method: Weighting | Callable):
    """A :class:`~mtl_course.torch.gramian.LayerGramian` when ``method`` is an aggregator whose
    weights depend on ``G`` only (all built-in ones), else None (then ``J`` is formed)."""
    from mtl_course.core.gramian import gram_rule
    from mtl_course.torch.aggregators import AGGREGATORS
    from mtl_course.torch.gramian import LayerGramian

    if isinstance(method, Weighting) or gram_rule(method, AGGREGATORS) is None:
        return None
    if not callable(getattr(model, "shared_parameters", None)):
        return None  # fit's model check says what is missing
    shared = list(model.shared_parameters())
    return LayerGramian(model, shared) if shared else None


def _backward_aggregated(losses: list[torch.Tensor], present: np.ndarray, shared: list[nn.Parameter],
                         aggregator: Callable, penalty: torch.Tensor | None, recorder=None) -> tuple | None:
    """Shared params get the aggregated direction over the tasks labelled in the batch
    (:func:`~mtl_course.torch.gradients.aggregate_backward`), task params their own loss's
    gradient, all params the penalty's; returns ``(weights, J, direction, present)`` (None
    when nothing was aggregated)."""
    kept = [loss for loss, here in zip(losses, present) if here]
    result = None
    if shared and kept:
        result = (*aggregate_backward(kept, shared, aggregator, penalty is not None, recorder), present)
    elif kept:  # no shared parameters (soft sharing): each task's parameters get its own gradient
        torch.stack(kept).sum().backward(retain_graph=penalty is not None)
    if penalty is not None:
        penalty.backward()
    return result


def predict(model: nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 256,
            tasks: Mapping[str, Task | str] | None = None) -> dict[str, np.ndarray]:
    """The model's outputs on ``x`` as numpy arrays (eval mode, no gradients, in batches).

    With ``tasks``, classification tasks give probabilities instead of
    logits: a softmax over the last axis for "cross_entropy", a sigmoid for
    "bce" (other tasks, custom losses included, give their raw outputs). An
    empty ``x`` gives empty arrays (of the outputs' trailing shapes).

    Examples:
        >>> import numpy as np
        >>> from mtl_course import torch as mtl
        >>> model = mtl.HardSharing(mtl.mlp((3, 4)), {"kind": mtl.mlp((4, 5))})
        >>> p = predict(model, np.ones((2, 3)), tasks={"kind": "cross_entropy"})["kind"]
        >>> p.shape, bool(np.allclose(p.sum(1), 1.0))
        ((2, 5), True)
    """
    dev = next(iter(model.parameters())).device
    x = _input_tensor(x, model, dev)
    specs = None if tasks is None else {n: t if isinstance(t, Task) else Task(t) for n, t in tasks.items()}
    was_training = model.training
    model.eval()
    chunks: dict[str, list[np.ndarray]] = {}
    try:
        with torch.no_grad():
            parts = [np.arange(0)] if len(x) == 0 else core_tasks.batch_indices(len(x), batch_size, None)
            for index in parts:
                outputs = model(x[torch.as_tensor(index, dtype=torch.long, device=dev)])
                if not isinstance(outputs, Mapping):
                    _check_model(model, outputs, [], False)
                for name, out in outputs.items():
                    loss = specs[name].loss if specs is not None and name in specs else None
                    if loss == "cross_entropy":
                        out = torch.softmax(out, dim=-1)
                    elif loss == "bce":
                        out = torch.sigmoid(out)
                    chunks.setdefault(name, []).append(out.cpu().numpy())
    finally:
        model.train(was_training)
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def evaluate(model: nn.Module, data: Data, tasks: Mapping[str, Task | str], batch_size: int = 256,
             return_losses: bool = False) -> core_tasks.Scores | tuple[core_tasks.Scores, dict[str, float]]:
    """Each task's metric on ``data`` (and, with ``return_losses=True``, its mean loss too).

    Returns a :class:`~mtl_course.core.tasks.Scores` dict task -> value whose
    ``.metrics`` (and repr) name each task's metric. Metrics are computed once
    on all predictions (so AUC is exact), from the raw outputs reshaped like
    the targets, on the labelled rows of each task only (NaN for a task
    without any label). ``data``: arrays, a split, or a DataLoader. Empty data raises.

    Examples:
        >>> import numpy as np
        >>> from mtl_course import torch as mtl
        >>> model = mtl.HardSharing(mtl.mlp((3, 4)), {"a": mtl.mlp((4, 1))})
        >>> scores = evaluate(model, (np.ones((4, 3)), {"a": np.zeros(4)}), {"a": "mse"})
        >>> scores.metrics
        {'a': 'mse'}
    """
    def loss(name: str, task: Task, pred: np.ndarray, y: np.ndarray, mask: np.ndarray | None) -> float:
        with torch.no_grad():
            return float(task_loss(name, task, torch.as_tensor(pred), torch.as_tensor(y),
                                   None if mask is None else torch.as_tensor(mask)))

    return core_tasks.evaluate_model(model, data, tasks, batch_size, return_losses, predict, loss, _numpy)


def save(path: str | Path, model: nn.Module, method: Weighting | None = None,
         optimizer: torch.optim.Optimizer | None = None) -> None:
    """Save the state dicts of the model, the weighting and the optimizer with ``torch.save``.

    The write is atomic: the file goes to a temporary name in the same folder
    and replaces ``path`` only once complete, so a failed write (a full disk)
    leaves the previous checkpoint intact.

    Examples:
        >>> import tempfile, os
        >>> from mtl_course import torch as mtl
        >>> model = mtl.HardSharing(mtl.mlp((3, 4)), {"a": mtl.mlp((4, 1))})
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
        >>> save(path, model); load(path, model)
    """
    state: dict[str, Any] = {"model": model.state_dict()}
    if isinstance(method, nn.Module):
        state["method"] = method.state_dict()
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    atomic_write(path, lambda f: torch.save(state, f))


def load(path: str | Path, model: nn.Module, method: Weighting | None = None,
         optimizer: torch.optim.Optimizer | None = None) -> None:
    """Load what :func:`save` wrote into existing objects (``torch.load(..., weights_only=True)``).

    Examples:
        >>> import tempfile, os
        >>> import torch
        >>> from mtl_course import torch as mtl
        >>> model = mtl.HardSharing(mtl.mlp((3, 4)), {'a': mtl.mlp((4, 1))})
        >>> path = os.path.join(tempfile.mkdtemp(), 'ckpt.pt')
        >>> save(path, model)
        >>> copy = mtl.HardSharing(mtl.mlp((3, 4)), {'a': mtl.mlp((4, 1))})
        >>> load(path, copy)
        >>> all(torch.equal(p, q) for p, q in zip(model.parameters(), copy.parameters()))
        True
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    for key, obj in (("method", method), ("optimizer", optimizer)):
        if obj is None:
            continue
        if key not in state:
            raise ValueError(f"{path} holds no {key} state")
        obj.load_state_dict(state[key])
