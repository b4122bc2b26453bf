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
from mtl_course.data.types import MultiTaskSplit, Splits
from mtl_course.metrics import count_parameters, delta_m
from mtl_course.stats import Verdict, paired_verdict

__all__ = [
    "SHARING_KINDS",
    "build_sharing_model",
    "flatten_images",
    "paired_comparison",
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
    patience: int | None = None,
) -> tuple[dict[str, float], Any]:
    """Train with ``fit`` (equal weights, Adam) and return the test metrics and the history.

    With ``validate=True`` the history records the validation metrics of every
    epoch (learning curves); sweeps turn it off to save time.

    With ``patience`` (early stopping; needs ``validate=True``), ``epochs`` is
    the maximum: training stops after ``patience`` epochs in which the mean
    over ``tasks`` of the validation metric (accuracy for classification) has
    not improved, the weights of the best epoch are restored before the test
    split is scored, and ``history.best_epoch`` holds that epoch (0-based).
    Every task's metric must be higher-is-better, like accuracy. (``fit``'s own
    ``patience`` watches the summed validation *loss* or one task's metric;
    this rule watches the mean of the metrics that are reported.)
    """
    _check_framework(mtl)
    callback = None
    if patience is not None:
        patience = positive_int(patience, "patience")
        if not validate:
            raise ValueError("early stopping (patience=...) needs validate=True")
        names = list(tasks)
        best = {"value": -np.inf, "epoch": -1, "weights": None}

        def callback(epoch: int, history: Any) -> bool:
            value = float(np.mean([history.val_metric[name][-1] for name in names]))
            seen = len(history.val_metric[names[0]]) - 1
            if value > best["value"]:
                best.update(value=value, epoch=seen, weights=_snapshot(mtl, model))
            return seen - best["epoch"] >= patience

    history = mtl.fit(model, splits.train, tasks, epochs=epochs, lr=lr, batch_size=batch_size,
                      val_data=splits.val if validate else None, seed=seed, progress=False, callback=callback)
    if patience is not None and best["weights"] is not None:
        _restore(mtl, model, best["weights"])
        history.best_epoch = best["epoch"]
    return mtl.evaluate(model, splits.test, tasks), history


def _snapshot(mtl: ModuleType, model: Any) -> Any:
    if mtl.__name__ == "mtl_course.torch":
        return {k: v.detach().clone() for k, v in model.state_dict().items()}
    return [w.copy() for w in model.get_weights()]


def _restore(mtl: ModuleType, model: Any, weights: Any) -> None:
    if mtl.__name__ == "mtl_course.torch":
        model.load_state_dict(weights)
    else:
        model.set_weights(weights)


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
    patience: int | None = None,
    float64: bool = False,
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
    the median seconds per epoch (summed over the single-task models for
    "separate"), "best_epoch": task ->
    the epoch (1-based) whose weights were scored (the last one without
    ``patience``)}``.

    With ``patience``, every model (each single-task network on its own task,
    each shared one on the mean over its tasks) is trained with early stopping
    on its mean validation accuracy and scored at its best epoch (see
    :func:`train_and_score`); ``epochs`` is then the maximum.

    ``float64=True`` (PyTorch only) trains every model in double precision
    from weights drawn by numpy (:func:`~mtl_course.torch.runtime.float64_numpy_init`): the results are then
    the same under every CPU kernel, not only on the machine that ran them.
    """
    _check_framework(mtl)
    if float64 and mtl.__name__ != "mtl_course.torch":
        raise ValueError("float64=True is for mtl_course.torch; the TensorFlow models train in float32")
    outputs = check_outputs(outputs)
    if set(outputs) != set(tasks):
        raise ValueError(f"outputs and tasks must name the same tasks, got {sorted(outputs)} and {sorted(tasks)}")
    d_in = splits.train.x.shape[1]
    if splits.train.x.ndim != 2:
        raise ValueError(f"inputs must be flat (n, features), got shape {splits.train.x.shape}; "
                         "use flatten_images first")
    results: dict[str, dict[str, Any]] = {}

    def build(sizes: Sequence[int], outs: Mapping[str, int]) -> Any:
        mtl.seed_everything(seed)
        model = build_sharing_model(mtl, "hard", d_in, sizes, outs, head_hidden=head_hidden)
        if not float64:
            return model
        from mtl_course.torch.runtime import float64_numpy_init

        return float64_numpy_init(model, seed)

    def best_epoch(history: Any) -> int:
        return (history.best_epoch if patience is not None else history.epochs - 1) + 1

    separate = {"test": {}, "parameters": 0, "val_curve": {}, "epoch_time": 0.0, "best_epoch": {}}
    for name, classes in outputs.items():
        model = build(hidden, {name: classes})
        scores, history = train_and_score(mtl, model, splits, {name: tasks[name]}, epochs, lr, batch_size, seed,
                                          validate, patience)
        separate["test"][name] = scores[name]
        separate["parameters"] += count_parameters(model)
        separate["best_epoch"][name] = best_epoch(history)
        if validate:
            separate["val_curve"][name] = history.val_metric[name]
        separate["epoch_time"] += float(np.median(history.epoch_time))
    results["separate"] = separate
    for label, trunk_sizes in shared_hidden.items():
        model = build(trunk_sizes, outputs)
        scores, history = train_and_score(mtl, model, splits, tasks, epochs, lr, batch_size, seed, validate,
                                          patience)
        results[label] = {"test": scores, "parameters": count_parameters(model),
                          "val_curve": history.val_metric, "epoch_time": float(np.median(history.epoch_time)),
                          "best_epoch": dict.fromkeys(outputs, best_epoch(history))}
    return results


def paired_comparison(runs: Mapping[int, Mapping[str, Mapping[str, Any]]], label: str,
                      reference: str = "separate", digits: int = 2) -> dict[str, Any]:
    r"""Seed-paired verdicts of the model ``label`` against ``reference`` from :func:`separate_vs_hard` runs.

    ``runs`` maps each seed to the result of :func:`separate_vs_hard` on that
    seed (same data and initial weights for every model). Every task's metric
    must be higher-is-better (accuracy). With :math:`a_{s,t}` and :math:`b_{s,t}`
    the test metrics of the two models on seed :math:`s`, returns

    - ``"delta_m"``: the per-seed :math:`\Delta_m` of ``label`` against
      ``reference`` in percent (:func:`mtl_course.metrics.delta_m`),
      :math:`100 \cdot \frac1T \sum_t (a_{s,t} - b_{s,t}) / b_{s,t}`;
    - ``"verdicts"``: ``{"delta_m": ..., task: ...}``, the
      :func:`mtl_course.stats.paired_verdict` of the per-seed :math:`\Delta_m`
      (against the reference's own :math:`\Delta_m`, which is 0 on every seed)
      and of each task's test metric (higher is better), printed with ``digits``
      significant digits.
    """
    seeds = list(runs)
    if len(seeds) < 2:
        raise ValueError(f"a paired verdict needs at least 2 seeds, got {len(seeds)}")
    missing = [s for s in seeds if label not in runs[s] or reference not in runs[s]]
    if missing:
        raise ValueError(f"seeds {missing} have no results for {label!r} or {reference!r}")
    tasks = list(runs[seeds[0]][reference]["test"])
    higher = dict.fromkeys(tasks, True)
    gains = np.array([delta_m(runs[s][label]["test"], runs[s][reference]["test"], higher) for s in seeds])
    names = (label, reference)
    verdicts: dict[str, Verdict] = {
        "delta_m": paired_verdict(gains, np.zeros(len(seeds)), names=names, lower_is_better=False, digits=digits)}
    for task in tasks:
        verdicts[task] = paired_verdict([runs[s][label]["test"][task] for s in seeds],
                                        [runs[s][reference]["test"][task] for s in seeds],
                                        names=names, lower_is_better=False, digits=digits)
    return {"delta_m": gains, "verdicts": verdicts}
