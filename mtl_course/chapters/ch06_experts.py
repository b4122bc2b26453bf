"""The experiments of chapter 6, "Mixture of experts", in either framework.

* :func:`correlation_sweep` - the synthetic experiment of Ma, Zhao, Yi, Chen,
  Hong and Chi, "Modeling Task Relationships in Multi-task Learning with
  Multi-gate Mixture-of-Experts", KDD 2018 (section 3): shared-bottom, one-gate
  MoE (OMoE) and MMoE trained on :func:`mtl_course.data.mmoe_synthetic` as the
  task correlation falls.
* :func:`gate_weights`, :func:`mean_gate_weights`, :func:`gate_disagreement`
  - how each task's gate uses the experts, and how differently two tasks do.
* :func:`train_twins` - one model trained in PyTorch and in TensorFlow from
  the same initial weights (the chapter's framework comparison).
* :func:`esmm_vs_click_only` - ESMM (Ma et al., SIGIR 2018) against the
  conventional post-click conversion model trained on clicked impressions only,
  scored on the entire space of impressions.

Every driver takes ``framework="torch"`` or ``"tf"`` and uses the twin models
and training loops (:mod:`mtl_course.torch` / :mod:`mtl_course.tf`) with the
same arguments, so the chapter runs one experiment in both frameworks.
Results are plain numpy arrays; the framework is imported only when used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from mtl_course.data.recsys import click_conversion
from mtl_course.data.synthetic import mmoe_synthetic
from mtl_course.data.types import MultiTaskSplit
from mtl_course.metrics import roc_auc

__all__ = [
    "MOE_MODELS",
    "CorrelationSweep",
    "ESMMComparison",
    "correlation_sweep",
    "esmm_vs_click_only",
    "gate_disagreement",
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


def _backend(framework: str) -> SimpleNamespace:
    """The models, training loop and runtime helpers of one framework."""
    if framework not in ("torch", "tf"):
        raise ValueError(f"framework must be 'torch' or 'tf', got {framework!r}")
    return SimpleNamespace(
        models=importlib.import_module(f"mtl_course.{framework}.models"),
        train=importlib.import_module(f"mtl_course.{framework}.train"),
        runtime=importlib.import_module(f"mtl_course.{framework}.runtime"),
    )


def moe_model(kind: str, input_dim: int, num_experts: int = 4, expert_hidden: int = 8,
              tower_hidden: int = 8, tasks: tuple[str, ...] = _TASKS, framework: str = "torch") -> Any:
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
    nn = _backend(framework).models
    width = num_experts * expert_hidden
    if kind == "shared-bottom":
        trunk = nn.mlp((input_dim, width), output_activation=True)
        return nn.HardSharing(trunk, {t: nn.mlp((width, tower_hidden, 1)) for t in tasks})
    if kind in ("OMoE", "MMoE"):
        return nn.MMoE(input_dim, num_experts, expert_hidden, tasks, tower_hidden=tower_hidden,
                       num_gates=1 if kind == "OMoE" else None)
    if kind == "PLE":  # one own expert per task; the rest are shared
        shared = max(num_experts - len(tasks), 1)
        return nn.PLE(input_dim, tasks, num_shared_experts=shared, num_task_experts=1,
                      expert_hidden=expert_hidden, tower_hidden=tower_hidden)
    raise ValueError(f"unknown model kind {kind!r}; use one of {MOE_MODELS}")


def synthetic_splits(correlation: float, seed: int, n_train: int = 2000, n_test: int = 2000,
                     dim: int = 16) -> tuple[MultiTaskSplit, MultiTaskSplit]:
    """Train and test splits of ``mmoe_synthetic(correlation, seed)``, targets standardized.

    Each task's targets are shifted and scaled by the training mean and
    standard deviation: the sines give the raw targets a mean of several
    units, which the towers' biases would otherwise spend many steps
    learning. A ratio MSE / variance (as in :class:`CorrelationSweep`) is
    unchanged by it.
    """
    data = mmoe_synthetic(n=n_train + n_test, dim=dim, correlation=correlation, seed=seed)
    scaled = {}
    for t in _TASKS:
        head = data.y[t][:n_train]
        scaled[t] = ((data.y[t] - head.mean()) / head.std()).astype(np.float32)
    data = MultiTaskSplit(data.x, scaled)
    return data.subset(slice(0, n_train)), data.subset(slice(n_train, n_train + n_test))


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


def train_on_synthetic(kind: str, correlation: float, seed: int, n_train: int = 2000, n_test: int = 2000,
                       dim: int = 16, epochs: int = 30, batch_size: int = 500, lr: float = 2e-2,
                       num_experts: int = 4, expert_hidden: int = 8, tower_hidden: int = 8,
                       data_seed: int | None = None, framework: str = "torch") -> tuple[Any, Any, MultiTaskSplit]:
    """Train one :func:`moe_model` on :func:`synthetic_splits` with Adam and equal weights.

    ``data_seed`` (default: ``seed``) sets the data: the weight directions,
    the sines' parameters and the inputs. ``seed`` sets the initialization
    and the batch order. Returns ``(model, history, test split)``.
    """
    backend = _backend(framework)
    train, test = synthetic_splits(correlation, seed if data_seed is None else data_seed, n_train, n_test, dim)
    backend.runtime.seed_everything(seed)
    model = moe_model(kind, dim, num_experts, expert_hidden, tower_hidden, framework=framework)
    history = backend.train.fit(model, train, {t: "mse" for t in _TASKS}, epochs=epochs, batch_size=batch_size,
                                lr=lr, seed=seed, progress=False)
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
    from mtl_course.parity import copy_torch_to_tf

    train, test = synthetic_splits(correlation, seed, n_train, n_test, dim)
    models = {}
    for framework in ("torch", "tf"):
        _backend(framework).runtime.seed_everything(seed)
        models[framework] = moe_model(kind, dim, num_experts, expert_hidden, tower_hidden, framework=framework)
    models["tf"](train.x[:1])  # build the Keras model before copying into it
    copy_torch_to_tf(models["torch"], models["tf"])
    results = {}
    for framework, model in models.items():
        backend = _backend(framework)
        history = backend.train.fit(model, train, {t: "mse" for t in _TASKS}, epochs=epochs, batch_size=batch_size,
                                    lr=lr, seed=seed, progress=False)
        result = {"relative_mse": relative_mse(backend.train.predict(model, test.x), test),
                  "train_loss": {t: history.train_loss[t][-1] for t in _TASKS}}
        if kind != "shared-bottom":
            result["gates"] = mean_gate_weights(model, test.x)
        results[framework] = result
    return results


@dataclass(frozen=True)
class CorrelationSweep:
    """Results of :func:`correlation_sweep`.

    Attributes:
        models, correlations, seeds: the axes of the arrays.
        relative_mse: test MSE divided by the variance of the test targets
            (``1 - R^2``; 1 = predicting the mean), shape
            ``(model, correlation, seed, task)``.
        train_loss: training MSE per epoch, averaged over the two tasks,
            shape ``(model, correlation, seed, epoch)``.
        gate_disagreement: :func:`gate_disagreement` of the trained model on
            the test inputs, ``(model, correlation, seed)``; NaN for models
            without per-task gates over common experts (shared-bottom, PLE).
    """

    models: tuple[str, ...]
    correlations: tuple[float, ...]
    seeds: tuple[int, ...]
    relative_mse: np.ndarray
    train_loss: np.ndarray
    gate_disagreement: np.ndarray

    def task_mean(self) -> np.ndarray:
        """Relative MSE averaged over the tasks, ``(model, correlation, seed)``."""
        return self.relative_mse.mean(axis=-1)

    def mean(self) -> np.ndarray:
        """Mean over seeds of :meth:`task_mean`, ``(model, correlation)``."""
        return self.task_mean().mean(axis=-1)

    def std(self) -> np.ndarray:
        """Standard deviation over seeds of :meth:`task_mean`, ``(model, correlation)``."""
        return self.task_mean().std(axis=-1)

    def table(self, digits: int = 3) -> str:
        """Mean +- std over seeds, one row per model, one column per correlation."""
        header = "model          " + "".join(f"  corr {c:<12.2f}" for c in self.correlations)
        rows = [header]
        for name, means, stds in zip(self.models, self.mean(), self.std()):
            cells = "".join(f"  {m:.{digits}f} +- {s:.{digits}f}  " for m, s in zip(means, stds))
            rows.append(f"{name:15s}{cells}")
        return "\n".join(rows)


def correlation_sweep(correlations: tuple[float, ...] = (1.0, 0.5, 0.0), seeds: tuple[int, ...] = (0, 1, 2),
                      models: tuple[str, ...] = ("shared-bottom", "OMoE", "MMoE"), framework: str = "torch",
                      **training: Any) -> CorrelationSweep:
    """Train every model on every correlation with every seed; score on test data.

    The MMoE paper's synthetic experiment at small scale: for each seed the
    data differ only in task 2's weight vector as the correlation changes (see
    :func:`mtl_course.data.mmoe_synthetic`). ``training`` goes to
    :func:`train_on_synthetic` (``n_train``, ``dim``, ``epochs``, ``lr``, ...).
    """
    if not correlations or not seeds or not models:
        raise ValueError("correlations, seeds and models must each be non-empty")
    unknown = [m for m in models if m not in MOE_MODELS]
    if unknown:
        raise ValueError(f"unknown model kind(s) {unknown}; use names from {MOE_MODELS}")
    backend = _backend(framework)
    relative, curves, disagreement = [], [], []
    for kind in models:
        for correlation in correlations:
            for seed in seeds:
                model, history, test = train_on_synthetic(kind, correlation, seed, framework=framework, **training)
                scores = relative_mse(backend.train.predict(model, test.x), test)
                relative.append([scores[t] for t in _TASKS])
                curves.append(np.mean([history.train_loss[t] for t in _TASKS], axis=0))
                gated = kind in ("OMoE", "MMoE")
                disagreement.append(gate_disagreement(gate_weights(model, test.x)) if gated else np.nan)
    shape = (len(models), len(correlations), len(seeds))
    return CorrelationSweep(tuple(models), tuple(float(c) for c in correlations), tuple(int(s) for s in seeds),
                            np.array(relative).reshape(*shape, len(_TASKS)),
                            np.array(curves).reshape(*shape, -1), np.array(disagreement).reshape(shape))


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
            gates = model.gates(torch.as_tensor(x, device=param.device))
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
    """

    seeds: tuple[int, ...]
    cvr_auc: np.ndarray
    oracle_auc: np.ndarray
    mean_cvr: np.ndarray
    true_mean_cvr: np.ndarray
    clicked_mean_cvr: np.ndarray


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def esmm_vs_click_only(seeds: tuple[int, ...] = (0, 1, 2), n_train: int = 15000, n_test: int = 5000,
                       hidden: int = 16, tower_hidden: int = 8, epochs: int = 10, lr: float = 1e-2,
                       framework: str = "torch", **data_options: Any) -> ESMMComparison:
    """ESMM trained on every impression vs a CVR network trained on clicked ones.

    Data: :func:`mtl_course.data.click_conversion` (``data_options`` go to it).
    ESMM (bottom ``hidden``, towers ``tower_hidden``) is fit with binary
    cross-entropy on pCTR (click label) and pCTCVR (click-and-convert label)
    over all ``n_train`` impressions, batches of 500. The conventional model,
    the same bottom and CVR tower as a one-task :class:`HardSharing`, is fit on
    the clicked impressions only with the conversion label, batches of 100 (so
    both take a similar number of steps per epoch). Both are scored on the
    entire test space against the latent label ``truth.would_convert``.
    """
    backend = _backend(framework)
    nn = backend.models
    rows = []
    for seed in seeds:
        split, truth = click_conversion(n=n_train + n_test, seed=seed, **data_options)
        train, test = split.subset(slice(0, n_train)), split.subset(slice(n_train, n_train + n_test))
        clicked = train.subset(train.y["click"] == 1)
        dim = split.x.shape[1]

        backend.runtime.seed_everything(seed)
        esmm = nn.ESMM(dim, hidden, tower_hidden)
        backend.train.fit(esmm, train, {"click": "bce", "conversion": "bce"}, epochs=epochs, batch_size=500,
                          lr=lr, seed=seed, progress=False)
        backend.runtime.seed_everything(seed)
        click_only = nn.HardSharing(nn.mlp((dim, hidden), output_activation=True),
                                    {"conversion": nn.mlp((hidden, tower_hidden, 1))})
        backend.train.fit(click_only, clicked, {"conversion": "bce"}, epochs=epochs,
                          batch_size=100, lr=lr, seed=seed, progress=False)

        predicted = [backend.train.predict(esmm, test.x)["cvr"].ravel(),
                     backend.train.predict(click_only, test.x)["conversion"].ravel()]
        label = truth.would_convert[n_train:]
        p_true = truth.p_conversion_given_click
        rows.append(([roc_auc(p, label) for p in predicted], roc_auc(p_true[n_train:], label),
                     [float(_sigmoid(p).mean()) for p in predicted], float(p_true[n_train:].mean()),
                     float(p_true[:n_train][train.y["click"] == 1].mean())))
    columns = list(zip(*rows))
    return ESMMComparison(tuple(int(s) for s in seeds), np.array(columns[0]), np.array(columns[1]),
                          np.array(columns[2]), np.array(columns[3]), np.array(columns[4]))
