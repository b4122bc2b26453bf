"""The experiments of chapter 7, "Loss weighting", in either framework.

* :func:`toy_splits` and :func:`toy_model` - a small version of the synthetic
  problem of Chen, Badrinarayanan, Lee and Rabinovich, "GradNorm: Gradient
  Normalization for Adaptive Loss Balancing in Deep Multitask Networks",
  ICML 2018 (section 4): regression tasks ``sigma_i tanh((B + eps_i) x)`` that
  share structure but differ in scale, learned by a shared ReLU trunk with one
  linear head per task.
* :func:`make_weighting` - every weighting of :mod:`mtl_course.torch.weighting`
  (or its tf twin) by name, including static weights set to the inverse of the
  initial losses.
* :func:`train_weighting` - one training run that records the weights at the
  start and after every epoch, and the per-task test error.
* :func:`compare_weightings` - every method on the same problem for several seeds.
* :func:`static_grid_search` - the brute-force alternative: one run per point of
  a grid of static weights, scored on validation data; :func:`grid_search_cost`
  counts the runs.
* :func:`train_twins` - one method trained in PyTorch and in TensorFlow from the
  same initial weights.

Weights of different methods live on different scales (equal, DWA and GradNorm
sum to the number of tasks K, RLW to 1, uncertainty weighting to anything), so
they are compared through :func:`relative_weights`, ``K w / sum(w)``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from mtl_course.core.methods import build_weighting
from mtl_course.data.synthetic import gradnorm_toy
from mtl_course.data.types import MultiTaskSplit, Splits

__all__ = [
    "METHODS",
    "WeightingComparison",
    "WeightingRun",
    "compare_weightings",
    "grid_search_cost",
    "make_weighting",
    "relative_error",
    "relative_weights",
    "static_grid_search",
    "toy_model",
    "toy_splits",
    "train_twins",
    "train_weighting",
]

METHODS = ("equal", "static", "uncertainty", "gradnorm", "dwa", "rlw")
"""The weightings of chapter 7, by the names :func:`make_weighting` knows.
``"static"`` means fixed weights ``1 / L_i(0)``, scaled to sum to K."""


def _backend(framework: str) -> SimpleNamespace:
    if framework not in ("torch", "tf"):
        raise ValueError(f"framework must be 'torch' or 'tf', got {framework!r}")
    root = importlib.import_module(f"mtl_course.{framework}")
    return SimpleNamespace(mtl=root, framework=framework)


# ----------------------------------------------------------------- the problem
def toy_splits(num_tasks: int = 4, sigmas: tuple[float, ...] | None = None, n: int = 1000,
               input_dim: int = 50, output_dim: int = 10, seed: int = 0) -> Splits:
    """:func:`mtl_course.data.gradnorm_toy` at chapter scale (train/val/test 60/20/20).

    The paper uses 250 inputs, 100 outputs per task and 10 tasks; the default
    here is 4 tasks, 50 inputs, 10 outputs and ``sigmas = linspace(1, 100, K)``.
    """
    return gradnorm_toy(num_tasks=num_tasks, sigmas=sigmas, n=n, seed=seed,
                        input_dim=input_dim, output_dim=output_dim)


def toy_model(input_dim: int, output_dim: int, task_names: tuple[str, ...] | list[str], hidden: int = 32,
              depth: int = 3, framework: str = "torch") -> Any:
    """The GradNorm paper's architecture at small scale: a shared trunk of ``depth``
    ReLU layers of ``hidden`` units (the paper: 4 layers of 100) and one linear
    head per task (the paper's "final affine transformation layer")."""
    if depth < 1 or hidden < 1:
        raise ValueError(f"depth and hidden must be positive, got depth={depth}, hidden={hidden}")
    mtl = _backend(framework).mtl
    trunk = mtl.mlp([input_dim] + [hidden] * depth, output_activation=True)
    heads = {name: mtl.mlp([hidden, output_dim]) for name in task_names}
    return mtl.HardSharing(trunk, heads)


def relative_error(predictions: dict[str, np.ndarray], split: MultiTaskSplit) -> np.ndarray:
    """Each task's MSE divided by the variance of its targets (``1 - R^2``), task order.

    For the toy the target variance is about ``sigma_i^2``, so this removes the
    scale that makes raw losses incomparable across tasks.
    """
    out = []
    for name in split.task_names:
        y = split.y[name].astype(np.float64)
        pred = np.asarray(predictions[name], dtype=np.float64).reshape(y.shape)
        out.append(np.mean((pred - y) ** 2) / np.var(y))
    return np.array(out)


def relative_weights(weights: np.ndarray) -> np.ndarray:
    """``K w / sum(w)`` along the last axis: every method's weights on one scale (sum K)."""
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=-1, keepdims=True)
    if np.any(total <= 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite with a positive sum")
    return w.shape[-1] * w / total


# ----------------------------------------------------------------- the methods
def make_weighting(name: str, task_names: list[str] | tuple[str, ...], framework: str = "torch",
                   initial_losses: np.ndarray | None = None, alpha: float = 1.5, gradnorm_lr: float = 1e-3,
                   temperature: float = 2.0, seed: int = 0) -> Any:
    """The weighting ``name`` (one of :data:`METHODS`) for regression tasks ``task_names``.

    ``"static"`` needs ``initial_losses`` and uses ``w_i = K (1/L_i(0)) / sum_j (1/L_j(0))``,
    the common "divide by the initial loss" heuristic. ``alpha`` and
    ``gradnorm_lr`` are GradNorm's, ``temperature`` DWA's; RLW draws from a
    generator seeded with ``seed``. GradNorm's weight step is
    ``lr * sign(...) * n_i`` with ``n_i`` the task's gradient norm, so its
    step size scales with the gradient norms: the default ``gradnorm_lr=1e-3``
    (the package's own default is 0.025) suits the toy, whose largest task
    has gradient norms of a few units at the last shared layer.
    """
    mtl = _backend(framework).mtl
    names = list(task_names)
    if name == "static":
        if initial_losses is None:
            raise ValueError("static weights need the initial losses (initial_losses=...)")
        loss0 = np.asarray(initial_losses, dtype=np.float64)
        if loss0.shape != (len(names),) or not np.all(np.isfinite(loss0)) or np.any(loss0 <= 0):
            raise ValueError(f"initial_losses must be {len(names)} positive finite numbers, got {initial_losses}")
        inverse = 1.0 / loss0
        return mtl.StaticWeighting(dict(zip(names, relative_weights(inverse).tolist())))
    if name not in METHODS:
        raise ValueError(f"unknown weighting {name!r}; use one of {METHODS}")
    settings = {"gradnorm": {"alpha": alpha, "lr": gradnorm_lr}, "dwa": {"temperature": temperature}}.get(name, {})
    return build_weighting(mtl.WEIGHTINGS, name, names, kinds="regression", seed=seed, **settings)


@dataclass(frozen=True)
class WeightingRun:
    """One training run of :func:`train_weighting`.

    Attributes:
        method: the weighting's name.
        task_names: task order of every array.
        weights: the method's weights at the start and after every epoch, ``(epochs + 1, K)``
            (for RLW the last draw of the epoch).
        train_loss: epoch-average training loss, ``(epochs, K)``.
        test_error: :func:`relative_error` on the test split, ``(K,)``.
        log_vars: uncertainty weighting's learned ``s_i = log sigma_i^2`` (else None).
        final_train_loss: each task's training loss of the trained model (one pass), ``(K,)``.
    """

    method: str
    task_names: tuple[str, ...]
    weights: np.ndarray
    train_loss: np.ndarray
    test_error: np.ndarray
    log_vars: np.ndarray | None
    final_train_loss: np.ndarray


def _task_losses(mtl: Any, model: Any, split: MultiTaskSplit, tasks: dict) -> np.ndarray:
    """Each task's mean loss of ``model`` on ``split``, task order."""
    _, losses = mtl.evaluate(model, split, tasks, return_losses=True)
    return np.array([losses[name] for name in split.task_names])


def train_weighting(method: str, splits: Splits, seed: int = 0, epochs: int = 30, batch_size: int = 100,
                    lr: float = 4e-3, hidden: int = 32, depth: int = 3, alpha: float = 1.5,
                    gradnorm_lr: float = 1e-3, weighting_lr: float | None = None, framework: str = "torch",
                    model: Any = None) -> WeightingRun:
    """Train :func:`toy_model` on ``splits.train`` with the weighting ``method`` and Adam.

    The model is initialised after ``seed_everything(seed)`` (or pass a built
    ``model``); ``fit`` shuffles with ``seed`` too. ``weighting_lr`` (PyTorch
    only) gives the weighting's own parameters (uncertainty weighting's
    log-variances) their own Adam learning rate, through a parameter group;
    by default they share the model's ``lr``. Returns a :class:`WeightingRun`.
    """
    mtl = _backend(framework).mtl
    train = splits.train
    names = list(train.task_names)
    tasks = {name: mtl.Task("mse") for name in names}
    if model is None:
        mtl.seed_everything(seed)
        model = toy_model(train.x.shape[1], train.y[names[0]].shape[1], names, hidden, depth, framework)
    initial = _task_losses(mtl, model, train, tasks)
    weighting = make_weighting(method, names, framework, initial_losses=initial, alpha=alpha,
                               gradnorm_lr=gradnorm_lr, seed=seed)
    start = weighting.weights
    optimizer = None
    if weighting_lr is not None:
        if framework != "torch":
            raise ValueError("weighting_lr is implemented for framework='torch' only")
        import torch

        groups = [{"params": list(model.parameters())}]
        if list(weighting.parameters()):  # only uncertainty weighting has parameters
            groups.append({"params": list(weighting.parameters()), "lr": weighting_lr})
        optimizer = torch.optim.Adam(groups, lr=lr)
    history = mtl.fit(model, train, tasks, method=weighting, epochs=epochs, batch_size=batch_size, lr=lr,
                      optimizer=optimizer, seed=seed, progress=False)  # on mtl.device()
    weights = np.array([start] + [w for w in history.weights], dtype=np.float64)
    train_loss = np.array([history.train_loss[name] for name in names]).T
    test_error = relative_error(mtl.predict(model, splits.test.x), splits.test)
    log_vars = None
    if method == "uncertainty":
        s = weighting.log_vars
        log_vars = np.array(s.detach().cpu().numpy() if framework == "torch" else np.asarray(s), dtype=np.float64)
    return WeightingRun(method, tuple(names), weights, train_loss, test_error, log_vars,
                        _task_losses(mtl, model, train, tasks))


@dataclass(frozen=True)
class WeightingComparison:
    """Results of :func:`compare_weightings`: ``runs[method][s]`` is seed ``seeds[s]``'s run."""

    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    task_names: tuple[str, ...]
    runs: dict[str, list[WeightingRun]]

    def test_error(self) -> np.ndarray:
        """Relative test error, ``(method, seed, task)``."""
        return np.array([[run.test_error for run in self.runs[m]] for m in self.methods])

    def weights(self, method: str, seed_index: int = 0) -> np.ndarray:
        """:func:`relative_weights` of one run over training, ``(epochs + 1, K)``."""
        return relative_weights(self.runs[method][seed_index].weights)

    def table(self) -> str:
        """Relative test error per task and its mean over tasks: mean +- std over seeds."""
        err = self.test_error()
        header = f"{'method':12s}" + "".join(f"{name:>16s}" for name in self.task_names) + f"{'task mean':>16s}"
        lines = [header]
        for m, method in enumerate(self.methods):
            cells = [err[m, :, t] for t in range(len(self.task_names))] + [err[m].mean(axis=-1)]
            lines.append(f"{method:12s}" + "".join(f"{c.mean():9.3f} +-{c.std():5.3f}" for c in cells))
        return "\n".join(lines)


def compare_weightings(methods: tuple[str, ...] = METHODS, seeds: tuple[int, ...] = (0,),
                       splits: Splits | None = None, **kwargs: Any) -> WeightingComparison:
    """Every method of ``methods`` on the same problem (default :func:`toy_splits`) and seeds.

    For a given seed every method starts from the same initial model and sees
    the same mini-batches; ``kwargs`` go to :func:`train_weighting`.
    """
    if not methods or not seeds:
        raise ValueError("need at least one method and one seed")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown weighting(s) {unknown}; use {METHODS}")
    splits = toy_splits() if splits is None else splits
    runs = {m: [train_weighting(m, splits, seed=s, **kwargs) for s in seeds] for m in methods}
    return WeightingComparison(tuple(methods), tuple(seeds), tuple(splits.train.task_names), runs)


# ------------------------------------------------------------ grid search
def grid_search_cost(num_tasks: int, values_per_weight: int) -> int:
    """Training runs of a full grid search over static weights: ``m^(K-1)``.

    Only the ratios of the weights matter (the overall scale is the learning
    rate's job), so one weight is fixed to 1 and the other ``K - 1`` each take
    ``m`` values.
    """
    for name, value in (("num_tasks", num_tasks), ("values_per_weight", values_per_weight)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(values_per_weight) ** (int(num_tasks) - 1)


@dataclass(frozen=True)
class GridSearch:
    """Results of :func:`static_grid_search`.

    Attributes:
        ratios: the weight of the second task (the first has weight 1).
        val_error / test_error: :func:`relative_error` per ratio, ``(ratio, 2)``.
        best: index of the ratio with the lowest mean validation error.
        runs: the number of training runs spent.
    """

    ratios: tuple[float, ...]
    val_error: np.ndarray
    test_error: np.ndarray
    best: int
    runs: int


def static_grid_search(ratios: tuple[float, ...], splits: Splits, seed: int = 0, epochs: int = 30,
                       batch_size: int = 100, lr: float = 4e-3, hidden: int = 32, depth: int = 3,
                       framework: str = "torch") -> GridSearch:
    """Two tasks, static weights ``(1, ratio)`` for every ratio, selected on validation data.

    Every run starts from the same initial model (``seed``) and sees the same
    batches, so the ratio is the only thing that changes.
    """
    mtl = _backend(framework).mtl
    names = list(splits.train.task_names)
    if len(names) != 2:
        raise ValueError(f"static_grid_search is written for two tasks, got {len(names)}")
    if not ratios or any(not np.isfinite(r) or r <= 0 for r in ratios):
        raise ValueError(f"ratios must be positive and finite, got {ratios}")
    tasks = {name: mtl.Task("mse") for name in names}
    val, test = [], []
    for ratio in ratios:
        mtl.seed_everything(seed)
        model = toy_model(splits.train.x.shape[1], splits.train.y[names[0]].shape[1], names, hidden, depth,
                          framework)
        weighting = mtl.StaticWeighting({names[0]: 1.0, names[1]: float(ratio)})
        mtl.fit(model, splits.train, tasks, method=weighting, epochs=epochs, batch_size=batch_size, lr=lr,
                seed=seed, progress=False)  # on mtl.device()
        val.append(relative_error(mtl.predict(model, splits.val.x), splits.val))
        test.append(relative_error(mtl.predict(model, splits.test.x), splits.test))
    val_error, test_error = np.array(val), np.array(test)
    best = int(np.argmin(val_error.mean(axis=1)))
    return GridSearch(tuple(float(r) for r in ratios), val_error, test_error, best, len(ratios))


# ------------------------------------------------------------ the twins
def train_twins(method: str, splits: Splits, seed: int = 0, **kwargs: Any) -> dict[str, WeightingRun]:
    """``method`` trained by :func:`train_weighting` in PyTorch and in TensorFlow from the same
    initial weights (copied with :func:`mtl_course.parity.copy_torch_to_tf`) on the same batches."""
    from mtl_course.parity import copy_torch_to_tf

    hidden, depth = kwargs.get("hidden", 32), kwargs.get("depth", 3)
    names = list(splits.train.task_names)
    shape = (splits.train.x.shape[1], splits.train.y[names[0]].shape[1])
    models = {}
    for framework in ("torch", "tf"):
        _backend(framework).mtl.seed_everything(seed)
        models[framework] = toy_model(*shape, names, hidden, depth, framework)
    models["tf"](splits.train.x[:1])  # build the Keras model before copying into it
    copy_torch_to_tf(models["torch"], models["tf"])
    return {framework: train_weighting(method, splits, seed=seed, framework=framework, model=model, **kwargs)
            for framework, model in models.items()}
