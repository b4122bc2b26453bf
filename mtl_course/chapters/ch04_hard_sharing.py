"""The experiment of chapter 4, separate networks against hard sharing, and the
model builder chapters 4 and 5 share: separate models, hard sharing, soft sharing and cross-stitch.

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

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from mtl_course.checks import check_outputs, layer_sizes, positive_int
from mtl_course.metrics import count_parameters
from mtl_course.data.types import MultiTaskSplit, Splits

__all__ = [
    "SHARING_KINDS",
    "build_sharing_model",
    "flatten_images",
    "separate_vs_hard",
]

SHARING_KINDS = ("separate", "hard", "soft_l2", "soft_trace", "cross_stitch")


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
    outputs = check_outputs(outputs)
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
# training and the experiment of chapter 4
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
    outputs = check_outputs(outputs)
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
