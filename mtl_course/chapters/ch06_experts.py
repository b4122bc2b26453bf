"""The experiments of chapter 6, "Mixture of experts", in either framework.

* :func:`correlation_sweep` - the synthetic experiment of Ma, Zhao, Yi, Chen,
  Hong and Chi, "Modeling Task Relationships in Multi-task Learning with
  Multi-gate Mixture-of-Experts", KDD 2018 (section 3): shared-bottom, one-gate
  MoE (OMoE), MMoE and PLE trained on :func:`mtl_course.data.mmoe_synthetic` as
  the task correlation falls, each to convergence (early stopping on a
  validation split), on paired seeds, with verdicts from
  :func:`mtl_course.stats.paired_verdict`.
* :func:`gate_weights`, :func:`mean_gate_weights`, :func:`gate_disagreement`
  - how each task's gate uses the experts, and how differently two tasks do.
* :func:`train_twins` - one model trained in PyTorch and in TensorFlow from
  the same initial weights (the chapter's framework comparison).
* :func:`esmm_vs_click_only` - ESMM (Ma et al., SIGIR 2018) against the
  conventional post-click conversion model trained on clicked impressions only,
  scored on the entire space of impressions.

Every driver with a framework takes the framework module ``mtl``
(:mod:`mtl_course.torch` or :mod:`mtl_course.tf`) as its first argument and uses
its twin models and training loop with the same arguments, so the chapter runs
one experiment in both frameworks. Results are plain numpy arrays.

The protocol (the course's DESIGN section 6): every model gets the same
optimizer, learning rate and batch size (no model is tuned more than another),
trains until the summed validation loss has not improved for ``patience``
epochs and keeps its best epoch's weights; seed ``s`` gives every model the
same data, and a comparison is a paired verdict over the seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from mtl_course.data.recsys import click_conversion
from mtl_course.data.synthetic import mmoe_synthetic
from mtl_course.data.types import MultiTaskSplit, Splits
from mtl_course.metrics import roc_auc
from mtl_course.stats import Verdict, paired_verdict

__all__ = [
    "MOE_MODELS",
    "CorrelationSweep",
    "ESMMComparison",
    "GateStudy",
    "correlation_sweep",
    "esmm_vs_click_only",
    "gate_disagreement",
    "gate_study",
    "gate_weights",
    "mean_gate_weights",
    "moe_model",
    "relative_mse",
    "synthetic_splits",
    "train_on_synthetic",
    "train_twins",
]

MOE_MODELS = ("shared-bottom", "OMoE", "MMoE", "PLE")
"""The model kinds :func:`moe_model` builds."""

_TASKS = ("task1", "task2")


def _check_framework(mtl: object) -> None:
    if not isinstance(mtl, ModuleType) or mtl.__name__ not in ("mtl_course.torch", "mtl_course.tf"):
        raise TypeError(f"mtl must be the module mtl_course.torch or mtl_course.tf, got {mtl!r}")


def _precision(mtl: ModuleType, model: Any, float64: bool, seed: int) -> Any:
    """The PyTorch ``model`` in float64 when asked, its weights drawn again by numpy
    (:func:`~mtl_course.torch.runtime.float64_numpy_init`: the same start on every CPU)."""
    if not (float64 and mtl.__name__ == "mtl_course.torch"):
        return model
    from mtl_course.torch.runtime import float64_numpy_init

    return float64_numpy_init(model, seed)


def moe_model(mtl: ModuleType, kind: str, input_dim: int, num_experts: int = 4, expert_hidden: int = 8,
              tower_hidden: int = 8, tasks: tuple[str, ...] = _TASKS) -> Any:
    """One of the models compared in the MMoE paper's synthetic experiment (plus PLE).

    Experts are one ``relu`` layer of ``expert_hidden`` units and towers have
    one hidden layer of ``tower_hidden`` units (this package's small sizes):

    - ``"shared-bottom"``: :class:`HardSharing` whose bottom is one layer of
      ``num_experts * expert_hidden`` units, as many as all experts together;
    - ``"OMoE"``: :class:`MMoE` with one gate shared by all tasks;
    - ``"MMoE"``: :class:`MMoE` with one gate per task;
    - ``"PLE"``: one-level :class:`PLE` (CGC) with one expert per task and
      ``num_experts - len(tasks)`` shared experts (at least one), so the
      expert count matches the MoE models.
    """
    _check_framework(mtl)
    width = num_experts * expert_hidden
    if kind == "shared-bottom":
        trunk = mtl.mlp((input_dim, width), output_activation=True)
        return mtl.HardSharing(trunk, {t: mtl.mlp((width, tower_hidden, 1)) for t in tasks})
    if kind in ("OMoE", "MMoE"):
        return mtl.MMoE(input_dim, num_experts, expert_hidden, tasks, tower_hidden=tower_hidden,
                        num_gates=1 if kind == "OMoE" else None)
    if kind == "PLE":  # one own expert per task; the rest are shared
        shared = max(num_experts - len(tasks), 1)
        return mtl.PLE(input_dim, tasks, num_shared_experts=shared, num_task_experts=1,
                       expert_hidden=expert_hidden, tower_hidden=tower_hidden)
    raise ValueError(f"unknown model kind {kind!r}; use one of {MOE_MODELS}")


def synthetic_splits(correlation: float, seed: int, n_train: int = 2000, n_val: int = 1000, n_test: int = 2000,
                     dim: int = 16) -> tuple[MultiTaskSplit, MultiTaskSplit, MultiTaskSplit]:
    """Train, validation and test splits of ``mmoe_synthetic(correlation, seed)``, targets standardized.

    Each task's targets are shifted and scaled by the training mean and
    standard deviation: the sines give the raw targets a mean of several
    units, which the towers' biases would otherwise spend many steps
    learning. A ratio MSE / variance (as in :class:`CorrelationSweep`) is
    unchanged by it.
    """
    if min(n_train, n_val, n_test) < 2:
        raise ValueError(f"each split needs at least 2 rows, got n_train={n_train}, n_val={n_val}, n_test={n_test}")
    data = mmoe_synthetic(n=n_train + n_val + n_test, dim=dim, correlation=correlation, seed=seed)
    scaled = {}
    for t in _TASKS:
        head = data.y[t][:n_train]
        scaled[t] = ((data.y[t] - head.mean()) / head.std()).astype(np.float32)
    data = MultiTaskSplit(data.x, scaled)
    ends = np.cumsum([n_train, n_val, n_test])
    return (data.subset(slice(0, ends[0])), data.subset(slice(ends[0], ends[1])),
            data.subset(slice(ends[1], ends[2])))


def relative_mse(predictions: dict[str, np.ndarray], test: MultiTaskSplit) -> dict[str, float]:
    """Each task's test MSE divided by the variance of its test targets (``1 - R^2``).

    Predicting the test mean scores 1, a perfect prediction 0. Predictions of
    shape ``(n, 1)`` are accepted for targets of shape ``(n,)``.
    """
    out = {}
    for t in test.task_names:
        if t not in predictions:
            raise ValueError(f"no predictions for task {t!r} (got {sorted(predictions)})")
        y = test.y[t].astype(np.float64)
        pred = np.asarray(predictions[t], dtype=np.float64)
        if pred.size != y.size:
            raise ValueError(f"task {t!r}: {pred.size} predictions for {y.size} targets")
        variance = float(np.var(y))
        if not variance > 0:
            raise ValueError(f"task {t!r}: the test targets are constant, so the relative MSE is undefined")
        out[t] = float(np.mean((pred.reshape(y.shape) - y) ** 2) / variance)
    return out


def train_on_synthetic(mtl: ModuleType, kind: str, correlation: float, seed: int, n_train: int = 2000,
                       n_val: int = 1000, n_test: int = 2000, dim: int = 16, max_epochs: int = 200,
                       patience: int | None = 10, batch_size: int = 500, lr: float = 2e-2, num_experts: int = 4,
                       expert_hidden: int = 8, tower_hidden: int = 8, data_seed: int | None = None,
                       float64: bool = True) -> tuple[Any, Any, MultiTaskSplit]:
    """Train one :func:`moe_model` on :func:`synthetic_splits` with Adam and equal weights.

    Training stops when the summed validation MSE has not improved for
    ``patience`` epochs (at most ``max_epochs``) and keeps the best epoch's
    weights (``History.best_epoch``); ``patience=None`` trains all
    ``max_epochs``. ``data_seed`` (default: ``seed``) sets the data: the
    weight directions, the sines' parameters and the inputs. ``seed`` sets the
    initialization and the batch order. ``float64`` (PyTorch only; the
    TensorFlow models stay float32) trains in double precision: a long run of
    float32 Adam steps amplifies the last-bit differences between CPU kernels
    into differences in the printed digits, double precision keeps them far
    below. Returns ``(model, history, test split)``.
    """
    _check_framework(mtl)
    train, val, test = synthetic_splits(correlation, seed if data_seed is None else data_seed, n_train, n_val,
                                        n_test, dim)
    mtl.seed_everything(seed)
    model = _precision(mtl, moe_model(mtl, kind, dim, num_experts, expert_hidden, tower_hidden), float64, seed)
    history = mtl.fit(model, train, {t: "mse" for t in _TASKS}, epochs=max_epochs, batch_size=batch_size,
                      lr=lr, seed=seed, progress=False, val_data=val if patience is not None else None,
                      patience=patience)
    return model, history, test


def train_twins(kind: str, correlation: float, seed: int, epochs: int = 10, batch_size: int = 500,
                lr: float = 2e-2, n_train: int = 2000, n_test: int = 2000, dim: int = 16, num_experts: int = 4,
                expert_hidden: int = 8, tower_hidden: int = 8) -> dict[str, dict[str, Any]]:
    """The same model trained in PyTorch and in TensorFlow from the same initial weights.

    The PyTorch model is initialized with ``seed``, its weights are copied into
    the Keras twin (:func:`mtl_course.parity.copy_torch_to_tf`), and both are
    trained by their framework's ``fit`` on the same batches. Returns, per
    framework (``"torch"``, ``"tf"``), the test ``"relative_mse"`` per task,
    the last epoch's ``"train_loss"`` per task and, for MMoE/OMoE/PLE, the
    ``"gates"`` of :func:`mean_gate_weights`.
    """
    import mtl_course.tf as mtl_tf
    import mtl_course.torch as mtl_torch
    from mtl_course.parity import copy_torch_to_tf

    train, _, test = synthetic_splits(correlation, seed, n_train, 2, n_test, dim)
    frameworks = {"torch": mtl_torch, "tf": mtl_tf}
    models = {}
    for name, mtl in frameworks.items():
        mtl.seed_everything(seed)
        models[name] = moe_model(mtl, kind, dim, num_experts, expert_hidden, tower_hidden)
    models["tf"](train.x[:1])  # build the Keras model before copying into it
    copy_torch_to_tf(models["torch"], models["tf"])
    results = {}
    for name, model in models.items():
        mtl = frameworks[name]
        history = mtl.fit(model, train, {t: "mse" for t in _TASKS}, epochs=epochs, batch_size=batch_size,
                          lr=lr, seed=seed, progress=False)
        result = {"relative_mse": relative_mse(mtl.predict(model, test.x), test),
                  "train_loss": {t: history.train_loss[t][-1] for t in _TASKS}}
        if kind != "shared-bottom":
            result["gates"] = mean_gate_weights(model, test.x)
        results[name] = result
    return results


@dataclass(frozen=True)
class CorrelationSweep:
    """Results of :func:`correlation_sweep`.

    Attributes:
        models, correlations, seeds: the axes of the arrays.
        relative_mse: test MSE divided by the variance of the test targets
            (``1 - R^2``; 1 = predicting the mean) of each model at its best
            validation epoch, shape ``(model, correlation, seed, task)``.
        val_curve: validation MSE per epoch, averaged over the two tasks,
            shape ``(model, correlation, seed, epoch)``; NaN after training ended.
        best_epoch: the epoch (from 1) whose weights early stopping kept,
            ``(model, correlation, seed)``.
        max_epochs: the cap on training epochs; a run whose best epoch is the
            cap may not have converged.
    """

    models: tuple[str, ...]
    correlations: tuple[float, ...]
    seeds: tuple[int, ...]
    relative_mse: np.ndarray
    val_curve: np.ndarray
    best_epoch: np.ndarray
    max_epochs: int

    def task_mean(self) -> np.ndarray:
        """Relative MSE averaged over the tasks, ``(model, correlation, seed)``."""
        return self.relative_mse.mean(axis=-1)

    def mean(self) -> np.ndarray:
        """Mean over seeds of :meth:`task_mean`, ``(model, correlation)``."""
        return self.task_mean().mean(axis=-1)

    def std(self) -> np.ndarray:
        """Standard deviation over seeds of :meth:`task_mean`, ``(model, correlation)``."""
        return self.task_mean().std(axis=-1)

    def scores(self, model: str, correlation: float) -> np.ndarray:
        """:meth:`task_mean` of one model at one correlation, one score per seed."""
        if model not in self.models:
            raise ValueError(f"unknown model {model!r}; the sweep has {self.models}")
        if float(correlation) not in self.correlations:
            raise ValueError(f"unknown correlation {correlation!r}; the sweep has {self.correlations}")
        return self.task_mean()[self.models.index(model), self.correlations.index(float(correlation))]

    def verdict(self, a: str, b: str, correlation: float, digits: int = 2) -> Verdict:
        """:func:`~mtl_course.stats.paired_verdict` of models ``a`` and ``b`` at one correlation (lower is better)."""
        return paired_verdict(self.scores(a, correlation), self.scores(b, correlation), names=(a, b), digits=digits)

    def drift_verdict(self, model: str, high: float, low: float, digits: int = 2) -> Verdict:
        """One model at two correlations, paired by seed (for a seed only task 2's weights differ)."""
        return paired_verdict(self.scores(model, high), self.scores(model, low),
                              names=(f"{model} at p = {high:g}", f"{model} at p = {low:g}"), digits=digits)

    def table(self, digits: int = 3) -> str:
        """Mean +- std over seeds, one row per model, one column per correlation."""
        header = "model          " + "".join(f"  corr {c:<12.2f}" for c in self.correlations)
        rows = [header]
        for name, means, stds in zip(self.models, self.mean(), self.std()):
            cells = "".join(f"  {m:.{digits}f} +- {s:.{digits}f}  " for m, s in zip(means, stds))
            rows.append(f"{name:15s}{cells}")
        return "\n".join(rows)


def correlation_sweep(mtl: ModuleType, correlations: tuple[float, ...] = (1.0, 0.5, 0.0),
                      seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
                      models: tuple[str, ...] = ("shared-bottom", "OMoE", "MMoE", "PLE"), n_train: int = 2000,
                      n_val: int = 1000, n_test: int = 2000, dim: int = 16, max_epochs: int = 200,
                      patience: int = 10, batch_size: int = 500, lr: float = 2e-2,
                      float64: bool = True) -> CorrelationSweep:
    """Train every model on every correlation with every seed; score on test data.

    The MMoE paper's synthetic experiment at small scale: for each seed the
    data differ only in task 2's weight vector as the correlation changes (see
    :func:`mtl_course.data.mmoe_synthetic`), and every model kind starts from
    the initialization of ``mtl.seed_everything(seed)``. Every model gets the
    same optimizer (Adam), ``lr``, ``batch_size`` and early stopping on the
    summed validation MSE (``patience``, at most ``max_epochs``), as
    :func:`train_on_synthetic`. In PyTorch all runs of one model kind are
    trained at once by :func:`mtl_course.chapters.ch05_soft_sharing.fit_stacked`
    (``torch.func.vmap``; the same updates as ``mtl.fit``, model by model); in
    TensorFlow one by one with ``mtl.fit``. ``float64``: see :func:`train_on_synthetic`.
    """
    _check_framework(mtl)
    if not correlations or not seeds or not models:
        raise ValueError("correlations, seeds and models must each be non-empty")
    unknown = [m for m in models if m not in MOE_MODELS]
    if unknown:
        raise ValueError(f"unknown model kind(s) {unknown}; use names from {MOE_MODELS}")
    runs = [(float(p), int(s)) for p in correlations for s in seeds]
    splits = [Splits(*synthetic_splits(p, s, n_train, n_val, n_test, dim)) for p, s in runs]
    variance = np.array([[float(np.var(d.test.y[t].astype(np.float64))) for t in _TASKS] for d in splits])
    shape = (len(models), len(correlations), len(seeds))
    relative = np.empty((len(models), len(runs), len(_TASKS)))
    best = np.empty((len(models), len(runs)), dtype=int)
    curves: list[list[np.ndarray]] = []
    for m, kind in enumerate(models):
        nets = []
        for _, s in runs:
            mtl.seed_everything(s)
            nets.append(_precision(mtl, moe_model(mtl, kind, dim), float64, s))
        if mtl.__name__ == "mtl_course.torch":
            from mtl_course.chapters.ch05_soft_sharing import fit_stacked

            if float64:  # fit_stacked feeds float32 inputs: cast them inside the model
                nets = [_with_double_inputs(net) for net in nets]
            fitted = fit_stacked(nets, splits, [s for _, s in runs], lr=lr, batch_size=batch_size,
                                 max_epochs=max_epochs, patience=patience)
            relative[m] = fitted.test / variance
            best[m] = fitted.best_epoch
            curves.append(list(fitted.val_curve))
            continue
        kind_curves = []
        for r, (net, data, (_, s)) in enumerate(zip(nets, splits, runs)):
            history = mtl.fit(net, data.train, {t: "mse" for t in _TASKS}, epochs=max_epochs, batch_size=batch_size,
                              lr=lr, seed=s, progress=False, val_data=data.val, patience=patience)
            scores = relative_mse(mtl.predict(net, data.test.x), data.test)
            relative[m, r] = [scores[t] for t in _TASKS]
            best[m, r] = history.best_epoch + 1
            kind_curves.append(np.mean([history.val_loss[t] for t in _TASKS], axis=0))
        curves.append(kind_curves)
    length = max(len(c) for kind_curves in curves for c in kind_curves)
    padded = np.full((len(models), len(runs), length), np.nan)
    for m, kind_curves in enumerate(curves):
        for r, curve in enumerate(kind_curves):
            padded[m, r, :len(curve)] = curve
    return CorrelationSweep(tuple(models), tuple(float(c) for c in correlations), tuple(int(s) for s in seeds),
                            relative.reshape(*shape, len(_TASKS)), padded.reshape(*shape, length),
                            best.reshape(shape), int(max_epochs))


def _with_double_inputs(model: Any) -> Any:
    """The float64 PyTorch ``model`` behind a module that casts its (float32) inputs to float64."""
    import torch

    class DoubleInputs(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.model = inner

        def forward(self, x: Any) -> Any:
            return self.model(x.double())

    return DoubleInputs(model)


@dataclass(frozen=True)
class GateStudy:
    """Results of :func:`gate_study`.

    Attributes:
        kind, correlations, seeds: the model kind and the axes.
        disagreement: :func:`gate_disagreement` of each trained model on its
            test inputs, ``(correlation, seed)``.
        examples: ``(correlation, seed) -> (model, test split)`` for the first seed.
    """

    kind: str
    correlations: tuple[float, ...]
    seeds: tuple[int, ...]
    disagreement: np.ndarray
    examples: dict

    def verdict(self, high: float, low: float, digits: int = 2) -> Verdict:
        """Paired verdict: is the gate disagreement at ``low`` correlation larger than at ``high``?

        Reads "p = low beats p = high" when the disagreement at ``low`` is
        larger on the paired interval (``lower_is_better=False``).
        """
        a = self.disagreement[self.correlations.index(float(low))]
        b = self.disagreement[self.correlations.index(float(high))]
        return paired_verdict(a, b, names=(f"p = {low:g}", f"p = {high:g}"), lower_is_better=False, digits=digits)


def gate_study(mtl: ModuleType, correlations: tuple[float, ...] = (1.0, 0.0), seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
               kind: str = "MMoE", **training: Any) -> GateStudy:
    """Train ``kind`` with :func:`train_on_synthetic` on every correlation and seed; measure its gates.

    ``training`` goes to :func:`train_on_synthetic` (the sweep's defaults:
    early stopping on validation).
    """
    _check_framework(mtl)
    if kind not in ("OMoE", "MMoE"):
        raise ValueError(f"gate_study compares gates over common experts: kind must be 'OMoE' or 'MMoE', got {kind!r}")
    if not correlations or not seeds:
        raise ValueError("correlations and seeds must be non-empty")
    disagreement = np.empty((len(correlations), len(seeds)))
    examples = {}
    for i, p in enumerate(correlations):
        for j, s in enumerate(seeds):
            model, _, test = train_on_synthetic(mtl, kind, p, s, **training)
            disagreement[i, j] = gate_disagreement(gate_weights(model, test.x))
            if j == 0:
                examples[float(p), int(s)] = (model, test)
    return GateStudy(kind, tuple(float(p) for p in correlations), tuple(int(s) for s in seeds), disagreement, examples)


def gate_weights(model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """Each task's gate weights on the inputs ``x``: task -> ``(n, num_experts)`` numpy array.

    Works for the :class:`MMoE` and :class:`PLE` models of both frameworks
    (anything with ``gates(x) -> {task: (batch, experts)}``). For PLE the
    experts are the task's own ones first, then the shared ones. Rows sum to 1.
    """
    if not callable(getattr(model, "gates", None)):
        raise TypeError(f"{type(model).__name__} has no gates(x); use an MMoE or PLE model")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if type(model).__module__.startswith("mtl_course.torch"):
        import torch

        param = next(iter(model.parameters()))
        with torch.no_grad():
            gates = model.gates(torch.as_tensor(x, device=param.device, dtype=param.dtype))
        return {name: g.double().cpu().numpy() for name, g in gates.items()}
    return {name: np.asarray(g, dtype=np.float64) for name, g in model.gates(x).items()}


def mean_gate_weights(model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`gate_weights` averaged over the inputs: task -> ``(num_experts,)``, summing to 1."""
    return {name: g.mean(axis=0) for name, g in gate_weights(model, x).items()}


def gate_disagreement(weights: dict[str, np.ndarray]) -> float:
    r"""How differently the tasks' gates mix the same experts, in ``[0, 1]``.

    The total variation distance between two tasks' gate distributions,
    :math:`\tfrac12 \lVert g^j(x) - g^k(x) \rVert_1`, averaged over the inputs
    (the rows of ``weights[task]``, from :func:`gate_weights`) and over the
    pairs of tasks. 0: every task mixes the experts alike (always the case
    with one gate); 1: the tasks use disjoint experts. Only meaningful when
    all tasks' gates range over the same experts (MMoE, not PLE).
    """
    arrays = list(weights.values())
    if len(arrays) < 2:
        raise ValueError(f"gate_disagreement needs at least two tasks, got {len(arrays)}")
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"the tasks' gates must range over the same experts, got shapes {[a.shape for a in arrays]}")
    pairs = [(j, k) for j in range(len(arrays)) for k in range(j + 1, len(arrays))]
    return float(np.mean([0.5 * np.abs(arrays[j] - arrays[k]).sum(axis=-1).mean() for j, k in pairs]))


@dataclass(frozen=True)
class ESMMComparison:
    """Results of :func:`esmm_vs_click_only`, one entry per seed.

    Attributes:
        seeds: the seeds.
        cvr_auc: AUC of the predicted pCVR against the latent "would convert if
            clicked" label on *all* test impressions, ``(seed, 2)``: columns
            ESMM, click-only model.
        oracle_auc: the same AUC for the true pCVR, ``(seed,)``, the ceiling.
        mean_cvr: mean predicted pCVR over all test impressions, ``(seed, 2)``.
        true_mean_cvr: mean true pCVR over all test impressions, ``(seed,)``.
        clicked_mean_cvr: mean true pCVR over the clicked training impressions,
            ``(seed,)``: what the click-only training set sees.
        best_epoch: the epoch (from 0) whose weights early stopping kept, ``(seed, 2)``.
    """

    seeds: tuple[int, ...]
    cvr_auc: np.ndarray
    oracle_auc: np.ndarray
    mean_cvr: np.ndarray
    true_mean_cvr: np.ndarray
    clicked_mean_cvr: np.ndarray
    best_epoch: np.ndarray

    def calibration_error(self) -> np.ndarray:
        """``|mean predicted pCVR - true mean pCVR|`` on all test impressions, ``(seed, 2)``."""
        return np.abs(self.mean_cvr - self.true_mean_cvr[:, None])

    def auc_verdict(self, digits: int = 2) -> Verdict:
        """ESMM vs the click-only model on the CVR AUC of the entire space (higher is better)."""
        return paired_verdict(self.cvr_auc[:, 0], self.cvr_auc[:, 1], names=("ESMM", "click-only"),
                              lower_is_better=False, digits=digits)

    def calibration_verdict(self, digits: int = 2) -> Verdict:
        """ESMM vs the click-only model on :meth:`calibration_error` (lower is better)."""
        error = self.calibration_error()
        return paired_verdict(error[:, 0], error[:, 1], names=("ESMM", "click-only"), digits=digits)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def esmm_vs_click_only(mtl: ModuleType, seeds: tuple[int, ...] = (0, 1, 2, 3, 4), n_train: int = 10000,
                       n_val: int = 2500, n_test: int = 5000, hidden: int = 16, tower_hidden: int = 8,
                       max_epochs: int = 60, patience: int | None = 5, lr: float = 1e-2,
                       **data_options: Any) -> ESMMComparison:
    """ESMM trained on every impression vs a CVR network trained on clicked ones.

    Data: :func:`mtl_course.data.click_conversion` (``data_options`` go to it),
    split into ``n_train`` training, ``n_val`` validation and ``n_test`` test
    impressions. ESMM (bottom ``hidden``, towers ``tower_hidden``) is fit with
    binary cross-entropy on pCTR (click label) and pCTCVR (click-and-convert
    label) over all training impressions, batches of 500. The conventional
    model, the same bottom and CVR tower as a one-task :class:`HardSharing`,
    is fit on the clicked training impressions only with the conversion label,
    batches of 100 (so both take a similar number of steps per epoch). Each
    stops early on its own validation loss (ESMM on all validation
    impressions, the click-only model on the clicked ones, all it could see in
    practice), same ``lr``, ``max_epochs`` and ``patience``. Both are scored on
    the entire test space against the latent label ``truth.would_convert``.
    """
    _check_framework(mtl)
    rows = []
    for seed in seeds:
        split, truth = click_conversion(n=n_train + n_val + n_test, seed=seed, **data_options)
        train = split.subset(slice(0, n_train))
        val = split.subset(slice(n_train, n_train + n_val))
        test = split.subset(slice(n_train + n_val, n_train + n_val + n_test))
        clicked, clicked_val = (part.subset(part.y["click"] == 1) for part in (train, val))
        dim = split.x.shape[1]
        stopping = dict(epochs=max_epochs, patience=patience, lr=lr, seed=seed, progress=False)

        mtl.seed_everything(seed)
        esmm = mtl.ESMM(dim, hidden, tower_hidden)
        esmm_history = mtl.fit(esmm, train, {"click": "bce", "conversion": "bce"}, batch_size=500,
                               val_data=val if patience is not None else None, **stopping)
        mtl.seed_everything(seed)
        click_only = mtl.HardSharing(mtl.mlp((dim, hidden), output_activation=True),
                                     {"conversion": mtl.mlp((hidden, tower_hidden, 1))})
        click_history = mtl.fit(click_only, clicked, {"conversion": "bce"}, batch_size=100,
                                val_data=clicked_val if patience is not None else None, **stopping)

        predicted = [mtl.predict(esmm, test.x)["cvr"].ravel(), mtl.predict(click_only, test.x)["conversion"].ravel()]
        test_rows = slice(n_train + n_val, n_train + n_val + n_test)
        label = truth.would_convert[test_rows]
        p_true = truth.p_conversion_given_click
        rows.append(([roc_auc(p, label) for p in predicted], roc_auc(p_true[test_rows], label),
                     [float(_sigmoid(p).mean()) for p in predicted], float(p_true[test_rows].mean()),
                     float(p_true[:n_train][train.y["click"] == 1].mean()),
                     [-1 if h.best_epoch is None else h.best_epoch for h in (esmm_history, click_history)]))
    columns = list(zip(*rows))
    return ESMMComparison(tuple(int(s) for s in seeds), np.array(columns[0]), np.array(columns[1]),
                          np.array(columns[2]), np.array(columns[3]), np.array(columns[4]), np.array(columns[5]))
