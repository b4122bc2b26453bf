r"""Framework-free metrics: per-task scores and the multi-task score :math:`\Delta_m`.

Every function takes numpy arrays (or anything ``np.asarray`` accepts, so
detached CPU tensors work too) and returns a Python ``float``. The training
loops of :mod:`mtl_course.torch` and :mod:`mtl_course.tf` look metrics up by
name in :data:`METRICS` and read their direction from :data:`HIGHER_IS_BETTER`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from sklearn.metrics import roc_auc_score

from mtl_course.checks import check_outputs, layer_sizes, positive_int

__all__ = [
    "accuracy",
    "binary_accuracy",
    "mse",
    "mae",
    "roc_auc",
    "delta_m",
    "METRICS",
    "HIGHER_IS_BETTER",
    "pixel_accuracy",
    "mean_iou",
    "depth_abs_rel",
    "depth_rmse",
    "count_parameters",
    "mlp_parameter_count",
    "hard_sharing_parameter_count",
    "separate_parameter_count",
    "width_for_budget",
]


# --------------------------------------------------------------------------
# per-task metrics
# --------------------------------------------------------------------------


def _finite_array(name: str, values: object) -> np.ndarray:
    array = np.asarray(values)
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf")
    return array


def _same_shape(predictions: np.ndarray, targets: np.ndarray) -> None:
    if predictions.shape != targets.shape:
        raise ValueError(
            f"predictions have shape {predictions.shape} but targets have shape "
            f"{targets.shape}"
        )


def _aligned(predictions: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two arrays with equal shapes, dropping a trailing axis of size 1 from one.

    A one-output head gives ``(n, 1)`` for ``(n,)`` targets; subtracting them
    as they are would silently broadcast to ``(n, n)``.
    """
    if predictions.shape == targets.shape + (1,):
        predictions = predictions[..., 0]
    elif targets.shape == predictions.shape + (1,):
        targets = targets[..., 0]
    _same_shape(predictions, targets)
    return predictions, targets


def _class_labels(name: str, values: object) -> np.ndarray:
    labels = _finite_array(name, values)
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels, got shape {labels.shape}")
    if not np.array_equal(labels, np.round(labels)):
        raise ValueError(f"{name} must hold integer class labels")
    return labels.astype(np.int64)


def accuracy(logits_or_labels: object, labels: object) -> float:
    """Fraction of correct class predictions.

    Args:
        logits_or_labels: either scores of shape ``(n, num_classes)`` (logits or
            probabilities; the prediction is the arg-max) or predicted class
            labels of shape ``(n,)``.
        labels: true class labels, shape ``(n,)``.

    Examples:
        >>> import numpy as np
        >>> round(accuracy(np.array([[2.0, 0.1], [0.3, 0.9], [1.0, 0.0]]), np.array([0, 1, 1])), 4)
        0.6667
        >>> round(accuracy(np.array([0, 1, 1]), np.array([0, 1, 0])), 4)  # predicted labels work too
        0.6667
    """
    target = _class_labels("labels", labels)
    scores = _finite_array("logits_or_labels", logits_or_labels)
    if scores.ndim == 2:
        predicted = scores.argmax(axis=1)
    elif scores.ndim == 1:
        predicted = _class_labels("predicted labels", scores)
    else:
        raise ValueError(
            "logits_or_labels must have shape (n, num_classes) or (n,), got "
            f"{scores.shape}"
        )
    _same_shape(predicted, target)
    return float(np.mean(predicted == target))


def binary_accuracy(probabilities: object, labels: object, threshold: float = 0.5) -> float:
    """Fraction of 0/1 labels predicted right by ``probabilities >= threshold``.

    Pass ``threshold=0.0`` to threshold logits instead of probabilities.

    Examples:
        >>> import numpy as np
        >>> binary_accuracy(np.array([0.9, 0.2, 0.6, 0.4]), np.array([1, 0, 0, 0]))
        0.75
        >>> binary_accuracy(np.array([2.0, -1.0]), np.array([1, 0]), threshold=0.0)  # logits
        1.0
    """
    p = _finite_array("probabilities", probabilities).astype(np.float64)
    p, y = _aligned(p, _finite_array("labels", labels))
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 or 1")
    return float(np.mean((p >= threshold) == (y == 1)))


def mse(predictions: object, targets: object) -> float:
    """Mean squared error, averaged over every entry.

    Shapes must match, except that ``(n, 1)`` predictions pair with ``(n,)``
    targets (and vice versa); the same holds for :func:`mae`,
    :func:`binary_accuracy` and :func:`roc_auc`.

    Examples:
        >>> import numpy as np
        >>> mse(np.array([[1.0], [3.0]]), np.array([0.0, 1.0]))  # (n, 1) pairs with (n,)
        2.5
    """
    p = _finite_array("predictions", predictions).astype(np.float64)
    p, t = _aligned(p, _finite_array("targets", targets).astype(np.float64))
    return float(np.mean((p - t) ** 2))


def mae(predictions: object, targets: object) -> float:
    """Mean absolute error, averaged over every entry.

    Examples:
        >>> import numpy as np
        >>> mae(np.array([1.0, 3.0]), np.array([0.0, 1.0]))
        1.5
    """
    p = _finite_array("predictions", predictions).astype(np.float64)
    p, t = _aligned(p, _finite_array("targets", targets).astype(np.float64))
    return float(np.mean(np.abs(p - t)))


def roc_auc(scores: object, labels: object) -> float:
    """Area under the ROC curve of 0/1 ``labels`` ranked by ``scores``.

    Computed by :func:`sklearn.metrics.roc_auc_score`. Raises ``ValueError``
    when ``labels`` hold a single class (the AUC is then undefined).

    Examples:
        >>> import numpy as np
        >>> roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.75
    """
    s = _finite_array("scores", scores).astype(np.float64)
    s, y = _aligned(s, _finite_array("labels", labels))
    if s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D, got shape {s.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 or 1")
    if np.all(y == y[0]):
        raise ValueError("roc_auc is undefined when labels hold a single class")
    return float(roc_auc_score(y, s))


METRICS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "binary_accuracy": binary_accuracy,
    "mse": mse,
    "mae": mae,
    "auc": roc_auc,
}
"""Metric name -> function ``(predictions, targets) -> float``.

Examples:
    >>> import numpy as np
    >>> sorted(METRICS)
    ['accuracy', 'auc', 'binary_accuracy', 'mae', 'mse']
    >>> METRICS["mae"](np.array([1.0, 3.0]), np.array([0.0, 1.0]))
    1.5
"""

HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "binary_accuracy": True,
    "mse": False,
    "mae": False,
    "auc": True,
}
"""Metric name -> whether a larger value is better (the input of :func:`delta_m`).

Examples:
    >>> HIGHER_IS_BETTER["accuracy"], HIGHER_IS_BETTER["mse"]
    (True, False)
"""


# --------------------------------------------------------------------------
# Delta_m
# --------------------------------------------------------------------------

Score = float | Mapping[str, float]
Direction = bool | Mapping[str, bool]


def _relative_gains(
    scores: Mapping[str, Score],
    baseline: Mapping[str, Score],
    higher_is_better: Mapping[str, Direction],
) -> dict[str, list[float]]:
    """Task -> the signed relative gains ``(-1)^l (M_m - M_b) / M_b`` of its metrics."""
    if not baseline:
        raise ValueError("baseline holds no task")
    for name, given in (("scores", scores), ("higher_is_better", higher_is_better)):
        missing = sorted(set(baseline) - set(given))
        extra = sorted(set(given) - set(baseline))
        if missing:
            raise ValueError(f"{name} lacks the task(s) {missing} present in baseline")
        if extra:
            raise ValueError(f"{name} has task(s) {extra} absent from baseline")

    gains: dict[str, list[float]] = {}
    for task, base in baseline.items():
        if isinstance(base, Mapping):
            model, up = scores[task], higher_is_better[task]
            if not isinstance(model, Mapping) or not isinstance(up, Mapping):
                raise TypeError(
                    f"task {task!r}: baseline gives a dict of metrics, so scores and "
                    "higher_is_better must too"
                )
            if not base:
                raise ValueError(f"task {task!r} has no metric in baseline")
            if set(model) != set(base) or set(up) != set(base):
                raise ValueError(
                    f"task {task!r}: metrics differ: baseline {sorted(base)}, scores "
                    f"{sorted(model)}, higher_is_better {sorted(up)}"
                )
            items = [(f"{task}/{m}", model[m], base[m], up[m]) for m in base]
        else:
            items = [(task, scores[task], base, higher_is_better[task])]
        gains[task] = [_relative_gain(*item) for item in items]
    return gains


def _relative_gain(label: str, model: object, base: object, up: object) -> float:
    if not isinstance(up, (bool, np.bool_)):
        raise TypeError(f"higher_is_better for {label} must be a bool, got {up!r}")
    values = []
    for which, value in (("score", model), ("baseline", base)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"{which} of {label} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{which} of {label} is {value}, not a finite number")
        values.append(float(value))
    model_value, base_value = values
    if base_value == 0.0:
        raise ValueError(f"baseline of {label} is 0: the relative change is undefined")
    sign = 1.0 if up else -1.0
    # |M_b|, not M_b: with a negative baseline (R^2 < 0, a log-likelihood) dividing by
    # M_b would flip the sign, reporting an improvement as a loss
    return sign * (model_value - base_value) / abs(base_value)


def delta_m(
    scores: Mapping[str, Score],
    baseline: Mapping[str, Score],
    higher_is_better: Mapping[str, Direction],
    average: Literal["tasks", "metrics"] = "tasks",
) -> float:
    r"""Average relative gain of a multi-task model over a baseline, in percent.

    Maninis, Radosavovic and Kokkinos, "Attentive Single-Tasking of Multiple
    Tasks", CVPR 2019:

    .. math::

        \Delta_m = \frac{100\%}{T} \sum_{i=1}^{T}
            (-1)^{l_i} \, \frac{M_{m,i} - M_{b,i}}{|M_{b,i}|},

    with :math:`M_{m,i}` the model's and :math:`M_{b,i}` the baseline's
    (usually single-task) score and :math:`l_i = 1` when lower is better for
    metric :math:`i`. **Positive is better** (the model gains on average).
    The paper divides by :math:`M_{b,i}`, its metrics being positive; the
    absolute value keeps that meaning for a negative baseline (an :math:`R^2`
    below zero, a log-likelihood), where dividing by it would flip the sign.

    When a task reports several metrics there are two averages:

    * ``average="tasks"`` (default): average the gains within each task, then
      over tasks, so every task weighs the same however many metrics it reports.
    * ``average="metrics"``: one flat mean over all (task, metric) pairs.
      The public code of Navon et al., "Multi-Task Learning as a Bargaining
      Game" (Nash-MTL), ICML 2022, computes NYUv2 numbers this way, over its 9
      metrics, and reports the *drop* :math:`-\Delta_m` (lower is better there).

    With one metric per task the two averages are equal.

    Args:
        scores: task -> score, or task -> {metric -> score}, of the model.
        baseline: the same structure for the baseline.
        higher_is_better: the same structure with bools.
        average: ``"tasks"`` or ``"metrics"``.

    Raises:
        ValueError: a task or metric missing from one of the dicts, a zero
            baseline, a NaN or infinite score, an unknown ``average``.
        TypeError: mismatched nesting or non-numeric scores.

    Examples:
        >>> scores, baseline = {'depth': 0.9, 'seg': 0.55}, {'depth': 1.0, 'seg': 0.5}  # depth: an error, seg: an IoU
        >>> round(delta_m(scores, baseline, {'depth': False, 'seg': True}), 6)  # +10% on both
        10.0
    """
    if average not in ("tasks", "metrics"):
        raise ValueError(f"average must be 'tasks' or 'metrics', got {average!r}")
    gains = _relative_gains(scores, baseline, higher_is_better)
    if average == "tasks":
        value = np.mean([np.mean(task_gains) for task_gains in gains.values()])
    else:
        value = np.mean([g for task_gains in gains.values() for g in task_gains])
    return float(100.0 * value)


# --------------------------------------------------------------------------
# dense prediction: label maps and depth maps (chapter 12)
# --------------------------------------------------------------------------


def _same_map_shape(prediction: np.ndarray, target: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    prediction, target = np.asarray(prediction), np.asarray(target)
    if prediction.shape != target.shape:
        raise ValueError(f"{what}: prediction shape {prediction.shape} differs from target shape {target.shape}")
    if prediction.size == 0:
        raise ValueError(f"{what}: empty arrays")
    return prediction, target


def _label_maps(prediction: np.ndarray, target: np.ndarray, num_classes: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    prediction, target = _same_map_shape(prediction, target, what)
    for array, name in ((prediction, "prediction"), (target, "target")):
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"{what}: {name} must hold integer class labels, got dtype {array.dtype}")
        if array.min() < 0 or array.max() >= num_classes:
            raise ValueError(f"{what}: {name} has labels outside 0..{num_classes - 1}")
    return prediction, target


def pixel_accuracy(prediction: np.ndarray, target: np.ndarray) -> float:
    """Fraction of pixels whose predicted class equals the true class (label maps of the same shape).

    Examples:
        >>> pixel_accuracy(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 1]]))
        0.75
    """
    prediction, target = _same_map_shape(prediction, target, "pixel_accuracy")
    return float(np.mean(prediction == target))


def mean_iou(prediction: np.ndarray, target: np.ndarray, num_classes: int) -> float:
    r"""Mean intersection over union of label maps, over the classes that occur.

    .. math::

        \mathrm{IoU}_c = \frac{|\hat Y_c \cap Y_c|}{|\hat Y_c \cup Y_c|}, \qquad
        \mathrm{mIoU} = \frac{1}{|\mathcal{C}|} \sum_{c \in \mathcal{C}} \mathrm{IoU}_c,

    with :math:`\hat Y_c` and :math:`Y_c` the pixels predicted as and labelled
    :math:`c` over the whole set (not averaged per image), and
    :math:`\mathcal{C}` the classes with a non-empty union (a class neither
    predicted nor present is left out rather than counted as 0 or 1). The
    background is a class like the others. This is the PASCAL VOC measure
    (Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010).

    Examples:
        >>> round(mean_iou(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]), num_classes=3), 4)  # (1/2 + 2/3) / 2
        0.5833
    """
    prediction, target = _label_maps(prediction, target, num_classes, "mean_iou")
    index = target.reshape(-1).astype(np.int64) * num_classes + prediction.reshape(-1)
    confusion = np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)
    intersection = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - intersection
    present = union > 0
    return float(np.mean(intersection[present] / union[present]))


def _depth_maps(prediction: np.ndarray, target: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    prediction, target = _same_map_shape(prediction, target, what)
    prediction, target = prediction.astype(np.float64), target.astype(np.float64)
    if not (np.all(np.isfinite(prediction)) and np.all(np.isfinite(target))):
        raise ValueError(f"{what}: NaN or infinite depth")
    return prediction, target


def depth_abs_rel(prediction: np.ndarray, target: np.ndarray) -> float:
    r"""Mean absolute relative depth error :math:`\frac{1}{N}\sum_i |\hat d_i - d_i| / d_i` (true depths > 0).

    The usual depth measure since Eigen, Puhrsch and Fergus, "Depth Map
    Prediction from a Single Image using a Multi-Scale Deep Network", NeurIPS 2014.

    Examples:
        >>> depth_abs_rel(np.array([1.5, 2.0]), np.array([1.0, 2.0]))  # (0.5 / 1 + 0 / 2) / 2
        0.25
    """
    prediction, target = _depth_maps(prediction, target, "depth_abs_rel")
    if np.any(target <= 0):
        raise ValueError("depth_abs_rel: true depths must be positive")
    return float(np.mean(np.abs(prediction - target) / target))


def depth_rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    r"""Root mean squared depth error :math:`\sqrt{\frac{1}{N}\sum_i (\hat d_i - d_i)^2}`.

    Examples:
        >>> depth_rmse(np.array([1.0, 3.0]), np.array([2.0, 2.0]))
        1.0
    """
    prediction, target = _depth_maps(prediction, target, "depth_rmse")
    return float(np.sqrt(np.mean((prediction - target) ** 2)))


# --------------------------------------------------------------------------
# parameter counts (chapters 4, 5 and 12)
# --------------------------------------------------------------------------


def count_parameters(model: Any) -> int:
    """Number of trainable scalars of a torch ``nn.Module`` or a built Keras layer/model.

    Examples:
        >>> import torch
        >>> count_parameters(torch.nn.Linear(3, 2))  # 3 * 2 weights + 2 biases
        8
    """
    if hasattr(model, "trainable_weights"):  # Keras
        return int(sum(math.prod(tuple(v.shape)) for v in model.trainable_weights))
    if hasattr(model, "parameters"):  # torch
        return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
    raise TypeError(f"expected a torch.nn.Module or a Keras layer, got {type(model).__name__}")


def mlp_parameter_count(sizes: Sequence[int]) -> int:
    """Weights and biases of an MLP with layer sizes ``(d_0, ..., d_L)``: ``sum_l (d_{l-1} + 1) d_l``.

    Examples:
        >>> mlp_parameter_count((3, 4, 2))  # (3 + 1) * 4 + (4 + 1) * 2
        26
    """
    sizes = layer_sizes(sizes, "sizes")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs an input and an output size, got {sizes}")
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def hard_sharing_parameter_count(d_in: int, hidden: Sequence[int], outputs: Mapping[str, int],
                                 head_hidden: Sequence[int] = ()) -> int:
    """Parameters of a hard-shared MLP: trunk ``(d_in, *hidden)`` plus a head
    ``(hidden[-1], *head_hidden, C_t)`` per task.

    Examples:
        >>> hard_sharing_parameter_count(5, (4,), {'a': 3, 'b': 2})  # trunk 24, heads 15 and 10
        49
    """
    hidden = layer_sizes(hidden, "hidden", allow_empty=False)
    head_hidden = layer_sizes(head_hidden, "head_hidden")
    trunk = mlp_parameter_count((positive_int(d_in, "d_in"), *hidden))
    return trunk + sum(mlp_parameter_count((hidden[-1], *head_hidden, c)) for c in check_outputs(outputs).values())


def separate_parameter_count(d_in: int, hidden: Sequence[int], outputs: Mapping[str, int],
                             head_hidden: Sequence[int] = ()) -> int:
    """Parameters of one single-task network per task (trunk ``(d_in, *hidden)`` and head
    ``(hidden[-1], *head_hidden, C_t)`` each), summed.

    Examples:
        >>> separate_parameter_count(5, (4,), {'a': 3, 'b': 2})  # (24 + 15) + (24 + 10)
        73
    """
    return sum(hard_sharing_parameter_count(d_in, hidden, {name: c}, head_hidden)
               for name, c in check_outputs(outputs).items())


def width_for_budget(d_in: int, depth: int, outputs: Mapping[str, int], budget: int,
                     head_hidden: Sequence[int] = ()) -> int:
    """The width ``H`` of a hard-shared trunk with ``depth`` hidden layers of ``H`` units
    (heads fixed by ``head_hidden``) whose parameter count
    (:func:`hard_sharing_parameter_count`) is closest to ``budget``.

    The count is increasing in ``H``, so the answer is found by bisection
    (ties go to the smaller width).

    Examples:
        >>> width_for_budget(10, 1, {'a': 1, 'b': 1}, budget=93)  # 11 H + 2 (H + 1) = 93 at H = 7
        7
    """
    depth = positive_int(depth, "depth")
    budget = positive_int(budget, "budget")
    outputs = check_outputs(outputs)

    def count(width: int) -> int:
        return hard_sharing_parameter_count(d_in, [width] * depth, outputs, head_hidden)

    low, high = 1, 1
    while count(high) < budget:
        low, high = high, high * 2
    while high - low > 1:  # invariant: count(low) < budget <= count(high), unless low == high
        middle = (low + high) // 2
        low, high = (middle, high) if count(middle) < budget else (low, middle)
    return min((low, high), key=lambda w: (abs(count(w) - budget), w))
