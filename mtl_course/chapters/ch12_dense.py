"""Experiment of chapter 12: dense prediction (segmentation + depth) with one
shared encoder and two decoders, against two single-task networks.

The metrics are numpy functions on label or depth maps (in :mod:`mtl_course.metrics`); the experiment driver
:func:`dense_experiment` takes the framework module first, ``mtl`` =
:mod:`mtl_course.torch` or :mod:`mtl_course.tf`, and uses that framework's
``dense`` module (:mod:`mtl_course.torch.dense` / :mod:`mtl_course.tf.dense`),
so the chapter runs the same experiment in both frameworks.

The package's ``Task("cross_entropy")`` expects logits ``(n, C)``; per-pixel
cross-entropy on ``(n, C, H, W)`` logits is passed to ``fit`` as a callable
loss (``dense.segmentation_loss``) with a callable metric (mean IoU).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from mtl_course.core.model_config import DENSE_TASKS
from mtl_course.core.tasks import Task, batch_indices
from mtl_course.data.types import MultiTaskSplit, Splits
from mtl_course.metrics import count_parameters, delta_m, depth_abs_rel, depth_rmse, mean_iou, pixel_accuracy

__all__ = [
    "HIGHER_IS_BETTER",
    "NETWORKS",
    "StackedDenseFit",
    "dense_experiment",
    "dense_scores",
    "dense_seeds",
    "dense_tasks",
    "fit_dense_stacked",
]

HIGHER_IS_BETTER = {
    "segmentation": {"mIoU": True, "pixel_acc": True},
    "depth": {"abs_rel": False, "rmse": False},
}
"""Direction of each metric reported by :func:`dense_scores` (the structure ``delta_m`` takes)."""


def _miou_from_logits(logits: np.ndarray, target: np.ndarray, num_classes: int) -> float:
    return mean_iou(np.asarray(logits).argmax(axis=1), target, num_classes)


def dense_scores(outputs: Mapping[str, np.ndarray], split: MultiTaskSplit, num_classes: int
                 ) -> dict[str, dict[str, float]]:
    """Every metric of every task a model outputs, in the structure of :data:`HIGHER_IS_BETTER`.

    Args:
        outputs: task -> raw model outputs: segmentation logits ``(n, C, H, W)``,
            depth ``(n, 1, H, W)`` or ``(n, H, W)`` (channels first, as both twins return).
        split: the data with the true maps.
        num_classes: segmentation classes.
    """
    scores: dict[str, dict[str, float]] = {}
    if "segmentation" in outputs:
        labels = np.asarray(outputs["segmentation"]).argmax(axis=1)
        true = split.y["segmentation"]
        scores["segmentation"] = {"mIoU": mean_iou(labels, true, num_classes),
                                  "pixel_acc": pixel_accuracy(labels, true)}
    if "depth" in outputs:
        true = split.y["depth"]
        depth = np.asarray(outputs["depth"]).reshape(true.shape)
        scores["depth"] = {"abs_rel": depth_abs_rel(depth, true), "rmse": depth_rmse(depth, true)}
    if not scores:
        raise ValueError(f"no dense task among the outputs {list(outputs)}; expected some of {DENSE_TASKS}")
    return scores


def dense_tasks(dense: Any, num_classes: int, tasks: Sequence[str] = DENSE_TASKS) -> dict[str, Task]:
    """The :class:`~mtl_course.core.tasks.Task` specs for ``fit``: per-pixel
    cross-entropy (``dense.segmentation_loss``) scored by mean IoU, and depth MSE."""
    specs = {
        "segmentation": Task(loss=dense.segmentation_loss, metric=partial(_miou_from_logits, num_classes=num_classes),
                             higher_is_better=True),
        "depth": Task("mse"),
    }
    return {t: specs[t] for t in tasks}


def dense_experiment(mtl: Any, splits: Splits, num_classes: int, width: int = 8, epochs: int = 4,
                     batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
                     patience: int | None = None) -> dict[str, Any]:
    """Train one shared-encoder model on both tasks and one network per task; score them on the test set.

    Every model has the same encoder and decoder shapes (the single-task
    networks have one decoder), the same initialisation seed, optimizer (Adam)
    and mini-batch order, and equal task weights. Each is validated on
    ``splits.val`` after every epoch (the sum of its task losses); with
    ``patience``, training stops after ``patience`` epochs without improvement
    and keeps the weights of the best epoch (``fit``'s early stopping), else
    it runs all ``epochs``.

    Returns:
        ``{"scores": {"multi_task": ..., "single_task": ...}`` (each as
        :func:`dense_scores`), ``"delta_m"`` (percent, positive = the shared
        model gains, averaged over tasks), ``"models"`` (the trained models,
        ``"multi_task"``, ``"segmentation"``, ``"depth"``), ``"histories"``
        (their :class:`~mtl_course.core.tasks.History`, with the validation
        losses per epoch and ``best_epoch``), ``"parameters"`` (number of
        parameters of the shared model and of the two single-task networks together)}.
    """
    dense = getattr(mtl, "dense", None)
    if dense is None or not hasattr(dense, "dense_prediction_model"):
        raise TypeError(f"mtl must be a framework module with a dense submodule (mtl_course.torch or "
                        f"mtl_course.tf), got {getattr(mtl, '__name__', mtl)!r}")
    in_channels = splits.train.x.shape[1]
    models: dict[str, Any] = {}
    histories: dict[str, Any] = {}
    configurations = {"multi_task": DENSE_TASKS, "segmentation": ("segmentation",), "depth": ("depth",)}
    for name, tasks in configurations.items():
        mtl.seed_everything(seed)
        model = dense.dense_prediction_model(in_channels, num_classes, width, tasks=tasks)
        histories[name] = mtl.fit(model, splits.train, dense_tasks(dense, num_classes, tasks), epochs=epochs,
                                  batch_size=batch_size, lr=lr, val_data=splits.val, seed=seed, progress=False,
                                  patience=patience)
        models[name] = model
    test = splits.test
    multi = dense_scores(mtl.predict(models["multi_task"], test.x), test, num_classes)
    single = {t: dense_scores(mtl.predict(models[t], test.x), test, num_classes)[t] for t in DENSE_TASKS}
    return {
        "scores": {"multi_task": multi, "single_task": single},
        "delta_m": delta_m(multi, single, HIGHER_IS_BETTER),
        "models": models,
        "histories": histories,
        "parameters": {"multi_task": count_parameters(models["multi_task"]),
                       "single_task": sum(count_parameters(models[t]) for t in DENSE_TASKS)},
    }


# --------------------------------------------------------------------------
# every seed at once: the chapter's paired-seed experiment
# --------------------------------------------------------------------------

NETWORKS = {"multi_task": DENSE_TASKS, "segmentation": ("segmentation",), "depth": ("depth",)}
"""The three networks of the experiment and the tasks of each."""


@dataclass(frozen=True)
class StackedDenseFit:
    """What :func:`fit_dense_stacked` returns, one entry per model (seed).

    Attributes:
        models: the trained models, each with the weights of its best epoch.
        tasks: the task names, the last axis of ``val_loss``.
        best_epoch: the epoch (1-based) with the lowest validation loss (the sum of the task losses).
        epochs: the epochs each model trained before it stopped (its best epoch + ``patience``,
            or ``max_epochs``).
        val_loss: the validation loss of every task after every epoch, ``(models, epochs, tasks)``;
            NaN after a model's stop.
    """

    models: list[Any]
    tasks: tuple[str, ...]
    best_epoch: np.ndarray
    epochs: np.ndarray
    val_loss: np.ndarray


def _stacked_layers(layers: Any, prefix: str, params: Mapping[str, Any], h: Any) -> Any:
    """Run a ``Sequential`` of conv, ReLU, max-pool and upsampling layers for ``S`` models at once.

    ``h`` is ``(batch, S * channels, H, W)``, model ``s`` owning channels ``s * channels ...``;
    ``params[f"{prefix}.{i}.weight"]`` holds the ``S`` models' weights of layer ``i`` stacked on
    axis 0. A convolution is one grouped convolution (``groups=S``); the other layers act on
    each channel alone and run unchanged. Tensors are kept channels-last (NHWC in memory): on a
    CPU, oneDNN's grouped convolutions run about 1.7 times faster on them than on NCHW.
    """
    import torch
    import torch.nn.functional as F

    for i, layer in enumerate(layers):
        if isinstance(layer, torch.nn.Conv2d):
            weight, bias = params[f"{prefix}.{i}.weight"], params[f"{prefix}.{i}.bias"]
            weight = weight.flatten(0, 1).contiguous(memory_format=torch.channels_last)
            h = F.conv2d(h, weight, bias.flatten(), stride=layer.stride, padding=layer.padding, groups=len(bias))
        elif isinstance(layer, (torch.nn.ReLU, torch.nn.MaxPool2d, torch.nn.Upsample)):
            h = layer(h)
        else:
            raise TypeError(f"fit_dense_stacked runs conv, ReLU, max-pool and upsampling layers, got {layer!r}")
    return h


def fit_dense_stacked(models: Sequence[Any], splits: Splits, seeds: Sequence[int], lr: float = 3e-3,
                      batch_size: int = 32, max_epochs: int = 200, patience: int = 3) -> StackedDenseFit:
    """Train dense-prediction models of one architecture at once, each with its own seed, with early stopping.

    Model ``s`` minimizes the sum of its tasks' losses (per-pixel cross-entropy,
    depth MSE, as :func:`dense_tasks`) on ``splits.train`` with Adam (learning
    rate ``lr``) in mini-batches of ``batch_size`` drawn in the order of
    ``np.random.default_rng(seeds[s])``, as :func:`mtl_course.torch.fit` with
    ``seed=seeds[s]``. After every epoch each model's validation loss (the sum
    of its task losses on ``splits.val``) is computed; a model keeps the
    weights of its best epoch and stops after ``patience`` epochs without
    improvement (``fit``'s early stopping), or after ``max_epochs``.

    **How it stays fast.** The models' weights are stacked on a new axis and
    each convolution runs as one grouped convolution over all models
    (model ``s`` owns channel group ``s``); pooling, upsampling and ReLU act on
    each channel alone. Adam is element-wise and each model's loss depends only
    on its own weights, so one optimizer over the stacked weights is one Adam
    per model, and a model that has stopped does not change the others. The
    result equals training the models one by one with ``fit`` up to float
    rounding (a test checks it).

    Args:
        models: PyTorch models built by :func:`~mtl_course.torch.dense.dense_prediction_model`, all
            with the same tasks and width (their initial weights; they are left unchanged).
        splits: the data, the same for every model.
        seeds: the mini-batch seed of each model.

    Returns:
        A :class:`StackedDenseFit`.
    """
    import torch
    import torch.nn.functional as F

    from mtl_course.checks import check_count, check_rate

    n = len(models)
    if n == 0 or len(seeds) != n:
        raise ValueError(f"models and seeds need the same positive length, got {n} and {len(seeds)}")
    check_rate(lr, "lr")
    batch_size, max_epochs, patience = (check_count(v, name) for v, name in
                                        ((batch_size, "batch_size"), (max_epochs, "max_epochs"), (patience, "patience")))
    base = models[0]
    tasks = tuple(base.task_names)
    names = [name for name, _ in base.named_parameters()]
    if any(tuple(m.task_names) != tasks or [k for k, _ in m.named_parameters()] != names for m in models):
        raise ValueError("every model needs the same tasks and parameter names")
    dtype, device = next(base.parameters()).dtype, next(base.parameters()).device
    params = {k: torch.stack([dict(m.named_parameters())[k].detach() for m in models]).clone().requires_grad_()
              for k in names}

    def forward(weights: dict[str, torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Outputs ``(batch, models, channels, H, W)`` of inputs ``(models, batch, channels, H, W)``."""
        count, batch = x.shape[:2]
        h = x.transpose(0, 1).reshape(batch, -1, *x.shape[3:]).contiguous(memory_format=torch.channels_last)
        h = _stacked_layers(base.trunk, "trunk", weights, h)
        outputs = {}
        for t in tasks:
            out = _stacked_layers(base.heads[t], f"heads.{t}", weights, h)
            outputs[t] = out.view(batch, count, -1, *out.shape[2:])
        return outputs

    def losses(outputs: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-model task losses ``(models, tasks)``; targets ``(models, batch, H, W)``."""
        per_task = []
        for t in tasks:
            target = y[t].transpose(0, 1)  # (batch, models, H, W)
            if t == "segmentation":
                pixel = F.cross_entropy(outputs[t].transpose(1, 2), target, reduction="none")
            else:
                pixel = (outputs[t][:, :, 0] - target) ** 2
            per_task.append(pixel.mean((0, 2, 3)))
        return torch.stack(per_task, 1)

    def tensors(split: MultiTaskSplit) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        y = {t: torch.as_tensor(split.y[t], device=device) if t == "segmentation"
             else torch.as_tensor(split.y[t], dtype=dtype, device=device) for t in tasks}
        return torch.as_tensor(split.x, dtype=dtype, device=device), y

    x_tr, y_tr = tensors(splits.train)
    x_va, y_va = tensors(splits.val)
    rngs = [np.random.default_rng(int(s)) for s in seeds]
    opt = torch.optim.Adam(list(params.values()), lr=lr)
    active = np.arange(n)  # the models still training; ``params`` holds their weights, in this order
    best_val = np.full(n, np.inf)
    best_epoch = np.zeros(n, dtype=int)
    epochs = np.full(n, max_epochs)
    best_params = {k: v.detach().clone() for k, v in params.items()}
    curve = np.full((n, max_epochs, len(tasks)), np.nan)
    for epoch in range(1, max_epochs + 1):
        orders = [list(batch_indices(len(splits.train), batch_size, rngs[m])) for m in active]
        for step in range(len(orders[0])):
            idx = torch.as_tensor(np.stack([order[step] for order in orders]), device=device)
            loss = losses(forward(params, x_tr[idx]), {t: v[idx] for t, v in y_tr.items()})
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
        with torch.no_grad():
            val = losses(forward(params, x_va.expand(len(active), *x_va.shape)),
                         {t: v.expand(len(active), *v.shape) for t, v in y_va.items()}).double().cpu().numpy()
        curve[active, epoch - 1] = val
        total = val.sum(1)
        better = total < best_val[active]
        best_val[active[better]], best_epoch[active[better]] = total[better], epoch
        with torch.no_grad():
            for k, v in params.items():
                best_params[k][active[better]] = v.detach()[torch.as_tensor(better, device=device)]
        keep = epoch - best_epoch[active] < patience
        epochs[active[~keep]] = epoch
        if not keep.any():
            break
        if not keep.all():  # drop the stopped models: the others' weights and Adam states are unchanged
            rows = torch.as_tensor(keep, device=device)
            kept = {k: v.detach()[rows].clone().requires_grad_() for k, v in params.items()}
            state = [opt.state[p] for p in params.values()]
            opt = torch.optim.Adam(list(kept.values()), lr=lr)
            for p, old in zip(kept.values(), state):
                opt.state[p] = {"step": old["step"].clone(), "exp_avg": old["exp_avg"][rows].clone(),
                                "exp_avg_sq": old["exp_avg_sq"][rows].clone()}
            params, active = kept, active[keep]
    trained = []
    for s, model in enumerate(models):
        best = copy.deepcopy(model)
        best.load_state_dict({k: best_params[k][s] for k in names}, strict=False)
        trained.append(best)
    return StackedDenseFit(models=trained, tasks=tasks, best_epoch=best_epoch, epochs=epochs,
                           val_loss=curve[:, :epochs.max()])


def dense_seeds(splits: Splits, num_classes: int, seeds: Sequence[int], width: int = 8,
                lr: float | Mapping[str, float] = 3e-3, batch_size: int = 32, max_epochs: int = 200,
                patience: int = 3) -> dict[str, Any]:
    """The chapter's experiment over paired seeds: one shared-encoder model against one network per task.

    For every seed ``s`` the three networks of :data:`NETWORKS` are built after
    ``seed_everything(s)`` (as :func:`dense_experiment` does), so seed ``s``
    gives them the same initial encoder and mini-batch order, and all train on
    the same scenes. Each network kind trains all seeds at once with
    :func:`fit_dense_stacked` (early stopping on the validation split, the
    weights of the best epoch kept) and is scored on the test split.

    Args:
        lr: one learning rate, or one per network (``{"multi_task": ..., "segmentation": ..., "depth": ...}``).

    Returns:
        ``{"scores": {kind: {task: {metric: array over seeds}}}`` for ``kind`` in
        ``"multi_task"`` and ``"single_task"`` (the two single-task networks),
        ``"delta_m"`` (per seed, percent, positive = the shared model gains),
        ``"fits"`` (network -> :class:`StackedDenseFit`), ``"seeds"``}.
    """
    from mtl_course.torch.dense import dense_prediction_model
    from mtl_course.torch.runtime import seed_everything

    seeds = [int(s) for s in seeds]
    rates = dict(lr) if isinstance(lr, Mapping) else dict.fromkeys(NETWORKS, lr)
    if set(rates) != set(NETWORKS):
        raise ValueError(f"lr needs one rate for each of {list(NETWORKS)}, got {list(rates)}")
    in_channels = splits.train.x.shape[1]
    fits = {}
    for name, tasks in NETWORKS.items():
        models = []
        for s in seeds:
            seed_everything(s)
            models.append(dense_prediction_model(in_channels, num_classes, width, tasks=tasks))
        fits[name] = fit_dense_stacked(models, splits, seeds, lr=rates[name], batch_size=batch_size,
                                       max_epochs=max_epochs, patience=patience)
    test = splits.test
    per_seed: dict[str, list] = {"multi_task": [], "single_task": []}
    for i in range(len(seeds)):
        per_seed["multi_task"].append(_scores_of(fits["multi_task"].models[i], test, num_classes))
        per_seed["single_task"].append({t: _scores_of(fits[t].models[i], test, num_classes)[t] for t in DENSE_TASKS})
    delta = np.array([delta_m(m, s, HIGHER_IS_BETTER) for m, s in zip(per_seed["multi_task"], per_seed["single_task"])])
    scores = {kind: {task: {metric: np.array([run[task][metric] for run in runs]) for metric in HIGHER_IS_BETTER[task]}
                     for task in DENSE_TASKS} for kind, runs in per_seed.items()}
    return {"scores": scores, "delta_m": delta, "fits": fits, "seeds": tuple(seeds)}


def _scores_of(model: Any, split: MultiTaskSplit, num_classes: int) -> dict[str, dict[str, float]]:
    from mtl_course.torch.train import predict

    return dense_scores(predict(model, split.x), split, num_classes)
