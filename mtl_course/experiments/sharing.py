"""Experiments of chapters 4 and 5: separate models, hard sharing, soft sharing and cross-stitch.

Every function takes the framework module as its first argument, ``mtl`` =
:mod:`mtl_course.torch` or :mod:`mtl_course.tf`, and uses only the public
names the two twins share (``mlp``, ``HardSharing``, ``SoftSharing``,
``CrossStitch``, ``seed_everything``, ``fit``, ``evaluate``). So the
chapters run the same experiment in both frameworks by passing a different
module.

Models here are multilayer perceptrons on flat inputs ``(n, d_in)``:

- ``"separate"``: one tower per task, nothing shared (a
  :class:`SoftSharing` with ``strength = 0``, whose joint training is exactly
  independent training: each tower's gradient is its own task's gradient);
- ``"hard"``: a shared trunk and one head per task (Caruana, 1997);
- ``"soft_l2"`` / ``"soft_trace"``: one tower per task coupled by the L2 or
  trace-norm penalty of :class:`SoftSharing`;
- ``"cross_stitch"``: one column per task with a cross-stitch unit after
  every hidden layer (Misra et al., CVPR 2016).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from mtl_course.core.model_config import check_task_names, layer_sizes, positive_int
from mtl_course.data.synthetic import mmoe_synthetic
from mtl_course.data.types import MultiTaskSplit, Splits

__all__ = [
    "SHARING_KINDS",
    "build_sharing_model",
    "count_parameters",
    "coupling_sweep",
    "flatten_images",
    "hard_sharing_parameter_count",
    "mlp_parameter_count",
    "mmoe_splits",
    "relatedness_sweep",
    "separate_parameter_count",
    "separate_vs_hard",
    "tower_distance",
    "train_and_score",
    "width_for_budget",
]

SHARING_KINDS = ("separate", "hard", "soft_l2", "soft_trace", "cross_stitch")


# --------------------------------------------------------------------------
# parameter counts
# --------------------------------------------------------------------------


def count_parameters(model: Any) -> int:
    """Number of trainable scalars of a torch ``nn.Module`` or a built Keras layer/model."""
    if hasattr(model, "trainable_weights"):  # Keras
        return int(sum(math.prod(tuple(v.shape)) for v in model.trainable_weights))
    if hasattr(model, "parameters"):  # torch
        return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
    raise TypeError(f"expected a torch.nn.Module or a Keras layer, got {type(model).__name__}")


def mlp_parameter_count(sizes: Sequence[int]) -> int:
    """Weights and biases of an MLP with layer sizes ``(d_0, ..., d_L)``: ``sum_l (d_{l-1} + 1) d_l``."""
    sizes = layer_sizes(sizes, "sizes")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs an input and an output size, got {sizes}")
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def _outputs(outputs: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(outputs, Mapping):
        raise TypeError(f"outputs must be a mapping task name -> output size, got {type(outputs).__name__}")
    check_task_names(list(outputs), "outputs")
    return {name: positive_int(size, f"outputs[{name!r}]") for name, size in outputs.items()}


def hard_sharing_parameter_count(d_in: int, hidden: Sequence[int], outputs: Mapping[str, int],
                                 head_hidden: Sequence[int] = ()) -> int:
    """Parameters of a hard-shared MLP: trunk ``(d_in, *hidden)`` plus a head
    ``(hidden[-1], *head_hidden, C_t)`` per task."""
    hidden = layer_sizes(hidden, "hidden", allow_empty=False)
    head_hidden = layer_sizes(head_hidden, "head_hidden")
    trunk = mlp_parameter_count((positive_int(d_in, "d_in"), *hidden))
    return trunk + sum(mlp_parameter_count((hidden[-1], *head_hidden, c)) for c in _outputs(outputs).values())


def separate_parameter_count(d_in: int, hidden: Sequence[int], outputs: Mapping[str, int],
                             head_hidden: Sequence[int] = ()) -> int:
    """Parameters of one single-task network per task (trunk ``(d_in, *hidden)`` and head
    ``(hidden[-1], *head_hidden, C_t)`` each), summed."""
    return sum(hard_sharing_parameter_count(d_in, hidden, {name: c}, head_hidden)
               for name, c in _outputs(outputs).items())


def width_for_budget(d_in: int, depth: int, outputs: Mapping[str, int], budget: int,
                     head_hidden: Sequence[int] = ()) -> int:
    """The width ``H`` of a hard-shared trunk with ``depth`` hidden layers of ``H`` units
    (heads fixed by ``head_hidden``) whose parameter count
    (:func:`hard_sharing_parameter_count`) is closest to ``budget``.

    The count is increasing in ``H``, so the answer is found by bisection
    (ties go to the smaller width).
    """
    depth = positive_int(depth, "depth")
    budget = positive_int(budget, "budget")
    outputs = _outputs(outputs)

    def count(width: int) -> int:
        return hard_sharing_parameter_count(d_in, [width] * depth, outputs, head_hidden)

    low, high = 1, 1
    while count(high) < budget:
        low, high = high, high * 2
    while high - low > 1:  # invariant: count(low) < budget <= count(high), unless low == high
        middle = (low + high) // 2
        low, high = (middle, high) if count(middle) < budget else (low, middle)
    return min((low, high), key=lambda w: (abs(count(w) - budget), w))


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------


def build_sharing_model(
    mtl: ModuleType,
    kind: str,
    d_in: int,
    hidden: Sequence[int],
    outputs: Mapping[str, int],
    strength: float = 1e-2,
    alpha_self: float = 0.9,
    head_hidden: Sequence[int] = (),
) -> Any:
    """A multi-task MLP of the given ``kind`` (one of :data:`SHARING_KINDS`) in framework ``mtl``.

    Every task's path is the MLP ``(d_in, *hidden, C_t)`` with ReLU between
    layers; ``kind`` says what is shared. For ``"hard"`` the trunk is
    ``(d_in, *hidden)`` and each head ``(hidden[-1], *head_hidden, C_t)``
    (``head_hidden`` is ignored by the other kinds). ``strength`` is the soft-sharing
    penalty weight (ignored by the other kinds), ``alpha_self`` the initial
    diagonal of the cross-stitch matrices.
    Seed the framework first (``mtl.seed_everything``) for a reproducible initialization.
    """
    if kind not in SHARING_KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {SHARING_KINDS}")
    d_in = positive_int(d_in, "d_in")
    hidden = layer_sizes(hidden, "hidden", allow_empty=False)
    outputs = _outputs(outputs)
    if kind == "hard":
        trunk = mtl.mlp((d_in, *hidden), output_activation=True)
        head_hidden = layer_sizes(head_hidden, "head_hidden")
        return mtl.HardSharing(trunk, {name: mtl.mlp((hidden[-1], *head_hidden, c)) for name, c in outputs.items()})
    if kind == "cross_stitch":
        sizes = (d_in, *hidden)
        towers = {
            name: [mtl.mlp(pair, output_activation=True) for pair in zip(sizes[:-1], sizes[1:])]
            + [mtl.mlp((hidden[-1], c))]
            for name, c in outputs.items()
        }
        return mtl.CrossStitch(towers, alpha_self=alpha_self)
    if len(set(outputs.values())) != 1:
        raise ValueError(f"{kind!r} is built from towers of one shape, but the output sizes differ: {outputs}. "
                         "For separate models of different shapes, train one single-task model per task.")
    towers = {name: mtl.mlp((d_in, *hidden, c)) for name, c in outputs.items()}
    if kind == "separate":
        return mtl.SoftSharing(towers, coupling="l2", strength=0.0)
    coupling = "l2" if kind == "soft_l2" else "trace_norm"
    return mtl.SoftSharing(towers, coupling=coupling, strength=strength)


# --------------------------------------------------------------------------
# training and the experiments of chapter 5
# --------------------------------------------------------------------------


def train_and_score(
    mtl: ModuleType,
    model: Any,
    splits: Splits,
    tasks: Mapping[str, Any],
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    validate: bool = True,
) -> tuple[dict[str, float], Any]:
    """Train with ``fit`` (equal weights, Adam) and return the test metrics and the history.

    With ``validate=True`` the history records the validation metrics of every
    epoch (learning curves); sweeps turn it off to save time.
    """
    _check_framework(mtl)
    history = mtl.fit(model, splits.train, tasks, epochs=epochs, lr=lr, batch_size=batch_size,
                      val_data=splits.val if validate else None, seed=seed, progress=False)
    return mtl.evaluate(model, splits.test, tasks), history


def _check_framework(mtl: object) -> None:
    if not isinstance(mtl, ModuleType) or mtl.__name__ not in ("mtl_course.torch", "mtl_course.tf"):
        raise TypeError(f"mtl must be the module mtl_course.torch or mtl_course.tf, got {mtl!r}")


def mmoe_splits(correlation: float, seed: int, n_train: int, n_val: int, n_test: int, dim: int,
                num_sin: int = 10) -> Splits:
    """Train / val / test splits of :func:`mtl_course.data.mmoe_synthetic` (one draw, cut in three).

    For a fixed ``seed`` only task 2's weights depend on ``correlation``, so a
    sweep over ``correlation`` changes nothing else.
    """
    n_train, n_val, n_test = (positive_int(v, name) for v, name in
                              ((n_train, "n_train"), (n_val, "n_val"), (n_test, "n_test")))
    data: MultiTaskSplit = mmoe_synthetic(n=n_train + n_val + n_test, dim=dim, correlation=correlation, seed=seed,
                                          num_sin=num_sin)
    cuts = np.cumsum([0, n_train, n_val, n_test])
    return Splits(*(data.subset(np.arange(a, b)) for a, b in zip(cuts[:-1], cuts[1:])))


def _run(mtl: ModuleType, kind: str, splits: Splits, seed: int, hidden: Sequence[int], epochs: int,
         lr: float, batch_size: int, strength: float) -> dict[str, float]:
    mtl.seed_everything(seed)
    outputs = {name: 1 for name in splits.train.task_names}
    model = build_sharing_model(mtl, kind, splits.train.x.shape[1], hidden, outputs, strength=strength)
    scores, _ = train_and_score(mtl, model, splits, {name: "mse" for name in outputs}, epochs, lr, batch_size, seed,
                                validate=False)
    return scores


def relatedness_sweep(
    mtl: ModuleType,
    correlations: Sequence[float],
    kinds: Sequence[str] = ("separate", "hard", "soft_l2", "cross_stitch"),
    seeds: Sequence[int] = (0, 1, 2),
    n_train: int = 500,
    n_val: int = 250,
    n_test: int = 1000,
    dim: int = 16,
    hidden: Sequence[int] = (32, 16),
    epochs: int = 30,
    lr: float = 3e-3,
    batch_size: int = 64,
    strength: float = 1e-2,
    num_sin: int = 10,
) -> list[dict[str, Any]]:
    """Test MSE of every model kind on :func:`mmoe_synthetic` tasks, for each correlation and seed.

    The seed sets both the data (weights, inputs, noise) and the model's
    initialization. Returns one row per (correlation, seed, kind):
    ``{"correlation", "seed", "kind", "task1", "task2", "mean"}``
    (``mean`` is the average of the two test MSEs).
    """
    if not correlations or not seeds or not kinds:
        raise ValueError("correlations, seeds and kinds must be non-empty")
    rows = []
    for correlation in correlations:
        for seed in seeds:
            splits = mmoe_splits(correlation, seed, n_train, n_val, n_test, dim, num_sin)
            for kind in kinds:
                scores = _run(mtl, kind, splits, seed, hidden, epochs, lr, batch_size, strength)
                rows.append({"correlation": float(correlation), "seed": int(seed), "kind": kind, **scores,
                             "mean": float(np.mean(list(scores.values())))})
    return rows


def coupling_sweep(
    mtl: ModuleType,
    strengths: Sequence[float],
    correlation: float,
    seeds: Sequence[int] = (0, 1, 2),
    coupling: str = "soft_l2",
    n_train: int = 500,
    n_val: int = 250,
    n_test: int = 1000,
    dim: int = 16,
    hidden: Sequence[int] = (32, 16),
    epochs: int = 30,
    lr: float = 3e-3,
    batch_size: int = 64,
    num_sin: int = 10,
) -> list[dict[str, Any]]:
    """Test MSE of soft sharing (``coupling`` = "soft_l2" or "soft_trace") for each penalty strength.

    Returns one row per (strength, seed): ``{"strength", "seed", "task1",
    "task2", "mean", "distance"}`` where ``distance`` is the L2 distance between
    the two towers' parameters after training (``sqrt`` of the unscaled L2
    penalty), which shrinks towards 0 (hard sharing) as the strength grows.
    """
    if coupling not in ("soft_l2", "soft_trace"):
        raise ValueError(f"coupling must be 'soft_l2' or 'soft_trace', got {coupling!r}")
    if not strengths or not seeds:
        raise ValueError("strengths and seeds must be non-empty")
    rows = []
    for seed in seeds:
        splits = mmoe_splits(correlation, seed, n_train, n_val, n_test, dim, num_sin)
        outputs = {name: 1 for name in splits.train.task_names}
        tasks = {name: "mse" for name in outputs}
        for strength in strengths:
            mtl.seed_everything(seed)
            model = build_sharing_model(mtl, coupling, dim, hidden, outputs, strength=strength)
            scores, _ = train_and_score(mtl, model, splits, tasks, epochs, lr, batch_size, seed, validate=False)
            rows.append({"strength": float(strength), "seed": int(seed), **scores,
                         "mean": float(np.mean(list(scores.values()))), "distance": tower_distance(model)})
    return rows


def tower_distance(model: Any) -> float:
    """Euclidean distance between the flattened parameters of the towers of a two-task soft-sharing model."""
    names = model.task_names
    if len(names) != 2:
        raise ValueError(f"tower_distance needs exactly two towers, got {len(names)}")
    flat = [np.concatenate([np.asarray(_numpy(p)).ravel() for p in model.task_parameters(n)]) for n in names]
    return float(np.linalg.norm(flat[0] - flat[1]))


def _numpy(parameter: Any) -> np.ndarray:
    if hasattr(parameter, "detach"):  # torch
        return parameter.detach().cpu().numpy()
    return np.asarray(parameter)


# --------------------------------------------------------------------------
# the experiment of chapter 4
# --------------------------------------------------------------------------


def flatten_images(splits: Splits) -> Splits:
    """The same splits with every image flattened to a vector: ``(n, h, w)`` -> ``(n, h * w)``."""
    return Splits(*(MultiTaskSplit(s.x.reshape(len(s), -1), dict(s.y)) for s in splits))


def separate_vs_hard(
    mtl: ModuleType,
    splits: Splits,
    outputs: Mapping[str, int],
    tasks: Mapping[str, Any],
    hidden: Sequence[int],
    shared_hidden: Mapping[str, Sequence[int]],
    epochs: int,
    head_hidden: Sequence[int] = (),
    seed: int = 0,
    lr: float = 1e-3,
    batch_size: int = 64,
    validate: bool = True,
) -> dict[str, dict[str, Any]]:
    """Train one single-task network per task, and hard-shared networks.

    A single-task network is the one-task case of a hard-shared one: trunk
    ``(d_in, *hidden)`` and head ``(hidden[-1], *head_hidden, C_t)``.
    ``shared_hidden`` names the hard-shared variants and gives their trunk
    sizes, e.g. ``{"hard, same budget": (140,), "hard, same width": (64,)}``;
    their heads are the same as the single-task ones.
    Every model is initialized after ``mtl.seed_everything(seed)`` and sees
    the same mini-batches. Returns, for ``"separate"`` and each variant,
    ``{"test": task -> test metric, "parameters": int, "val_curve": task ->
    validation metric per epoch (empty with ``validate=False``), "epoch_time":
    seconds per epoch (summed over the single-task models for "separate")}``.
    """
    outputs = _outputs(outputs)
    if set(outputs) != set(tasks):
        raise ValueError(f"outputs and tasks must name the same tasks, got {sorted(outputs)} and {sorted(tasks)}")
    d_in = splits.train.x.shape[1]
    if splits.train.x.ndim != 2:
        raise ValueError(f"inputs must be flat (n, features), got shape {splits.train.x.shape}; "
                         "use flatten_images first")
    results: dict[str, dict[str, Any]] = {}
    separate = {"test": {}, "parameters": 0, "val_curve": {}, "epoch_time": np.zeros(epochs)}
    for name, classes in outputs.items():
        mtl.seed_everything(seed)
        model = build_sharing_model(mtl, "hard", d_in, hidden, {name: classes}, head_hidden=head_hidden)
        scores, history = train_and_score(mtl, model, splits, {name: tasks[name]}, epochs, lr, batch_size, seed,
                                          validate)
        separate["test"][name] = scores[name]
        separate["parameters"] += count_parameters(model)
        if validate:
            separate["val_curve"][name] = history.val_metric[name]
        separate["epoch_time"] += np.asarray(history.epoch_time)
    results["separate"] = separate
    for label, trunk_sizes in shared_hidden.items():
        mtl.seed_everything(seed)
        model = build_sharing_model(mtl, "hard", d_in, trunk_sizes, outputs, head_hidden=head_hidden)
        scores, history = train_and_score(mtl, model, splits, tasks, epochs, lr, batch_size, seed, validate)
        results[label] = {"test": scores, "parameters": count_parameters(model),
                          "val_curve": history.val_metric, "epoch_time": np.asarray(history.epoch_time)}
    return results
