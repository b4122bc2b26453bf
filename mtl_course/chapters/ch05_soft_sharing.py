r"""Chapter 5's controlled sweep: separate, weight decay, hard, soft and cross-stitch sharing.

The protocol (DESIGN section 6) for every relatedness level ``p`` of
:func:`mtl_course.data.mmoe_synthetic`:

1. **Methods** (:data:`METHODS`): separate towers; separate towers with
   weight decay (``SoftSharing(coupling="weight_decay")``, the control);
   hard sharing with the towers' width and with their parameter budget;
   soft sharing with the L2 and with the trace-norm coupling; cross-stitch.
2. **Fair tuning.** Every method with a knob gets the same number of
   values (:data:`DEFAULT_GRIDS`), chosen on the validation split; the
   methods without one (separate, hard) get early stopping only, like every
   other method.
3. **Converged training.** Adam until the validation MSE has not improved
   for ``patience`` epochs (or ``max_epochs``); each model is scored on the
   test split at its best validation epoch.
4. **Paired seeds.** Seed ``s`` draws the data and the initial weights of
   every method and every grid value (so methods differ only in what they
   are), and the mini-batch order (as :func:`mtl_course.torch.fit` with
   ``seed=s``).

**How it stays fast.** :func:`fit_stacked` trains many models of one
architecture at once: :func:`torch.func.stack_module_state` stacks their
weights along a new leading axis and :func:`torch.func.vmap` runs one
forward and backward pass for all of them. Adam is element-wise, so one
optimizer over the stacked weights is one Adam per model; the summed loss
gives every model its own gradient. The result equals training the models
one by one with :func:`mtl_course.torch.fit` (a test checks it).

The trainer is PyTorch only (torch.func); chapter 5's TensorFlow section
trains one configuration per method with the twins' ``fit`` from the same
weights (:func:`tf_twin`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtl_course.chapters.ch04_hard_sharing import build_sharing_model
from mtl_course.core.tasks import batch_indices
from mtl_course.data.synthetic import mmoe_synthetic
from mtl_course.data.types import Splits
from mtl_course.metrics import count_parameters
from mtl_course.stats import Verdict, paired_verdict

__all__ = [
    "DEFAULT_GRIDS",
    "LABELS",
    "METHODS",
    "StackedFit",
    "SweepResult",
    "build_method",
    "fit_stacked",
    "relatedness_splits",
    "relatedness_sweep",
    "tf_twin",
]

METHODS = ("separate", "separate_wd", "hard_width", "hard_budget", "soft_l2", "soft_trace", "cross_stitch")

#: The names the chapter prints.
LABELS = {
    "separate": "separate",
    "separate_wd": "separate + weight decay",
    "hard_width": "hard, same width",
    "hard_budget": "hard, same budget",
    "soft_l2": "soft L2",
    "soft_trace": "soft trace norm",
    "cross_stitch": "cross-stitch",
}

#: The tuning grid of each method's one knob (penalty strength lambda, or the
#: cross-stitch units' initial diagonal); ``None``: nothing to tune.
DEFAULT_GRIDS: dict[str, tuple[float, ...] | None] = {
    "separate": None,
    "separate_wd": (1e-3, 1e-2, 1e-1, 1.0),
    "hard_width": None,
    "hard_budget": None,
    "soft_l2": (1e-3, 1e-2, 1e-1, 1.0),
    "soft_trace": (1e-3, 1e-2, 1e-1, 1.0),
    "cross_stitch": (1.0, 0.9, 0.7, 0.5),
}

_PENALIZED = {"separate_wd": "weight_decay", "soft_l2": "l2", "soft_trace": "trace_norm"}


def _hidden_for_budget(d_in: int, hidden: Sequence[int], budget: int) -> tuple[int, ...]:
    """The hard-shared trunk ``hidden`` scaled by one factor (rounded) whose parameter count
    (two scalar heads) is closest to ``budget``."""
    best: tuple[int, tuple[int, ...]] | None = None
    for k in range(1, 64 * max(hidden) + 1):
        sizes = tuple(max(1, round(h * k / hidden[-1])) for h in hidden)
        count = _hard_count(d_in, sizes)
        if best is None or abs(count - budget) < best[0]:
            best = (abs(count - budget), sizes)
        if count > budget:
            break
    assert best is not None
    return best[1]


def _hard_count(d_in: int, hidden: Sequence[int]) -> int:
    sizes = (d_in, *hidden)
    trunk = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    return trunk + 2 * (hidden[-1] + 1)


def build_method(mtl: Any, method: str, d_in: int, hidden: Sequence[int], value: float | None = None) -> Any:
    """The two-task model of ``method`` (one of :data:`METHODS`) in framework ``mtl``.

    Every task's path is the MLP ``(d_in, *hidden, 1)``. The penalized methods
    are built with ``strength=value`` (``fit`` adds ``model.penalty()``);
    ``"cross_stitch"`` takes ``value`` as the initial diagonal ``alpha_self``;
    ``"hard_budget"`` scales the trunk so that its parameter count matches the
    separate towers'. Seed the framework first for a reproducible initialization.
    """
    outputs = {"task1": 1, "task2": 1}
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    if method == "separate":
        return build_sharing_model(mtl, "separate", d_in, hidden, outputs)
    if method == "hard_width":
        return build_sharing_model(mtl, "hard", d_in, hidden, outputs)
    if method == "hard_budget":
        budget = 2 * sum((a + 1) * b for a, b in zip((d_in, *hidden), (*hidden, 1)))
        return build_sharing_model(mtl, "hard", d_in, _hidden_for_budget(d_in, hidden, budget), outputs)
    if value is None:
        raise ValueError(f"method {method!r} needs a value (its strength or alpha_self)")
    if method == "cross_stitch":
        return build_sharing_model(mtl, "cross_stitch", d_in, hidden, outputs, alpha_self=float(value))
    towers = {name: mtl.mlp((d_in, *hidden, 1)) for name in outputs}
    return mtl.SoftSharing(towers, coupling=_PENALIZED[method], strength=float(value))


# --------------------------------------------------------------------------
# training many models at once
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class StackedFit:
    r"""What :func:`fit_stacked` returns, one entry per model (axis 0).

    Attributes:
        best_epoch: the epoch (1-based) with the lowest validation MSE.
        val: the mean over tasks of the validation MSE at ``best_epoch``.
        test: the test MSE per task at ``best_epoch``, ``(models, tasks)``.
        epochs: the number of epochs run (the same for all models; a model's
            results freeze at its own stop).
        val_curve: mean validation MSE per epoch, ``(models, epochs)``.
        penalty: the unscaled penalty (``penalty()`` at strength 1) at the best
            epoch; for the L2 coupling of two towers, the squared distance
            :math:`\lVert \theta_1 - \theta_2 \rVert^2`. Zeros without ``strengths``.
    """

    best_epoch: np.ndarray
    val: np.ndarray
    test: np.ndarray
    epochs: int
    val_curve: np.ndarray
    penalty: np.ndarray


def fit_stacked(models: Sequence[Any], data: Sequence[Splits], seeds: Sequence[int],
                strengths: Sequence[float] | None = None, lr: float = 1e-2, batch_size: int = 50,
                max_epochs: int = 300, patience: int = 20) -> StackedFit:
    r"""Train PyTorch models of one architecture at once, each on its own data, with early stopping.

    Model ``i`` minimizes :math:`\sum_t \mathrm{MSE}_t + \lambda_i\, \Omega(\theta_i)` on
    ``data[i].train`` with Adam (learning rate ``lr``, mini-batches of
    ``batch_size`` in the order of ``np.random.default_rng(seeds[i])``, as
    :func:`mtl_course.torch.fit`), where :math:`\Omega` is the model's
    ``penalty()`` at strength 1 and :math:`\lambda_i` = ``strengths[i]`` (the
    models' own ``strength`` attributes are ignored: under ``vmap`` they
    would all be the first model's). After every epoch the mean validation
    MSE is computed; each model keeps the test MSE of its best epoch and
    stops counting after ``patience`` epochs without improvement. Training
    ends when every model has stopped, or after ``max_epochs``.

    Args:
        models: torch models with the same parameter names and shapes, for
            tasks ``"task1"`` and ``"task2"``. Their weights are copied (the
            models are left unchanged); the trained weights are not returned.
        data: the splits of each model (all with the same sizes).
        seeds: the mini-batch seed of each model.
        strengths: the penalty weight of each model (None: no penalty).
    """
    import torch
    from torch.func import functional_call, stack_module_state, vmap

    n = len(models)
    if n == 0 or len(data) != n or len(seeds) != n:
        raise ValueError(f"models, data and seeds need the same positive length, got {n}, {len(data)}, {len(seeds)}")
    if strengths is not None and len(strengths) != n:
        raise ValueError(f"strengths needs one value per model, got {len(strengths)} for {n} models")
    patience = int(patience)
    if patience < 1 or int(max_epochs) < 1:
        raise ValueError(f"patience and max_epochs must be positive, got {patience} and {max_epochs}")
    sizes = {tuple(len(s) for s in d) for d in data}
    if len(sizes) != 1:
        raise ValueError(f"every model's splits need the same sizes, got {sorted(sizes)}")
    names = ("task1", "task2")
    has_penalty = strengths is not None and callable(getattr(models[0], "penalty", None))

    class Predict(torch.nn.Module):
        """Both tasks' predictions ``(batch, tasks)`` and the unscaled penalty."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.model(x)
            pred = torch.stack([out[name][..., 0] for name in names], -1)
            return pred, (self.model.penalty() if has_penalty else pred.new_zeros(()))

    params, buffers = stack_module_state([Predict(m) for m in models])  # copies: the models are left unchanged
    dev = next(iter(params.values())).device  # the models' device: data and indices go there too
    base = Predict(copy.deepcopy(models[0])).to("meta")
    if has_penalty:
        base.model.strength = 1.0  # vmap runs the base's code: the per-model strengths multiply below

    def one(p: dict, b: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return functional_call(base, (p, b), (x,))

    batched = vmap(one)

    def stack(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(np.stack([getattr(d, split).x for d in data]), dtype=torch.float32, device=dev)
        y = torch.as_tensor(np.stack([np.stack([getattr(d, split).y[t] for t in names], -1) for d in data]),
                            dtype=torch.float32, device=dev)
        return x, y

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = stack("train"), stack("val"), stack("test")
    lam = torch.tensor(np.asarray(strengths, dtype=np.float32), device=dev) if has_penalty else None
    opt = torch.optim.Adam(list(params.values()), lr=lr)
    rngs = [np.random.default_rng(int(s)) for s in seeds]
    rows = torch.arange(n, device=dev)[:, None]
    n_train = x_tr.shape[1]

    best_val = np.full(n, np.inf)
    best_epoch = np.zeros(n, dtype=int)
    best_params = {k: v.detach().clone() for k, v in params.items()}
    stopped = np.zeros(n, dtype=bool)
    curve = []
    epoch = 0
    while epoch < max_epochs and not stopped.all():
        epoch += 1
        orders = [list(batch_indices(n_train, batch_size, rng)) for rng in rngs]
        for step in range(len(orders[0])):
            idx = torch.as_tensor(np.stack([o[step] for o in orders]), device=dev)
            pred, pen = batched(params, buffers, x_tr[rows, idx])
            loss = ((pred - y_tr[rows, idx]) ** 2).mean(1).sum(-1)  # (models,): sum of task MSEs
            if has_penalty:
                loss = loss + lam * pen
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
        with torch.no_grad():
            val = ((batched(params, buffers, x_va)[0] - y_va) ** 2).mean(1).double().cpu().numpy()  # (models, tasks)
            mean_val = val.mean(1)
            curve.append(mean_val)
            better = (mean_val < best_val) & ~stopped
            best_val[better], best_epoch[better] = mean_val[better], epoch
            mask = torch.as_tensor(better, device=dev)
            for k, v in params.items():
                best_params[k][mask] = v.detach()[mask]
        stopped |= epoch - best_epoch >= patience
    with torch.no_grad():  # the test split is scored once, with each model's best weights
        test_pred, raw_penalty = batched(best_params, buffers, x_te)
        test = ((test_pred - y_te) ** 2).mean(1).double().cpu().numpy()
    return StackedFit(best_epoch=best_epoch, val=best_val, test=test, epochs=epoch,
                      val_curve=np.stack(curve, 1), penalty=raw_penalty.double().cpu().numpy())


# --------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    """Results of :func:`relatedness_sweep`.

    Attributes:
        correlations, seeds, methods: the axes.
        test: the relative test MSE (each task's MSE divided by the variance of
            its test targets, i.e. :math:`1 - R^2`, then averaged over the two
            tasks) of each method at its value chosen on validation,
            ``(correlation, method, seed)``. Seeds draw different sine terms,
            so the raw MSE's scale varies from seed to seed; the relative MSE
            does not.
        chosen: the chosen grid value, same shape (NaN for methods without one).
        best_epoch: the early-stopping epoch of the chosen model, same shape.
        parameters: trainable parameters of each method.
        grids: the grid of each method.
        grid_test, grid_val, grid_penalty: for each method with a grid, the relative
            test MSE, the validation MSE (mean of the tasks, what the choice
            minimizes) and the unscaled penalty of every grid value,
            ``(correlation, seed, value)``.
    """

    correlations: tuple[float, ...]
    seeds: tuple[int, ...]
    methods: tuple[str, ...]
    test: np.ndarray
    chosen: np.ndarray
    best_epoch: np.ndarray
    parameters: dict[str, int]
    grids: dict[str, tuple[float, ...] | None] = field(default_factory=dict)
    grid_test: dict[str, np.ndarray] = field(default_factory=dict)
    grid_val: dict[str, np.ndarray] = field(default_factory=dict)
    grid_penalty: dict[str, np.ndarray] = field(default_factory=dict)

    def scores(self, correlation: float, method: str) -> np.ndarray:
        """Relative test MSE per seed of ``method`` at ``correlation``."""
        return self.test[self.correlations.index(correlation), self.methods.index(method)]

    def verdict(self, correlation: float, a: str, b: str) -> Verdict:
        """:func:`mtl_course.stats.paired_verdict` of methods ``a`` and ``b`` (relative test MSE, lower is better)."""
        return paired_verdict(self.scores(correlation, a), self.scores(correlation, b),
                              names=(LABELS[a], LABELS[b]))


def relatedness_splits(correlation: float, seed: int, n_train: int, n_val: int, n_test: int, dim: int,
                       num_sin: int, noise: float) -> Splits:
    """Train / val / test splits of one draw of :func:`mtl_course.data.mmoe_synthetic`.

    For a fixed ``seed`` only task 2's weight vector depends on ``correlation``.
    """
    data = mmoe_synthetic(n=n_train + n_val + n_test, dim=dim, correlation=correlation, seed=seed,
                          num_sin=num_sin, noise=noise)
    cuts = np.cumsum([0, n_train, n_val, n_test])
    return Splits(*(data.subset(np.arange(a, b)) for a, b in zip(cuts[:-1], cuts[1:])))


def relatedness_sweep(correlations: Sequence[float], seeds: Sequence[int], methods: Sequence[str] = METHODS,
                      grids: Mapping[str, tuple[float, ...] | None] | None = None, n_train: int = 200,
                      n_val: int = 200, n_test: int = 2000, dim: int = 16, num_sin: int = 3, noise: float = 0.5,
                      hidden: Sequence[int] = (32, 16), lr: float = 1e-2, batch_size: int = 50,
                      max_epochs: int = 300, patience: int = 20) -> SweepResult:
    """Run the protocol of this module's docstring (PyTorch) and return every chosen model's relative test MSE."""
    import mtl_course.torch as mtl

    grids = {**DEFAULT_GRIDS, **(grids or {})}
    correlations, seeds, methods = tuple(map(float, correlations)), tuple(map(int, seeds)), tuple(methods)
    unknown = set(methods) - set(METHODS)
    if unknown or not correlations or not seeds or not methods:
        raise ValueError(f"need non-empty correlations, seeds and methods from {METHODS}, got unknown {unknown}")
    splits = {(p, s): relatedness_splits(p, s, n_train, n_val, n_test, dim, num_sin, noise)
              for p in correlations for s in seeds}
    shape = (len(correlations), len(methods), len(seeds))
    test, chosen, epochs = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, dtype=int)
    parameters = {}
    grid_test, grid_val, grid_penalty = {}, {}, {}
    for j, method in enumerate(methods):
        grid = grids.get(method)
        values = (None,) if grid is None else tuple(grid)
        runs = [(p, s, v) for p in correlations for s in seeds for v in values]
        models = []
        for _, s, v in runs:
            mtl.seed_everything(s)
            models.append(build_method(mtl, method, dim, hidden, v))
        parameters[method] = count_parameters(models[0])
        strengths = [v for _, _, v in runs] if method in _PENALIZED else None
        fit = fit_stacked(models, [splits[p, s] for p, s, _ in runs], [s for _, s, _ in runs], strengths,
                          lr=lr, batch_size=batch_size, max_epochs=max_epochs, patience=patience)
        k = len(values)
        val = fit.val.reshape(len(correlations), len(seeds), k)
        pick = val.argmin(-1)  # the value with the lowest validation MSE, per (correlation, seed)
        variance = np.array([[splits[p, s].test.y[t].var() for t in ("task1", "task2")] for p, s, _ in runs])
        mean_test = (fit.test / variance).mean(-1).reshape(len(correlations), len(seeds), k)
        best = fit.best_epoch.reshape(len(correlations), len(seeds), k)
        take = np.take_along_axis
        test[:, j] = take(mean_test, pick[..., None], -1)[..., 0]
        epochs[:, j] = take(best, pick[..., None], -1)[..., 0]
        if grid is not None:
            chosen[:, j] = np.asarray(values, dtype=float)[pick]
            grid_test[method], grid_val[method] = mean_test, val
            grid_penalty[method] = fit.penalty.reshape(val.shape)
    return SweepResult(correlations, seeds, methods, test, chosen, epochs, parameters,
                       {m: grids.get(m) for m in methods}, grid_test, grid_val, grid_penalty)


def tf_twin(result: SweepResult, correlation: float, seed: int, methods: Sequence[str] | None = None,
            n_train: int = 200, n_val: int = 200, n_test: int = 2000, dim: int = 16, num_sin: int = 3,
            noise: float = 0.5, hidden: Sequence[int] = (32, 16), lr: float = 1e-2,
            batch_size: int = 50) -> dict[str, dict[str, float]]:
    """Retrain the sweep's chosen models of one seed with each framework's ``fit``, from the same weights.

    For every method, the model with the value chosen on validation at
    ``(correlation, seed)`` is built in PyTorch (seeded as in the sweep), its
    weights are copied into the Keras twin (:func:`mtl_course.parity.copy_torch_to_tf`),
    and both are trained by their framework's ``fit`` for the sweep's
    early-stopping epoch, on the same mini-batches. Returns, per method,
    ``{"epochs", "sweep", "torch", "tf"}``: the number of epochs and the relative
    test MSE (as in :class:`SweepResult`) of the stacked trainer, of ``mtl_course.torch.fit``
    and of ``mtl_course.tf.fit``. Pass the sweep's own data settings.
    """
    import mtl_course.tf as mtl_tf
    import mtl_course.torch as mtl_torch
    from mtl_course.parity import copy_torch_to_tf

    splits = relatedness_splits(correlation, seed, n_train, n_val, n_test, dim, num_sin, noise)
    tasks = {"task1": "mse", "task2": "mse"}
    i, s = result.correlations.index(correlation), result.seeds.index(seed)
    out = {}
    for method in methods or result.methods:
        j = result.methods.index(method)
        value = None if result.grids.get(method) is None else float(result.chosen[i, j, s])
        epochs = int(result.best_epoch[i, j, s])
        mtl_torch.seed_everything(seed)
        torch_model = build_method(mtl_torch, method, dim, hidden, value)
        mtl_tf.seed_everything(seed)
        tf_model = build_method(mtl_tf, method, dim, hidden, value)
        tf_model(splits.train.x[:1])  # build the Keras model before copying into it
        copy_torch_to_tf(torch_model, tf_model)
        row = {"epochs": epochs, "sweep": float(result.test[i, j, s])}
        for name, fw, model in (("torch", mtl_torch, torch_model), ("tf", mtl_tf, tf_model)):
            fw.fit(model, splits.train, tasks, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                   progress=False)
            scores = fw.evaluate(model, splits.test, tasks)
            row[name] = float(np.mean([scores[t] / splits.test.y[t].var() for t in tasks]))
        out[method] = row
    return out
