"""The experiments of chapter 7, "Loss weighting", in either framework.

* :func:`toy_splits` and :func:`toy_model` - a small version of the synthetic
  problem of Chen, Badrinarayanan, Lee and Rabinovich, "GradNorm: Gradient
  Normalization for Adaptive Loss Balancing in Deep Multitask Networks",
  ICML 2018 (section 4): regression tasks ``sigma_i tanh(Q_i x)``, ``Q_i = Q + (small noise)``, that
  share structure but differ in scale, learned by a shared ReLU trunk with one
  linear head per task.
* :func:`make_weighting` - every weighting of :mod:`mtl_course.torch.weighting`
  (or its tf twin) by name, including static weights set to the inverse of the
  initial losses.
* :func:`train_weighting` - one training run that records the weights at the
  start and after every epoch, and the per-task test error.
* :func:`compare_weightings` - every method on the same problem for several seeds (``fit``).
* :func:`train_stacked` - every method, learning rate and seed trained at once
  (PyTorch, stacked networks), each run stopped early on validation data; the
  chapter's comparison, with the same learning-rate grid for every method.
* :func:`static_grid_search` - the brute-force alternative: one run per point of
  a grid of static weights and seed, scored on validation data; :func:`grid_search_cost`
  counts the runs.
* :func:`train_twins` - one method trained in PyTorch and in TensorFlow from the
  same initial weights.

Weights of different methods live on different scales (equal, DWA and GradNorm
sum to the number of tasks T, RLW to 1, uncertainty weighting to anything), so
they are compared through :func:`relative_weights`, ``T w / sum(w)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtl_course.core.methods import build_weighting
from mtl_course.data.synthetic import gradnorm_toy
from mtl_course.data.types import MultiTaskSplit, Splits
from mtl_course.stats import mean_spread, spread_decimals

__all__ = [
    "METHODS",
    "GridSearch",
    "StackedRuns",
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
    "train_stacked",
    "train_twins",
    "train_weighting",
]

METHODS = ("equal", "static", "uncertainty", "gradnorm", "dwa", "rlw")
"""The weightings of chapter 7, by the names :func:`make_weighting` knows.
``"static"`` means fixed weights ``1 / L_i(0)``, scaled to sum to T."""


def _is_torch(mtl: Any) -> bool:
    return getattr(mtl, "__name__", "") == "mtl_course.torch"


# ----------------------------------------------------------------- the problem
def toy_splits(num_tasks: int = 4, sigmas: tuple[float, ...] | None = None, n: int = 1000,
               input_dim: int = 50, output_dim: int = 10, seed: int = 0) -> Splits:
    """:func:`mtl_course.data.gradnorm_toy` at chapter scale (train/val/test 60/20/20).

    The paper uses 250 inputs, 100 outputs per task and 10 tasks; the default
    here is 4 tasks, 50 inputs, 10 outputs and ``sigmas = linspace(1, 100, T)``.
    """
    return gradnorm_toy(num_tasks=num_tasks, sigmas=sigmas, n=n, seed=seed,
                        input_dim=input_dim, output_dim=output_dim)


def toy_model(mtl: Any, input_dim: int, output_dim: int, task_names: tuple[str, ...] | list[str],
              hidden: int = 32, depth: int = 3) -> Any:
    """The GradNorm paper's architecture at small scale: a shared trunk of ``depth``
    ReLU layers of ``hidden`` units (the paper: 4 layers of 100) and one linear
    head per task (the paper's "final affine transformation layer")."""
    if depth < 1 or hidden < 1:
        raise ValueError(f"depth and hidden must be positive, got depth={depth}, hidden={hidden}")
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
    """``T w / sum(w)`` along the last axis: every method's weights on one scale (sum T)."""
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=-1, keepdims=True)
    if np.any(total <= 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite with a positive sum")
    return w.shape[-1] * w / total


# ----------------------------------------------------------------- the methods
def make_weighting(mtl: Any, name: str, task_names: list[str] | tuple[str, ...],
                   initial_losses: np.ndarray | None = None, alpha: float = 1.5, gradnorm_lr: float = 0.025,
                   temperature: float = 2.0, seed: int = 0) -> Any:
    """The weighting ``name`` (one of :data:`METHODS`) for regression tasks ``task_names``.

    ``"static"`` needs ``initial_losses`` and uses ``w_i = T (1/L_i(0)) / sum_j (1/L_j(0))``,
    the common "divide by the initial loss" heuristic. ``alpha`` and
    ``gradnorm_lr`` are GradNorm's, ``temperature`` DWA's; RLW draws from a
    generator seeded with ``seed``. ``mtl`` is :mod:`mtl_course.torch` or :mod:`mtl_course.tf`.
    """
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
        weights: the method's weights at the start and after every epoch, ``(epochs + 1, T)``
            (for RLW the last draw of the epoch).
        train_loss: epoch-average training loss, ``(epochs, T)``.
        test_error: :func:`relative_error` on the test split, ``(T,)``.
        log_vars: uncertainty weighting's learned ``s_i = log sigma_i^2`` (else None).
        final_train_loss: each task's training loss of the trained model (one pass), ``(T,)``.
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


def train_weighting(mtl: Any, method: str, splits: Splits, seed: int = 0, epochs: int = 30,
                    batch_size: int = 100, lr: float = 4e-3, hidden: int = 32, depth: int = 3, alpha: float = 1.5,
                    gradnorm_lr: float = 0.025, weighting_lr: float | None = None, model: Any = None) -> WeightingRun:
    """Train :func:`toy_model` on ``splits.train`` with the weighting ``method`` and Adam.

    The model is initialised after ``seed_everything(seed)`` (or pass a built
    ``model``); ``fit`` shuffles with ``seed`` too. ``weighting_lr`` (PyTorch
    only) gives the weighting's own parameters (uncertainty weighting's
    log-variances) their own Adam learning rate, through a parameter group;
    by default they share the model's ``lr``. Returns a :class:`WeightingRun`.
    """
    train = splits.train
    names = list(train.task_names)
    tasks = {name: mtl.Task("mse") for name in names}
    if model is None:
        mtl.seed_everything(seed)
        model = toy_model(mtl, train.x.shape[1], train.y[names[0]].shape[1], names, hidden, depth)
    initial = _task_losses(mtl, model, train, tasks)
    weighting = make_weighting(mtl, method, names, initial_losses=initial, alpha=alpha,
                               gradnorm_lr=gradnorm_lr, seed=seed)
    start = weighting.weights
    optimizer = None
    if weighting_lr is not None:
        if not _is_torch(mtl):
            raise ValueError("weighting_lr is implemented for mtl_course.torch only")
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
        log_vars = np.array(s.detach().cpu().numpy() if _is_torch(mtl) else np.asarray(s), dtype=np.float64)
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
        """:func:`relative_weights` of one run over training, ``(epochs + 1, T)``."""
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


def compare_weightings(mtl: Any, methods: tuple[str, ...] = METHODS, seeds: tuple[int, ...] = (0,),
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
    runs = {m: [train_weighting(mtl, m, splits, seed=s, **kwargs) for s in seeds] for m in methods}
    return WeightingComparison(tuple(methods), tuple(seeds), tuple(splits.train.task_names), runs)


# ------------------------------------------------------------ many runs at once
@dataclass(frozen=True)
class StackedRuns:
    """Results of :func:`train_stacked`: every ``(method, lr, seed)`` run, trained together.

    Attributes:
        methods, lrs, seeds, task_names: the axes of every array, in this order.
        val_error / test_error: :func:`relative_error` of the early-stopped model,
            ``(method, lr, seed, T)``.
        weights: the method's weights at the start and at the end of every epoch (as ``fit``'s
            ``History.weights``: for DWA the weights the epoch used),
            ``(method, lr, seed, epochs + 1, T)`` (after a run stopped: its last weights repeated).
        best_epoch / stopped_epoch: the epoch of the kept model and the epoch training stopped
            (``(method, lr, seed)``).
        log_vars: uncertainty weighting's ``s_i`` of the kept model, ``(method, lr, seed, T)``
            (NaN for the other methods).
        final_train_loss: each task's training loss of the kept model, ``(method, lr, seed, T)``.
    """

    methods: tuple[str, ...]
    lrs: tuple[float, ...]
    seeds: tuple[int, ...]
    task_names: tuple[str, ...]
    val_error: np.ndarray
    test_error: np.ndarray
    weights: np.ndarray
    best_epoch: np.ndarray
    stopped_epoch: np.ndarray
    log_vars: np.ndarray
    final_train_loss: np.ndarray

    def tuned(self) -> dict[str, int]:
        """Each method's learning rate (index into ``lrs``) with the lowest validation error
        (mean over tasks and seeds): every method gets the same grid, the same selection rule."""
        score = self.val_error.mean(axis=(2, 3))
        return {m: int(np.argmin(score[i])) for i, m in enumerate(self.methods)}

    def tuned_test_error(self, method: str) -> np.ndarray:
        """Test error of ``method`` at its tuned learning rate, ``(seed, T)``."""
        i = self.methods.index(method)
        return self.test_error[i, self.tuned()[method]]

    def tuned_index(self, method: str) -> tuple[int, int]:
        i = self.methods.index(method)
        return i, self.tuned()[method]

    def table(self, margin: float = 0.5) -> str:
        """Tuned learning rate, then test error per task and the task mean: the mean over seeds.

        Each mean has the digits its seeds' spread justifies (:func:`mtl_course.stats.mean_spread`),
        one fewer where it lies within ``margin`` times the spread of a rounding boundary: the epoch
        early stopping keeps in these long float64 runs can move with the last bits of another
        machine's kernels, a seed's error with it by up to about the spread, and a mean by up to
        about a third of it. The std itself is not printed: its leading digit moves the same way.
        """
        header = f"{'method':12s}{'lr':>8s}" + "".join(f"{n:>10s}" for n in self.task_names) + f"{'task mean':>11s}"
        lines = [header]
        for method in self.methods:
            err = self.tuned_test_error(method)
            cells = [err[:, t] for t in range(err.shape[1])] + [err.mean(axis=1)]
            lr = self.lrs[self.tuned()[method]]
            means = [mean_spread(c, margin=margin, show_spread=False) for c in cells]
            lines.append(f"{method:12s}{lr:8.0e}" + "".join(f"{m:>10s}" for m in means[:-1]) + f"{means[-1]:>11s}")
        return "\n".join(lines)

    def paired_differences(self, baseline: str = "equal") -> dict[str, np.ndarray]:
        """Each other method's test error minus the baseline's, seed by seed, both at their tuned
        learning rates: ``(seed, T + 1)``, the last column the difference of the task means."""
        base = self.tuned_test_error(baseline)
        out = {}
        for method in self.methods:
            if method != baseline:
                d = self.tuned_test_error(method) - base
                out[method] = np.concatenate([d, d.mean(axis=1, keepdims=True)], axis=1)
        return out

    def difference_table(self, baseline: str = "equal", margin: float = 0.5) -> str:
        """The mean over seeds of :meth:`paired_differences`, per task and for the task mean.

        Seed s gives both methods the same data and initial weights, so what the seeds share cancels
        in the difference; each mean gets the digits the spread of *its differences* justifies
        (:func:`~mtl_course.stats.mean_spread`, one fewer within ``margin`` times that spread of a
        rounding boundary). A mean within ``margin`` times the spread of zero prints as an unsigned
        0 at one decimal fewer: its sign is the digit another machine's kernels would flip.
        Negative: the method's error is lower than the baseline's.
        """
        header = f"{'method':12s}" + "".join(f"{n:>10s}" for n in self.task_names) + f"{'task mean':>11s}"
        lines = [header]
        for method, d in self.paired_differences(baseline).items():
            cells = []
            for column in d.T:
                mean, std = float(column.mean()), float(column.std())
                if abs(mean) <= margin * std:
                    decimals = max(spread_decimals(std) - 1, 0)
                    cells.append(f"{0.0:.{decimals}f}")
                else:
                    cells.append(mean_spread(column, sign=True, margin=margin, show_spread=False))
            lines.append(f"{method:12s}" + "".join(f"{c:>10s}" for c in cells[:-1]) + f"{cells[-1]:>11s}")
        return "\n".join(lines)


def _linear_stack(layers: list[Any], dtype: Any) -> tuple[Any, Any]:
    import torch

    weight = torch.stack([layer.weight.detach().T for layer in layers]).to(dtype)  # (M, in, out)
    bias = torch.stack([layer.bias.detach()[None, :] for layer in layers]).to(dtype)  # (M, 1, out)
    return weight, bias


def train_stacked(mtl: Any, methods: Sequence[str] | Mapping[str, Sequence[float]], splits: Splits,
                  seeds: Sequence[int], lrs: Sequence[float] = (4e-3,), max_epochs: int = 400,
                  patience: int | None = 20, batch_size: int = 100, hidden: int = 32, depth: int = 3,
                  alpha: float = 1.5, gradnorm_lr: float | None = 0.025, weighting_lr: float = 0.1,
                  temperature: float = 2.0, dtype: str = "float64", min_delta: float = 1e-4) -> StackedRuns:
    """Train :func:`toy_model` for every method, learning rate and seed at once (PyTorch).

    Every run is an independent network; the runs are stacked along a leading axis and
    trained by batched matrix products, one Adam per run (torch's formula) with its own
    learning rate, so a grid of ``methods x lrs x seeds`` costs little more than one run.
    Seed ``s`` gives every method and learning rate the same initial weights
    (:func:`toy_model` after ``seed_everything(s)``) and the same mini-batches (the
    permutation ``fit`` draws from ``numpy.random.default_rng(s)``). The weights follow the
    package's rules (:mod:`mtl_course.core.weighting`): equal, static ``1 / L_i(0)``,
    uncertainty (regression form, log-variances with Adam at ``weighting_lr``), GradNorm
    (gradient norms at the last shared layer, :func:`~mtl_course.core.weighting.gradnorm_update`
    with its own Adam at ``gradnorm_lr``; None: the run's learning rate, as LibMTL, which
    steps the weights with the training optimizer), DWA (``temperature``) and RLW (draws seeded by ``s``);
    ``tests/chapters`` checks each against ``fit`` with the package's classes.
    ``methods`` may also be a mapping ``label -> fixed weights`` (static weights of your choice).

    Early stopping: after each epoch every run is scored by its mean :func:`relative_error`
    on ``splits.val`` (scale free, so a large-scale task does not decide alone); a run stops
    after ``patience`` epochs without an improvement of more than ``min_delta`` and keeps its
    best epoch's parameters. (On a plateau the error changes in its last digits from epoch to
    epoch; without ``min_delta`` the CPU's rounding would decide which epoch is kept.)
    ``patience=None`` trains every run ``max_epochs`` epochs and keeps the last parameters.
    """
    import torch

    from mtl_course.core import weighting as core

    if getattr(mtl, "__name__", "") != "mtl_course.torch":
        raise ValueError("train_stacked trains PyTorch networks: pass mtl_course.torch as mtl")
    if not seeds or not lrs or not methods:
        raise ValueError("need at least one method, learning rate and seed")
    names = tuple(splits.train.task_names)
    k = len(names)
    if isinstance(methods, Mapping):
        fixed = {label: np.asarray(w, dtype=np.float64) for label, w in methods.items()}
        for label, w in fixed.items():
            if w.shape != (k,) or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError(f"fixed weights {label!r} must be {k} non-negative numbers, got {w.tolist()}")
        kinds = {label: "fixed" for label in fixed}
    else:
        fixed = {}
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown weighting(s) {unknown}; use {METHODS}")
        kinds = {m: m for m in methods}
    labels = tuple(kinds)
    if any(not lr > 0 for lr in lrs):
        raise ValueError(f"learning rates must be positive, got {lrs}")
    n = len(splits.train)
    if n % batch_size:
        raise ValueError(f"batch_size must divide the {n} training examples, got {batch_size}")
    tdtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
    configs = [(m, lr, s) for m in labels for lr in lrs for s in seeds]  # run r = configs[r]
    big_m = len(configs)
    seed_of = np.array([seeds.index(s) for _, _, s in configs])
    dev = mtl.device()
    lr_run = torch.tensor([lr for _, lr, _ in configs], dtype=tdtype, device=dev)

    # initial weights: one model per seed, copied to every run of that seed
    d_in, d_out = splits.train.x.shape[1], splits.train.y[names[0]].shape[1]
    per_seed = []
    for s in seeds:
        mtl.seed_everything(s)
        per_seed.append(toy_model(mtl, d_in, d_out, names, hidden, depth))
    trunk_layers = [[mod for mod in model.trunk if isinstance(mod, torch.nn.Linear)] for model in per_seed]
    params = []
    for layer in range(depth):
        w, b = _linear_stack([trunk_layers[i][layer] for i in seed_of], tdtype)
        params += [w, b]
    for name in names:
        heads = [next(mod for mod in per_seed[i].heads[name].modules() if isinstance(mod, torch.nn.Linear))
                 for i in seed_of]
        w, b = _linear_stack(heads, tdtype)
        params += [w, b]
    params = [p.to(dev).clone().requires_grad_(True) for p in params]

    def as_tensor(a: np.ndarray) -> Any:
        return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=tdtype, device=dev)

    data = {part: (as_tensor(getattr(splits, part).x),
                   torch.stack([as_tensor(getattr(splits, part).y[t]) for t in names]))  # (T, N, out)
            for part in ("train", "val", "test")}

    def forward(p: list, x: Any, keep: list | None = None) -> Any:  # x (M, B, in) -> (M, T, B, out)
        h = x
        for layer in range(depth):
            z = torch.baddbmm(p[2 * layer + 1], h, p[2 * layer])
            if keep is not None and layer == depth - 1:
                keep += [h, z]  # the last shared layer's input and pre-activation
            h = torch.relu(z)
        heads_w = torch.stack(p[2 * depth::2], dim=1)  # (M, T, hidden, out)
        heads_b = torch.stack(p[2 * depth + 1::2], dim=1)  # (M, T, 1, out)
        return torch.einsum("mbh,mkho->mkbo", h, heads_w) + heads_b

    def last_layer_norms(p: list, kept: list, out: Any, y: Any) -> np.ndarray:
        # ||dL_i/dW|| at the last shared layer, every run and task, in closed form (no extra backward):
        # L_i = mean (out_i - y_i)^2, out_i = relu(z) V_i + c_i, z = h W + b, so
        # dL_i/dW = h^T [(2 (out_i - y_i) / (B out) V_i^T) * 1(z > 0)]
        h, z = kept
        heads_w = torch.stack(p[2 * depth::2], dim=1)  # (M, T, hidden, out)
        d_out = 2 * (out - y) / (out.shape[2] * out.shape[3])  # (M, T, B, out)
        d_z = torch.einsum("mkbo,mkho->mkbh", d_out, heads_w) * (z > 0)[:, None]
        grads = torch.einsum("mbi,mkbh->mkih", h, d_z)
        return torch.linalg.vector_norm(grads.double(), dim=(2, 3)).cpu().numpy()  # (M, T)

    def task_mse(p: list, part: str) -> Any:  # (M, T), whole split, no graph
        x, y = data[part]
        with torch.no_grad():
            out = forward(p, x.expand(p[0].shape[0], *x.shape))
            return ((out - y[None]) ** 2).mean(dim=(2, 3))

    def rel_error(p: list, part: str) -> np.ndarray:
        # the relative error of relative_error(): MSE over all outputs / mean variance of the targets
        x, y = data[part]
        with torch.no_grad():
            out = forward(p, x.expand(p[0].shape[0], *x.shape))
            mse = ((out - y[None]) ** 2).mean(dim=(2, 3))
            var = ((y - y.mean(dim=(1, 2), keepdim=True)) ** 2).mean(dim=(1, 2))  # np.var of each task's y
        return (mse / var).double().cpu().numpy()

    kind_run = np.array([kinds[m] for m, _, _ in configs])
    initial = task_mse(params, "train").double().cpu().numpy()
    weights = np.ones((big_m, k))
    for r, (label, _, _) in enumerate(configs):
        if kinds[label] == "fixed":
            weights[r] = fixed[label]
        elif kinds[label] == "static":
            weights[r] = relative_weights(1.0 / initial[r])
        elif kinds[label] == "rlw":
            weights[r] = 1.0 / k
        elif kinds[label] == "uncertainty":
            weights[r] = 0.5  # the effective multipliers exp(-s) / 2 at s = 0
    gradnorm_adams = {r: core.Adam() for r in np.flatnonzero(kind_run == "gradnorm")}
    rlw_generators = {r: core.as_generator(configs[r][2]) for r in np.flatnonzero(kind_run == "rlw")}
    dwa_history: list[np.ndarray] = []
    b1, b2, eps = 0.9, 0.999, 1e-8

    def adam(p: Any, g: Any, mv: tuple, lr: Any, t: int) -> None:  # torch.optim.Adam's formula
        m, v = mv
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (v.sqrt() / math.sqrt(1 - b2**t)).add_(eps)
        p.sub_(lr * m / denom / (1 - b1**t))

    # The stack holds the active runs only (run ids `active`): a run that stops early leaves it.
    active = np.arange(big_m)
    log_vars = torch.zeros(big_m, k, dtype=tdtype, device=dev, requires_grad=True)
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    s_moments = (torch.zeros_like(log_vars), torch.zeros_like(log_vars))
    best_val = np.full(big_m, np.inf)
    best_params = [p.detach().clone() for p in params]  # indexed by run id
    best_log_vars = log_vars.detach().clone()
    best_epoch = np.zeros(big_m, dtype=int)
    stopped_epoch = np.full(big_m, max_epochs)
    trajectory = [weights.copy()]
    rngs = [np.random.default_rng(s) for s in seeds]
    x_train, y_train = data["train"]
    step, epochs_run = 0, 0
    for epoch in range(1, max_epochs + 1):
        uncertainty = torch.as_tensor(kind_run[active] == "uncertainty", device=dev)
        lr_shape = [lr_run[active].view(-1, *([1] * (p.dim() - 1))) for p in params]
        orders = np.stack([rng.permutation(n) for rng in rngs])  # (S, n), as fit draws them
        epoch_loss = np.zeros((big_m, k))
        for start in range(0, n, batch_size):
            index = torch.as_tensor(orders[seed_of[active], start:start + batch_size], device=dev)  # (M, B)
            x = x_train[index]  # (M, B, in)
            y = y_train[:, index].permute(1, 0, 2, 3)  # (M, T, B, out)
            kept: list = []
            out = forward(params, x, kept)
            losses = ((out - y) ** 2).mean(dim=(2, 3))  # (M, T)
            values = losses.detach().double().cpu().numpy()
            epoch_loss[active] += values
            position = {r: i for i, r in enumerate(active)}
            for r, generator in rlw_generators.items():
                if r in position:
                    weights[r] = core.rlw_weights(generator, k)
            w_now = torch.as_tensor(weights[active], dtype=tdtype, device=dev)
            total = (w_now * losses).sum()
            if uncertainty.any():
                s_term = 0.5 * torch.exp(-log_vars) * losses + 0.5 * log_vars
                total = torch.where(uncertainty[:, None], s_term, w_now * losses).sum()
            gradnorm_now = [r for r in gradnorm_adams if r in position]
            if gradnorm_now:
                with torch.no_grad():
                    norms = last_layer_norms(params, kept, out, y)
                for r in gradnorm_now:
                    i = position[r]
                    weights[r] = core.gradnorm_update(weights[r], norms[i], values[i], initial[r], alpha,
                                                      configs[r][1] if gradnorm_lr is None else gradnorm_lr,
                                                      optimizer=gradnorm_adams[r])
            grads = torch.autograd.grad(total, params + [log_vars], allow_unused=True)
            step += 1
            with torch.no_grad():
                for p, g, mv, lr in zip(params, grads[:-1], moments, lr_shape):
                    adam(p, g, mv, lr, step)
                if uncertainty.any():
                    adam(log_vars, grads[-1], s_moments, weighting_lr, step)
        logged = trajectory[-1].copy()  # the weights this epoch used (as History.weights)
        logged[active] = weights[active]
        u = kind_run[active] == "uncertainty"
        logged[active[u]] = 0.5 * np.exp(-log_vars.detach().double().cpu().numpy()[u])
        trajectory.append(logged)
        epoch_loss /= n // batch_size
        dwa_history.append(epoch_loss)
        if len(dwa_history) >= 2:
            for r in np.flatnonzero(kind_run[active] == "dwa"):
                run = active[r]
                weights[run] = core.dwa_weights(np.stack([dwa_history[-2][run], dwa_history[-1][run]]),
                                                temperature)
        epochs_run = epoch
        if patience is None:
            continue
        score = rel_error(params, "val").mean(axis=1)  # active runs
        better = score < best_val[active] - min_delta
        if better.any():
            where = np.flatnonzero(better)
            runs_better = torch.as_tensor(active[where], device=dev)
            for keep, p in zip(best_params, params):
                keep[runs_better] = p.detach()[where]
            best_log_vars[runs_better] = log_vars.detach()[where]
            best_val[active[where]] = score[where]
            best_epoch[active[where]] = epoch
        done = epoch - best_epoch[active] >= patience
        if done.any():
            stopped_epoch[active[done]] = epoch
            stay = torch.as_tensor(np.flatnonzero(~done), device=dev)
            active = active[~done]
            if active.size == 0:
                break
            params = [p.detach()[stay].clone().requires_grad_(True) for p in params]
            moments = [(m[stay].clone(), v[stay].clone()) for m, v in moments]
            log_vars = log_vars.detach()[stay].clone().requires_grad_(True)
            s_moments = (s_moments[0][stay].clone(), s_moments[1][stay].clone())
    if patience is None:
        best_params = [p.detach() for p in params]
        best_log_vars = log_vars.detach()
        best_epoch[:] = epochs_run
    stopped_epoch = np.minimum(stopped_epoch, epochs_run)
    uncertainty = kind_run == "uncertainty"
    shape = (len(labels), len(lrs), len(seeds))
    trajectory = np.stack(trajectory, axis=1)  # (M, epochs + 1, T)
    weights_out = trajectory.reshape(*shape, epochs_run + 1, k)
    s_out = best_log_vars.double().cpu().numpy().copy()
    s_out[~uncertainty] = np.nan
    return StackedRuns(
        methods=labels, lrs=tuple(float(v) for v in lrs), seeds=tuple(int(s) for s in seeds), task_names=names,
        val_error=rel_error(best_params, "val").reshape(*shape, k),
        test_error=rel_error(best_params, "test").reshape(*shape, k),
        weights=weights_out, best_epoch=best_epoch.reshape(shape), stopped_epoch=stopped_epoch.reshape(shape),
        log_vars=s_out.reshape(*shape, k), final_train_loss=task_mse(best_params, "train").double().cpu().numpy()
        .reshape(*shape, k))


# ------------------------------------------------------------ grid search
def grid_search_cost(num_tasks: int, values_per_weight: int) -> int:
    """Training runs of a full grid search over static weights: ``m^(T-1)``.

    Only the ratios of the weights matter (the overall scale is the learning
    rate's job), so one weight is fixed to 1 and the other ``T - 1`` each take
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
        seeds: the seeds, in the order of the second axis below.
        val_error / test_error: :func:`relative_error` per ratio and seed, ``(ratio, seed, 2)``.
        best: index of the ratio with the lowest validation error (mean over tasks and seeds).
        runs: the number of training runs spent (ratios x seeds).
        stopped_epoch: the epoch each run stopped, ``(ratio, seed)``.
    """

    ratios: tuple[float, ...]
    seeds: tuple[int, ...]
    val_error: np.ndarray
    test_error: np.ndarray
    best: int
    runs: int
    stopped_epoch: np.ndarray


def static_grid_search(mtl: Any, ratios: Sequence[float], splits: Splits, seeds: Sequence[int] = (0,),
                       lr: float = 4e-3, **kwargs: Any) -> GridSearch:
    """Two tasks, static weights ``(1, ratio)`` for every ratio and seed, selected on validation data.

    Every ratio starts from the same initial model for a given seed and sees the same
    batches, so the ratio is the only thing that changes; training stops early on the
    validation error (:func:`train_stacked`, which gets ``kwargs``).
    """
    names = list(splits.train.task_names)
    if len(names) != 2:
        raise ValueError(f"static_grid_search is written for two tasks, got {len(names)}")
    if len(ratios) == 0 or any(not np.isfinite(r) or r <= 0 for r in ratios):
        raise ValueError(f"ratios must be positive and finite, got {ratios}")
    fixed = {f"w2={float(r):g}": (1.0, float(r)) for r in ratios}
    runs = train_stacked(mtl, fixed, splits, seeds, lrs=(lr,), **kwargs)
    val_error, test_error = runs.val_error[:, 0], runs.test_error[:, 0]
    best = int(np.argmin(val_error.mean(axis=(1, 2))))
    return GridSearch(tuple(float(r) for r in ratios), tuple(int(s) for s in seeds), val_error, test_error, best,
                      len(ratios) * len(seeds), runs.stopped_epoch[:, 0])


# ------------------------------------------------------------ the twins
def train_twins(method: str, splits: Splits, seed: int = 0, **kwargs: Any) -> dict[str, WeightingRun]:
    """``method`` trained by :func:`train_weighting` in PyTorch and in TensorFlow from the same
    initial weights (copied with :func:`mtl_course.parity.copy_torch_to_tf`) on the same batches."""
    import importlib

    from mtl_course.parity import copy_torch_to_tf

    hidden, depth = kwargs.get("hidden", 32), kwargs.get("depth", 3)
    names = list(splits.train.task_names)
    shape = (splits.train.x.shape[1], splits.train.y[names[0]].shape[1])
    models = {}
    for framework in ("torch", "tf"):
        mtl = importlib.import_module(f"mtl_course.{framework}")
        mtl.seed_everything(seed)
        models[framework] = toy_model(mtl, *shape, names, hidden, depth)
    models["tf"](splits.train.x[:1])  # build the Keras model before copying into it
    copy_torch_to_tf(models["torch"], models["tf"])
    return {framework: train_weighting(importlib.import_module(f"mtl_course.{framework}"), method, splits,
                                       seed=seed, model=model, **kwargs)
            for framework, model in models.items()}
