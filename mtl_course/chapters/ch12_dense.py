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

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from mtl_course.core.model_config import DENSE_TASKS
from mtl_course.core.tasks import Task
from mtl_course.data.types import MultiTaskSplit, Splits
from mtl_course.metrics import count_parameters, delta_m, depth_abs_rel, depth_rmse, mean_iou, pixel_accuracy

__all__ = [
    "HIGHER_IS_BETTER",
    "dense_experiment",
    "dense_scores",
    "dense_tasks",
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
