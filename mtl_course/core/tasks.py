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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mtl_course.checks import check_count
from mtl_course.data.types import MultiTaskSplit

LOSSES = ("mse", "cross_entropy", "bce")
"""The built-in task losses (mean squared error, softmax cross-entropy on logits
with integer class targets, and binary cross-entropy on logits)."""

DEFAULT_METRIC = {"mse": "mse", "cross_entropy": "accuracy", "bce": "auc"}
KINDS = ("regression", "classification")


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
        kind: ``"classification"`` or ``"regression"``. Inferred for the
            built-in losses (cross_entropy and bce classify); a task with a
            custom loss is ``"regression"`` unless it says otherwise
            (:class:`~mtl_course.torch.weighting.UncertaintyWeighting` uses it).
        ignore_label: a target value that marks a row as unlabelled (for
            example ``-1`` for class labels). NaN targets and the masked
            entries of a ``numpy.ma.MaskedArray`` are unlabelled too.

    Missing labels: the built-in losses average over the labelled entries
    only (a batch where a task has no label gives it a loss of exactly 0 with
    zero gradient), and :meth:`score` skips unlabelled rows, so training on a
    partially labelled task equals training that task on its labelled rows.
    A custom loss receives the rows whose entries are all labelled (and is
    not called on a batch without any: the task's loss there is 0).

    Loss weights are not part of a task: weighting the tasks is the job of
    the training method (see :mod:`mtl_course.torch.weighting`).

    Examples:
        >>> task = Task('cross_entropy', ignore_label=-1)
        >>> task.metric, task.higher_is_better, task.kind
        ('accuracy', True, 'classification')
        >>> Task('mse').metric, Task('bce').metric
        ('mse', 'auc')
    """

    loss: str | Callable[..., Any] = "mse"
    metric: str | Callable[[np.ndarray, np.ndarray], float] | None = None
    higher_is_better: bool | None = None
    kind: str | None = None
    ignore_label: float | None = None

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
        inferred = ("classification" if self.loss in ("cross_entropy", "bce") else "regression"
                    ) if isinstance(self.loss, str) else None
        if self.kind is None:
            object.__setattr__(self, "kind", inferred or "regression")
        elif self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        elif inferred is not None and self.kind != inferred:
            raise ValueError(f"loss {self.loss!r} is a {inferred} loss, not kind={self.kind!r}")
        if self.ignore_label is not None:
            if isinstance(self.ignore_label, bool) or not isinstance(self.ignore_label, (int, float, np.number)):
                raise TypeError(f"ignore_label must be a number, got {self.ignore_label!r}")
            if math.isnan(self.ignore_label):
                raise ValueError("ignore_label=NaN is not needed: NaN targets are always unlabelled")

    @property
    def target_dtype(self) -> str | None:
        """The dtype targets are cast to (int64 class indices, float32, or None to leave them as given)."""
        if self.loss == "cross_entropy":
            return "int64"
        if isinstance(self.loss, str):
            return "float32"
        return None

    def score(self, prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
        """The task's metric on numpy predictions and targets.

        ``mask`` (True = labelled, shaped like ``target``) restricts the
        score to the rows whose entries are all labelled; with no labelled
        row the score is NaN (there is nothing to score).

        Examples:
            >>> import numpy as np
            >>> Task("mse").score(np.array([1.0, 5.0]), np.array([0.0, 0.0]), mask=np.array([True, False]))
            1.0
        """
        if mask is not None:
            rows = np.asarray(mask).reshape(len(mask), -1).all(axis=1)
            if not rows.any():
                return float("nan")
            prediction, target = prediction[rows], target[rows]
        if isinstance(self.metric, str):
            from mtl_course.metrics import METRICS

            return float(METRICS[self.metric](prediction, target))
        return float(self.metric(prediction, target))


def resolve_tasks(tasks: Mapping[str, Task | str], data_tasks: tuple[str, ...],
                  model_tasks: tuple[str, ...] | None = None) -> dict[str, Task]:
    """Check the task specs against the data (and the model): same names, Task values.

    A plain loss name is accepted as shorthand for ``Task(loss=name)``.

    Examples:
        >>> tasks = resolve_tasks({'price': 'mse', 'kind': Task('cross_entropy')}, ('price', 'kind'))
        >>> {name: (task.loss, task.metric) for name, task in tasks.items()}  # a loss name is a Task
        {'price': ('mse', 'mse'), 'kind': ('cross_entropy', 'accuracy')}
        >>> resolve_tasks({'pric': 'mse'}, ('price',))
        Traceback (most recent call last):
            ...
        ValueError: no targets for task(s) ['pric'] in the data (it has ['price'])
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
    """Accept a :class:`~mtl_course.data.MultiTaskSplit` or a pair ``(x, {task: y})``.

    Examples:
        >>> import numpy as np
        >>> split = as_split((np.zeros((3, 2)), {'a': np.ones(3)}))
        >>> type(split).__name__, split.task_names
        ('MultiTaskSplit', ('a',))
    """
    if isinstance(data, MultiTaskSplit):
        return data
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], Mapping):
        # asanyarray keeps numpy masked arrays (their mask marks missing labels)
        return MultiTaskSplit(np.asarray(data[0]), {k: np.asanyarray(v) for k, v in data[1].items()})
    raise TypeError("data must be a MultiTaskSplit, a pair (x, {task: y}), or (for fit) a torch "
                    "DataLoader / tf.data.Dataset yielding such pairs")


def training_split(data: MultiTaskSplit | tuple[np.ndarray, Mapping[str, np.ndarray]]) -> MultiTaskSplit:
    """:func:`as_split`, refusing an empty data set (an epoch over it would have no loss).

    Examples:
        >>> import numpy as np
        >>> training_split((np.zeros((0, 2)), {'a': np.ones(0)}))
        Traceback (most recent call last):
            ...
        ValueError: the training data is empty
    """
    split = as_split(data)
    if len(split) == 0:
        raise ValueError("the training data is empty")
    return split


def is_loader(data: object) -> bool:
    """True for a re-iterable of batches (a torch ``DataLoader``, a ``tf.data.Dataset``), False for arrays.

    Examples:
        >>> import numpy as np
        >>> is_loader((np.zeros((3, 2)), {'a': np.ones(3)})), is_loader([(np.zeros((3, 2)), {'a': np.ones(3)})])
        (False, False)
        >>> is_loader(iter([]))
        True
    """
    return not isinstance(data, (MultiTaskSplit, tuple, list, dict, np.ndarray)) and hasattr(data, "__iter__")


def batch_pair(batch: object) -> tuple[Any, Mapping[str, Any]]:
    """A loader's batch as ``(x, {task: y})``, refusing anything else with a message that says so.

    Examples:
        >>> x, y = batch_pair(([1.0], {'a': [0.0]}))
        >>> x, y
        ([1.0], {'a': [0.0]})
        >>> batch_pair([1.0, 2.0])
        Traceback (most recent call last):
            ...
        TypeError: each batch must be a pair (x, {task: y}), got list
    """
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[1], Mapping):
        return batch[0], batch[1]
    raise TypeError(f"each batch must be a pair (x, {{task: y}}), got {type(batch).__name__}")


def materialize(loader: object, to_numpy: Callable[[Any], np.ndarray] = np.asanyarray) -> MultiTaskSplit:
    """All batches of a loader as one in-memory split (what ``evaluate`` scores).

    ``to_numpy`` turns a framework tensor into a numpy array; masked targets stay masked.

    Examples:
        >>> import numpy as np
        >>> batches = [(np.zeros((2, 3)), {'a': np.ones(2)}), (np.zeros((1, 3)), {'a': np.zeros(1)})]
        >>> split = materialize(batches)
        >>> split.x.shape, split.y['a'].tolist()
        ((3, 3), [1.0, 1.0, 0.0])
    """
    xs, ys = [], {}
    for batch in loader:
        x, y = batch_pair(batch)
        xs.append(to_numpy(x))
        for k, v in y.items():
            ys.setdefault(k, []).append(to_numpy(v))
    if not xs:
        raise ValueError("the data loader yielded no batch")
    return MultiTaskSplit(np.concatenate(xs), {k: np.ma.concatenate(v) if any(np.ma.isMaskedArray(a) for a in v)
                                               else np.concatenate(v) for k, v in ys.items()})


def evaluation_split(data: object, what: str,
                     to_numpy: Callable[[Any], np.ndarray] = np.asanyarray) -> MultiTaskSplit:
    """Arrays or a loader as one split, refusing an empty one (``what``: "validation", "evaluation").

    Examples:
        >>> import numpy as np
        >>> evaluation_split((np.zeros((0, 2)), {'a': np.ones(0)}), "validation")
        Traceback (most recent call last):
            ...
        ValueError: the validation data is empty
    """
    split = materialize(data, to_numpy) if is_loader(data) else as_split(data)
    if len(split) == 0:
        raise ValueError(f"the {what} data is empty")
    return split


def check_model_outputs(model: object, outputs: object, names: Sequence[str], needs_shared: bool,
                        package: str, returns: str, shared_word: str) -> None:
    """Raise a TypeError saying what ``fit`` needs from a model that lacks it.

    ``package`` (``"mtl_course.torch"`` or ``"mtl_course.tf"``), ``returns`` (what a
    wrappable model returns instead) and ``shared_word`` ("parameters" or
    "variables") put the advice in the framework's words.

    Examples:
        >>> check_model_outputs(None, (1, 2), ["a"], False, "mtl_course.torch", "a tuple", "parameters")
        Traceback (most recent call last):
            ...
        TypeError: model(x) must return a dict task name -> output, got tuple; wrap a module that returns a tuple with mtl_course.torch.wrap(module, shared=..., heads=...)
    """
    if not isinstance(outputs, Mapping):
        raise TypeError(
            f"model(x) must return a dict task name -> output, got {type(outputs).__name__}; "
            f"wrap a module that returns {returns} with {package}.wrap(module, shared=..., heads=...)")
    missing = [n for n in names if n not in outputs]
    if missing:
        raise TypeError(f"model(x) has no output for task(s) {missing} (it returned {list(outputs)})")
    if needs_shared and not callable(getattr(model, "shared_parameters", None)):
        raise TypeError(
            f"this method needs model.shared_parameters() (the {shared_word} every task uses): build the "
            f"model with {package}.HardSharing, or wrap it with {package}.wrap(module, shared=trunk, heads=...)")


def labelled_mask(task: Task, target: np.ndarray) -> np.ndarray | None:
    """True where ``target`` holds a label, shaped like it; None when every entry does.

    Unlabelled: NaN, ``task.ignore_label``, and the masked entries of a
    ``numpy.ma.MaskedArray``.

    Examples:
        >>> import numpy as np
        >>> labelled_mask(Task("cross_entropy", ignore_label=-1), np.array([2, -1, 0]))
        array([ True, False,  True])
        >>> labelled_mask(Task("mse"), np.array([0.5, 1.5])) is None
        True
    """
    data = np.ma.getdata(target)
    mask = ~np.ma.getmaskarray(target) if np.ma.isMaskedArray(target) else None
    if data.dtype.kind in "fc":
        finite = ~np.isnan(data)
        mask = finite if mask is None else mask & finite
    if task.ignore_label is not None:
        keep = data != task.ignore_label
        mask = keep if mask is None else mask & keep
    if mask is None or mask.all():
        return None
    return mask


def check_labels(name: str, task: Task, target: np.ndarray, mask: np.ndarray | None = None,
                 num_classes: int | None = None) -> None:
    """Raise a ValueError naming the task if its labelled targets are invalid for its loss.

    cross_entropy: integer class indices in ``[0, num_classes)``; bce: values
    in ``[0, 1]``; mse: finite values. Unlabelled entries (``mask`` False) are
    not checked. Custom losses are not checked.

    Examples:
        >>> import numpy as np
        >>> check_labels('kind', Task('cross_entropy'), np.array([0, 2, 5]), num_classes=5)
        Traceback (most recent call last):
            ...
        ValueError: task 'kind': class label 5 needs at least 6 output columns, the model gives 5 ...
    """
    if not isinstance(task.loss, str):
        return
    values = np.ma.getdata(target)
    if mask is not None:
        values = values[mask]
    if values.size == 0:
        return
    if task.loss == "cross_entropy":
        if values.dtype.kind not in "iub":
            as_float = values.astype(np.float64)
            if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
                raise ValueError(f"task {name!r}: cross_entropy targets must be integer class indices, "
                                 f"got non-integer values such as {as_float[as_float != np.round(as_float)][:3]}"
                                 " (mark missing labels with NaN or Task(ignore_label=...))")
        low, high = int(values.min()), int(values.max())
        if low < 0:
            raise ValueError(f"task {name!r}: class labels must be >= 0, got {low} "
                             "(if it marks a missing label, use Task('cross_entropy', ignore_label="
                             f"{low}))")
        if num_classes is not None and high >= num_classes:
            raise ValueError(f"task {name!r}: class label {high} needs at least {high + 1} output columns, "
                             f"the model gives {num_classes} (give the model an output size per task, "
                             f"for example MMoE(..., tasks={{{name!r}: {high + 1}}}))")
    elif task.loss == "bce":
        as_float = values.astype(np.float64)
        if not np.all((as_float >= 0) & (as_float <= 1)):
            raise ValueError(f"task {name!r}: bce targets must lie in [0, 1], got values in "
                             f"[{np.nanmin(as_float)}, {np.nanmax(as_float)}]")
    elif not np.all(np.isfinite(values.astype(np.float64))):
        raise ValueError(f"task {name!r}: mse targets must be finite (NaN marks a missing label; inf is refused)")


def prepare_targets(split: MultiTaskSplit, tasks: Mapping[str, Task]
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | None]]:
    """Checked targets and label masks: ``({task: y}, {task: mask or None})``.

    Unlabelled entries are filled with 0 (so every target is finite and casts
    to the task's :attr:`Task.target_dtype`); ``mask`` is True where labelled.

    Examples:
        >>> import numpy as np
        >>> split = as_split((np.zeros((3, 2)), {'price': np.array([1.0, np.nan, 3.0])}))
        >>> targets, masks = prepare_targets(split, {'price': Task('mse')})
        >>> targets['price'], masks['price']
        (array([1., 0., 3.], dtype=float32), array([ True, False,  True]))
    """
    targets, masks = {}, {}
    for name, task in tasks.items():
        targets[name], masks[name] = prepare_target(name, task, split.y[name])
    return targets, masks


def prepare_target(name: str, task: Task, y: np.ndarray, num_classes: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """One task's checked target (unlabelled entries filled with 0, cast) and its mask (or None).

    Examples:
        >>> import numpy as np
        >>> prepare_target('kind', Task('cross_entropy', ignore_label=-1), np.array([2, -1, 0]))
        (array([2, 0, 0]), array([ True, False,  True]))
    """
    mask = labelled_mask(task, y)
    check_labels(name, task, y, mask, num_classes)
    data = np.ma.getdata(y)
    if mask is not None:
        data = np.where(mask, data, np.zeros((), dtype=data.dtype))
    return (data.astype(task.target_dtype, copy=False) if task.target_dtype else data), mask


def metric_name(task: Task) -> str:
    """The name of a task's metric (a callable's ``__name__``).

    Examples:
        >>> import numpy as np
        >>> def r2(prediction, target):
        ...     return 0.0
        >>> metric_name(Task('cross_entropy')), metric_name(Task('mse', metric=r2, higher_is_better=True))
        ('accuracy', 'r2')
    """
    return task.metric if isinstance(task.metric, str) else getattr(task.metric, "__name__", "metric")


class Scores(dict):
    """What ``evaluate`` returns: a dict task -> metric value that also says which metric
    each value is (``metrics``, task -> metric name), as its repr shows.

    Examples:
        >>> Scores({"price": 0.25, "kind": 0.5}, {"price": "mse", "kind": "accuracy"})
        Scores(price: mse=0.25, kind: accuracy=0.5)
    """

    def __init__(self, values: Mapping[str, float], metrics: Mapping[str, str]) -> None:
        super().__init__(values)
        self.metrics = dict(metrics)

    def __repr__(self) -> str:
        return "Scores(" + ", ".join(f"{k}: {self.metrics.get(k, '?')}={v!r}" for k, v in self.items()) + ")"


class EarlyStopping:
    """Tracks the monitored validation value of ``fit`` (framework-free).

    ``monitor="loss"`` watches the sum of the validation losses (lower is
    better); a task name watches that task's validation metric in its own
    direction (:attr:`Task.higher_is_better`). ``patience`` epochs without
    improvement stop training (None: never).

    Examples:
        >>> stop = EarlyStopping("loss", patience=1, tasks={"a": Task("mse")})
        >>> [stop.update({"a": v}, {"a": 0.0}) for v in (3.0, 2.0, 2.5)], stop.best_epoch, stop.should_stop
        ([True, True, False], 1, True)
    """

    def __init__(self, monitor: str, patience: int | None, tasks: Mapping[str, Task]) -> None:
        if monitor != "loss" and monitor not in tasks:
            raise ValueError(f"monitor must be 'loss' or a task name {list(tasks)}, got {monitor!r}")
        if patience is not None:
            check_count(patience, "patience (None or an int)", minimum=0)
        self.monitor, self.patience = monitor, patience
        self.higher = monitor != "loss" and bool(tasks[monitor].higher_is_better)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.epoch = -1
        self.should_stop = False

    def update(self, val_loss: Mapping[str, float], val_metric: Mapping[str, float]) -> bool:
        """Record one epoch; True when it is the best so far (NaN never is)."""
        self.epoch += 1
        value = float(sum(val_loss.values())) if self.monitor == "loss" else float(val_metric[self.monitor])
        improved = math.isfinite(value) and (
            self.best is None or (value > self.best if self.higher else value < self.best))
        if improved:
            self.best, self.best_epoch = value, self.epoch
        elif self.patience is not None and self.epoch - (self.best_epoch if self.best_epoch is not None else -1) \
                >= self.patience:
            self.should_stop = True
        return improved


@dataclass
class FitPlan:
    """What both twins' ``fit`` reads from its arguments before training (see :func:`plan_fit`).

    Examples:
        >>> import numpy as np
        >>> plan = plan_fit(None, (np.zeros((4, 2)), {"a": np.zeros(4)}), {"a": "mse"}, None,
        ...                 epochs=1, patience=None, monitor="loss", clip_grad_norm=None)
        >>> plan.specs["a"].metric, plan.val_data is None
        ('mse', True)
    """

    loader: bool
    """Whether the training data is a loader of batches (else arrays, in :attr:`split`)."""
    split: MultiTaskSplit | None
    """The training arrays; None for a loader."""
    first_x: Any
    """The inputs of a loader's first batch (to build the model on); None for arrays."""
    specs: dict[str, Task]
    """Task name -> :class:`Task`, in training order."""
    val_data: MultiTaskSplit | None
    """The validation data as arrays, or None."""
    stopper: EarlyStopping
    """Early stopping on :attr:`val_data`."""

    @property
    def names(self) -> list[str]:
        return list(self.specs)


def plan_fit(model: object, train_data: object, tasks: Mapping[str, Task | str], val_data: object,
             epochs: int, patience: int | None, monitor: str, clip_grad_norm: float | None,
             to_numpy: Callable[[Any], np.ndarray] = np.asanyarray) -> FitPlan:
    """Check ``fit``'s arguments and resolve its tasks, the same way for both twins.

    The tasks come from ``tasks``, matched against those of the data (a
    loader's first batch, or the arrays) and the model's ``task_names``
    (:func:`resolve_tasks`); ``val_data`` is read into arrays
    (:func:`evaluation_split`, ``to_numpy`` for the framework's tensors).

    Examples:
        >>> import numpy as np
        >>> plan = plan_fit(None, (np.zeros((4, 2)), {"a": np.zeros(4)}), {"a": "mse"}, None,
        ...                 epochs=3, patience=None, monitor="loss", clip_grad_norm=None)
        >>> plan.loader, plan.names, len(plan.split)
        (False, ['a'], 4)
    """
    check_count(epochs, "epochs", minimum=0)
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(f"clip_grad_norm must be None or positive, got {clip_grad_norm!r}")
    loader = is_loader(train_data)
    split = first_x = None
    if loader:
        first_x, first_y = batch_pair(next(iter(train_data)))
        data_tasks = tuple(first_y)
    else:
        split = training_split(train_data)
        data_tasks = split.task_names
    specs = resolve_tasks(tasks, data_tasks, getattr(model, "task_names", None))
    if val_data is not None:
        val_data = evaluation_split(val_data, "validation", to_numpy)
    if patience is not None and val_data is None:
        raise ValueError("early stopping (patience=...) needs val_data")
    return FitPlan(loader, split, first_x, specs, val_data, EarlyStopping(monitor, patience, specs))


def evaluate_model(model: object, data: object, tasks: Mapping[str, Task | str], batch_size: int,
                   return_losses: bool, predict: Callable[..., dict[str, np.ndarray]],
                   loss: Callable[[str, Task, np.ndarray, np.ndarray, np.ndarray | None], float],
                   to_numpy: Callable[[Any], np.ndarray] = np.asanyarray) -> Scores | tuple[Scores, dict[str, float]]:
    """Both twins' ``evaluate``: each task's metric on ``data`` (and its mean loss with ``return_losses``).

    ``predict(model, x, batch_size)`` is the twin's :func:`~mtl_course.torch.train.predict`;
    ``loss(name, task, prediction, target, mask)`` its task loss on numpy
    arrays, as a float. Metrics are computed once on all predictions, from
    the raw outputs reshaped like the targets, on the labelled rows of each
    task only (NaN for a task without any label).

    Examples:
        >>> import numpy as np
        >>> def predict(model, x, batch_size):
        ...     return {"a": x.sum(axis=1)}
        >>> data = (np.ones((4, 2)), {"a": np.full(4, 3.0)})
        >>> evaluate_model(None, data, {"a": "mse"}, 2, False, predict, None)
        Scores(a: mse=1.0)
    """
    split = evaluation_split(data, "evaluation", to_numpy)
    specs = resolve_tasks(tasks, split.task_names, getattr(model, "task_names", None))
    outputs = predict(model, split.x, batch_size)
    targets, masks = prepare_targets(split, specs)
    metrics, losses = {}, {}
    for name, task in specs.items():
        pred, y, mask = outputs[name], targets[name], masks[name]
        if isinstance(task.loss, str):
            pred = pred.reshape(aligned_shape(name, pred.shape, y.shape, task.loss))
            if task.loss == "cross_entropy":
                check_labels(name, task, y, mask, pred.shape[-1])
        metrics[name] = task.score(pred, y, mask)
        if return_losses:
            losses[name] = loss(name, task, pred, y, mask)
    scores = Scores(metrics, {n: metric_name(t) for n, t in specs.items()})
    return (scores, losses) if return_losses else scores


def epoch_mean_losses(names: Sequence[str], sums: np.ndarray, seen: np.ndarray) -> dict[str, float]:
    """Each task's mean training loss over the batches of an epoch in which it had labels (NaN: none).

    ``sums`` adds each batch's loss of the tasks labelled in it, ``seen`` counts those batches.

    Examples:
        >>> import numpy as np
        >>> epoch_mean_losses(["a", "b"], np.array([3.0, 0.0]), np.array([2, 0]))
        {'a': 1.5, 'b': nan}
    """
    if not np.any(seen):
        raise ValueError("the training data yielded no batch")
    with np.errstate(invalid="ignore"):
        return dict(zip(names, (np.asarray(sums) / np.asarray(seen)).tolist()))


def cast_targets(split: MultiTaskSplit, tasks: Mapping[str, Task]) -> dict[str, np.ndarray]:
    """The targets of ``tasks``, checked and cast to each task's :attr:`Task.target_dtype`, for
    code that needs every label (task affinity): a missing label raises a ValueError naming the
    task (``fit`` and ``evaluate`` handle them, see :func:`prepare_targets`).

    Examples:
        >>> import numpy as np
        >>> split = as_split((np.zeros((3, 2)), {'kind': np.array([0.0, 1.0, 2.0])}))
        >>> cast_targets(split, {'kind': Task('cross_entropy')})
        {'kind': array([0, 1, 2])}
    """
    targets, masks = prepare_targets(split, tasks)
    missing = [name for name, mask in masks.items() if mask is not None]
    if missing:
        raise ValueError(f"task(s) {missing} have missing labels (NaN or inf targets, or ignored / masked "
                         "entries); this needs every label")
    return targets


def batch_indices(n: int, batch_size: int, rng: np.random.Generator | None) -> Iterator[np.ndarray]:
    """Row indices of each mini-batch: a permutation drawn from ``rng`` (None: in order).

    The last batch is smaller when ``batch_size`` does not divide ``n``.

    Examples:
        >>> import numpy as np
        >>> list(batch_indices(5, 2, None))
        [array([0, 1]), array([2, 3]), array([4])]
        >>> rows = np.concatenate(list(batch_indices(5, 2, np.random.default_rng(0))))  # shuffled
        >>> sorted(rows.tolist())  # each row once
        [0, 1, 2, 3, 4]
    """
    check_count(batch_size, "batch_size")
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

    Examples:
        >>> aligned_shape('price', (8, 1), (8,), 'mse')
        (8,)
        >>> aligned_shape('price', (8, 2), (8,), 'mse')
        Traceback (most recent call last):
            ...
        ValueError: task 'price': prediction shape (8, 2) does not match target shape (8,)
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
            (a weighting's ``.weights``; for RLW the last draw; for a gradient
            aggregator the weights ``w`` with ``w @ J = d`` of the epoch's last
            step, 0 for a task without labels in that batch; None for a model
            without shared parameters).
        epoch_time: seconds per epoch (the only entry that is not reproducible).
        metric_names: task -> name of the metric in ``val_metric``.
        best_epoch: with early stopping (``fit(patience=...)``), the epoch
            (from 0) with the best monitored value, whose weights ``fit``
            restored; else None.

    Examples:
        >>> history = History(['a', 'b'])
        >>> history.train_loss['a'] = [0.9, 0.5]  # fit appends one value per epoch
        >>> history.task_names, history.train_loss['a'][-1], history.best_epoch
        (['a', 'b'], 0.5, None)
    """

    task_names: list[str]
    train_loss: dict[str, list[float]] = field(default_factory=dict)
    val_loss: dict[str, list[float]] = field(default_factory=dict)
    val_metric: dict[str, list[float]] = field(default_factory=dict)
    weights: list[list[float] | None] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    metric_names: dict[str, str] = field(default_factory=dict)
    best_epoch: int | None = None

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
