"""Task specifications and the framework-free parts of the training loops.

A :class:`Task` says how one task is trained and scored: its loss and its
metric. ``mtl_course.torch.fit`` and ``mtl_course.tf.fit`` take a mapping
``task name -> Task`` and share everything here: data normalisation
(:func:`as_split`), deterministic batching (:func:`batch_indices`), shape
alignment of predictions and targets (:func:`aligned_shape`) and the
:class:`History` they return.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mtl_course.data.types import MultiTaskSplit

LOSSES = ("mse", "cross_entropy", "bce")
"""The built-in task losses (mean squared error, softmax cross-entropy on logits
with integer class targets, and binary cross-entropy on logits)."""

DEFAULT_METRIC = {"mse": "mse", "cross_entropy": "accuracy", "bce": "auc"}


@dataclass(frozen=True)
class Task:
    """How one task is trained and scored.

    Attributes:
        loss: ``"mse"``, ``"cross_entropy"`` (logits ``(n, C)``, int targets
            ``(n,)``), ``"bce"`` (logits, 0/1 targets), or a callable
            ``loss(prediction, target) -> scalar tensor`` in the framework used.
        metric: a name in :data:`mtl_course.metrics.METRICS` or a callable
            ``metric(prediction_numpy, target_numpy) -> float``; default: the
            loss's usual metric (mse -> "mse", cross_entropy -> "accuracy",
            bce -> "auc"). Predictions are the raw model outputs (logits).
        higher_is_better: inferred from a metric name; required with a
            callable metric.

    Loss weights are not part of a task: weighting the tasks is the job of
    the training method (see :mod:`mtl_course.torch.weighting`).
    """

    loss: str | Callable[..., Any] = "mse"
    metric: str | Callable[[np.ndarray, np.ndarray], float] | None = None
    higher_is_better: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.loss, str):
            if self.loss not in LOSSES:
                raise ValueError(f"unknown loss {self.loss!r}; use one of {LOSSES} or a callable")
        elif not callable(self.loss):
            raise TypeError(f"loss must be a name or a callable, got {self.loss!r}")
        metric = self.metric
        if metric is None:
            if not isinstance(self.loss, str):
                raise ValueError("a task with a custom loss needs an explicit metric")
            metric = DEFAULT_METRIC[self.loss]
            object.__setattr__(self, "metric", metric)
        if isinstance(metric, str):
            from mtl_course.metrics import HIGHER_IS_BETTER, METRICS

            if metric not in METRICS:
                raise ValueError(f"unknown metric {metric!r}; use one of {sorted(METRICS)} or a callable")
            known = bool(HIGHER_IS_BETTER[metric])
            if self.higher_is_better is not None and self.higher_is_better != known:
                raise ValueError(f"metric {metric!r} has higher_is_better={known}")
            object.__setattr__(self, "higher_is_better", known)
        elif callable(metric):
            if self.higher_is_better is None:
                raise ValueError("a callable metric needs higher_is_better=True or False")
        else:
            raise TypeError(f"metric must be a name or a callable, got {metric!r}")

    @property
    def kind(self) -> str:
        """"classification" for cross_entropy and bce, else "regression" (used by uncertainty weighting)."""
        return "classification" if self.loss in ("cross_entropy", "bce") else "regression"

    @property
    def target_dtype(self) -> str | None:
        """The dtype targets are cast to (int64 class indices, float32, or None to leave them as given)."""
        if self.loss == "cross_entropy":
            return "int64"
        if isinstance(self.loss, str):
            return "float32"
        return None

    def score(self, prediction: np.ndarray, target: np.ndarray) -> float:
        """The task's metric on numpy predictions and targets."""
        if isinstance(self.metric, str):
            from mtl_course.metrics import METRICS

            return float(METRICS[self.metric](prediction, target))
        return float(self.metric(prediction, target))


def resolve_tasks(tasks: Mapping[str, Task | str], data_tasks: tuple[str, ...],
                  model_tasks: tuple[str, ...] | None = None) -> dict[str, Task]:
    """Check the task specs against the data (and the model): same names, Task values.

    A plain loss name is accepted as shorthand for ``Task(loss=name)``.
    """
    if not isinstance(tasks, Mapping) or not tasks:
        raise ValueError("tasks must be a non-empty mapping task name -> Task")
    resolved = {name: spec if isinstance(spec, Task) else Task(spec) for name, spec in tasks.items()}
    missing = [name for name in resolved if name not in data_tasks]
    if missing:
        raise ValueError(f"no targets for task(s) {missing} in the data (it has {list(data_tasks)})")
    if model_tasks is not None:
        unknown = [name for name in resolved if name not in model_tasks]
        if unknown:
            raise ValueError(f"the model has no output for task(s) {unknown} (it has {list(model_tasks)})")
    return resolved


def as_split(data: MultiTaskSplit | tuple[np.ndarray, Mapping[str, np.ndarray]]) -> MultiTaskSplit:
    """Accept a :class:`~mtl_course.data.MultiTaskSplit` or a pair ``(x, {task: y})``."""
    if isinstance(data, MultiTaskSplit):
        return data
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], Mapping):
        return MultiTaskSplit(np.asarray(data[0]), {k: np.asarray(v) for k, v in data[1].items()})
    raise TypeError("data must be a MultiTaskSplit or a pair (x, {task: y})")


def training_split(data: MultiTaskSplit | tuple[np.ndarray, Mapping[str, np.ndarray]]) -> MultiTaskSplit:
    """:func:`as_split`, refusing an empty data set (an epoch over it would have no loss)."""
    split = as_split(data)
    if len(split) == 0:
        raise ValueError("the training data is empty")
    return split


def cast_targets(split: MultiTaskSplit, tasks: Mapping[str, Task]) -> dict[str, np.ndarray]:
    """The targets of ``tasks``, cast to each task's :attr:`Task.target_dtype`."""
    out = {}
    for name, task in tasks.items():
        y = split.y[name]
        out[name] = y.astype(task.target_dtype, copy=False) if task.target_dtype else y
    return out


def batch_indices(n: int, batch_size: int, rng: np.random.Generator | None) -> Iterator[np.ndarray]:
    """Row indices of each mini-batch: a permutation drawn from ``rng`` (None: in order).

    The last batch is smaller when ``batch_size`` does not divide ``n``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, int(batch_size)):
        yield order[start:start + batch_size]


def aligned_shape(task: str, prediction_shape: tuple[int, ...], target_shape: tuple[int, ...],
                  loss: str) -> tuple[int, ...]:
    """The shape the prediction is reshaped to before an elementwise loss.

    For "mse" and "bce" a prediction ``(n, 1)`` against targets ``(n,)`` (or the
    reverse) is reshaped to the target's shape; any other mismatch is an
    error, never a silent broadcast (an ``(n, 1) - (n,)`` broadcast would give
    an ``(n, n)`` loss). For "cross_entropy" the prediction must be
    ``(n, C)`` logits with targets ``(n,)``.
    """
    prediction_shape, target_shape = tuple(prediction_shape), tuple(target_shape)
    if loss == "cross_entropy":
        if len(prediction_shape) != 2 or target_shape != prediction_shape[:1]:
            raise ValueError(
                f"task {task!r}: cross_entropy needs logits (n, C) and class indices (n,), "
                f"got {prediction_shape} and {target_shape}"
            )
        return prediction_shape
    if prediction_shape == target_shape:
        return prediction_shape
    if math.prod(prediction_shape) == math.prod(target_shape) and prediction_shape[:1] == target_shape[:1]:
        return target_shape
    raise ValueError(f"task {task!r}: prediction shape {prediction_shape} does not match target shape {target_shape}")


@dataclass
class History:
    """What :func:`~mtl_course.torch.train.fit` records, one entry per epoch (plain floats,
    identical in torch and tf).

    Attributes:
        task_names: task order of every per-task list.
        train_loss: task -> epoch-average training loss per epoch (the mean of
            the per-batch losses).
        val_loss / val_metric: task -> validation loss / metric per epoch
            (empty dicts without validation data).
        weights: per epoch the method's task weights at the end of the epoch
            (a weighting's ``.weights``; for RLW the last draw), or None for
            gradient aggregators.
        epoch_time: seconds per epoch (the only entry that is not reproducible).
    """

    task_names: list[str]
    train_loss: dict[str, list[float]] = field(default_factory=dict)
    val_loss: dict[str, list[float]] = field(default_factory=dict)
    val_metric: dict[str, list[float]] = field(default_factory=dict)
    weights: list[list[float] | None] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.epoch_time)

    def record(self, train_loss: Mapping[str, float], weights: np.ndarray | None, seconds: float,
               val_loss: Mapping[str, float] | None = None,
               val_metric: Mapping[str, float] | None = None) -> None:
        """Append one epoch."""
        for name in self.task_names:
            self.train_loss.setdefault(name, []).append(float(train_loss[name]))
            if val_loss is not None:
                self.val_loss.setdefault(name, []).append(float(val_loss[name]))
            if val_metric is not None:
                self.val_metric.setdefault(name, []).append(float(val_metric[name]))
        self.weights.append(None if weights is None else [float(w) for w in np.asarray(weights).ravel()])
        self.epoch_time.append(float(seconds))

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of lists and floats (JSON-serialisable)."""
        return asdict(self)
