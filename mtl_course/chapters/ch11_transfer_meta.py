r"""Multi-task learning, transfer and meta-learning on the same task family (chapter 11).

One data set per seed, a :class:`~mtl_course.data.families.SineFamily` split of
``n_train_tasks`` training tasks with ``n_per_task`` shared inputs each (plus
``n_val_per_task`` held-out inputs of the same tasks for early stopping), is
used in three ways to prepare a network ``1 -> hidden -> hidden -> 1`` (ReLU)
for a *new* task of the family, which is then learned from ``K`` examples (its
"shots"). The networks, one per entry of :data:`APPROACHES`:

* ``"random"``: the baseline, a random initialisation;
* ``"pooled"``: pretrained on the pooled examples of all training tasks
  (transfer by pretraining). With shared inputs, the pooled mean squared
  error is the mean squared error to the tasks' mean target plus a constant,
  so it is trained on that mean target (the same gradients, 20 times cheaper);
* ``"multi-task"``: a hard-sharing network, one linear head per training task
  (stored as one output layer with ``n_train_tasks`` outputs), trained on the
  mean of the task losses; its handed-over output layer is the mean of the heads;
* ``"reptile"``: meta-learned with Reptile (Nichol et al. 2018) on the same
  training tasks, one task per outer step: its inner loop is one pass over the
  task's examples in ``inner_steps`` SGD steps on minibatches of ``inner_shots``
  (as in the authors' sine-wave demo), and the outer step treats
  :math:`\theta - \phi` as a gradient for Adam (the variant of their section 3;
  ``outer_optimizer="sgd"`` gives the plain update of
  :func:`mtl_course.torch.meta.reptile_step`).

Pre-training follows the course's protocol (DESIGN section 6): the pooled and
the multi-task network are trained by full-batch Adam with early stopping on the
held-out inputs (the best epoch's weights are kept); Reptile is stopped early on
*meta-validation* tasks (new tasks of the family, not the test tasks): every
``eval_every`` outer steps the mean error after ``inner_steps`` SGD steps on
``inner_shots`` examples of each is measured, the best checkpoint is kept, and a
run stops after ``meta_patience`` measurements without improvement (longer than
the others' patience: one task per step makes its curve noisy). Each pre-training
gets the same grid of three Adam learning rates, chosen per seed on its own
validation criterion.

Every network is then adapted to a new task in both ways of :data:`ADAPTATIONS`:

* ``"ridge head"``: :class:`LinearHeadLearner`, a new linear head fitted in
  closed form by ridge regression on the frozen hidden representation;
* ``"fine-tune"``: :class:`FineTuneLearner`, ``adapt_steps`` full-batch SGD
  steps on every weight (:func:`mtl_course.torch.meta.adapt`).

Each adaptation has a grid of three settings (the ridge penalty, or the SGD
step size), chosen per network, per ``K`` and per seed on the meta-validation
tasks; the chosen setting is scored on ``n_test_tasks`` other new tasks (mean
squared error on a 100-point grid, averaged over the tasks).

All seeds (and all grid values) are trained at once: the networks are stacked
along a leading model axis (:func:`stack_params`, :func:`stacked_forward`),
every model's loss is summed, and since the models share no weight each one
gets exactly its own gradient. The networks are float64: they are tiny, and
the printed errors then do not depend on the CPU's float32 kernels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from mtl_course.checks import check_count, check_rate
from mtl_course.data.families import SineFamily, SineTask
from mtl_course.torch.meta import adapt
from mtl_course.torch.models import mlp

__all__ = ["ADAPTATIONS", "APPROACHES", "Comparison", "FineTuneLearner", "LinearHeadLearner", "adaptation_errors",
           "compare_few_shot", "few_shot_errors", "fit_stacked", "init_mlp", "load_params", "reptile_stacked", "sgd_stacked",
           "stack_params", "stacked_forward"]

#: The networks, in the order of the chapter's table.
APPROACHES = ("random", "pooled", "multi-task", "reptile")

#: The two ways every network is adapted to a new task (see the module docstring).
ADAPTATIONS = ("ridge head", "fine-tune")


def _tensor(x: np.ndarray, model: nn.Module) -> torch.Tensor:
    """``x`` as a tensor in the dtype and on the device of ``model``'s parameters."""
    param = next(model.parameters())
    return torch.as_tensor(np.asarray(x, dtype=np.float64), device=param.device).to(param.dtype)


@dataclass
class FineTuneLearner:
    """Learns a new task by fine-tuning every weight of ``init`` with :func:`~mtl_course.torch.meta.adapt`."""

    init: nn.Module
    steps: int = 32
    lr: float = 0.02

    def predict(self, x: np.ndarray, y: np.ndarray, x_query: np.ndarray) -> np.ndarray:
        """The prediction at ``x_query`` after fine-tuning on the examples ``(x, y)``."""
        model = adapt(self.init, x, y, self.steps, self.lr)
        with torch.no_grad():
            return model(_tensor(x_query, model)).cpu().numpy()


@dataclass
class LinearHeadLearner:
    r"""Learns a new task as a ridge-regression head on a frozen shared representation ``trunk``.

    With features :math:`F = [h(x), 1]`, the head is
    :math:`w = (F^\top F + \lambda D)^{-1} F^\top y`, where :math:`D` is the
    identity with a 0 for the bias (the bias is not shrunk).
    """

    trunk: nn.Module
    ridge: float = 1e-2

    def features(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            h = self.trunk(_tensor(x, self.trunk)).cpu().numpy().astype(np.float64)
        return np.hstack([h, np.ones((len(h), 1))])

    def predict(self, x: np.ndarray, y: np.ndarray, x_query: np.ndarray) -> np.ndarray:
        """The prediction at ``x_query`` of the ridge head fitted on the examples ``(x, y)``."""
        F = self.features(x)
        penalty = self.ridge * np.eye(F.shape[1])
        penalty[-1, -1] = 0.0
        w = np.linalg.solve(F.T @ F + penalty, F.T @ np.asarray(y, dtype=np.float64))
        return self.features(x_query) @ w


# --------------------------------------------------------------------------
# many MLPs at once: parameters stacked along a leading model axis
# --------------------------------------------------------------------------

Params = list[torch.Tensor]


def _linears(net: nn.Module) -> list[nn.Linear]:
    layers = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError("the network has no linear layer")
    return layers


def stack_params(nets: Sequence[nn.Module]) -> Params:
    """The weights and biases of MLPs of one shape (:func:`~mtl_course.torch.models.mlp`), stacked:
    ``[W_1, b_1, W_2, b_2, ...]`` with ``W_l`` of shape ``(models, out, in)`` (copies)."""
    if not nets:
        raise ValueError("nets is empty")
    layers = [_linears(net) for net in nets]
    shapes = {tuple(tuple(layer.weight.shape) for layer in ls) for ls in layers}
    if len(shapes) != 1:
        raise ValueError(f"the networks differ in shape: {sorted(shapes)}")
    out: Params = []
    for i in range(len(layers[0])):
        out.append(torch.stack([ls[i].weight.detach() for ls in layers]).clone())
        out.append(torch.stack([ls[i].bias.detach() for ls in layers]).clone())
    return out


def load_params(net: nn.Module, params: Params, index: int) -> nn.Module:
    """Copy model ``index`` of the stack ``params`` into ``net`` (in place); returns ``net``."""
    layers = _linears(net)
    if 2 * len(layers) != len(params):
        raise ValueError(f"the network has {len(layers)} linear layers, the stack {len(params) // 2}")
    with torch.no_grad():
        for layer, weight, bias in zip(layers, params[0::2], params[1::2]):
            layer.weight.copy_(weight[index])
            layer.bias.copy_(bias[index])
    return net


def stacked_forward(params: Params, x: torch.Tensor, layers: int | None = None) -> torch.Tensor:
    """The stacked MLPs on ``x`` of shape ``(models, n, in)``: ``(models, n, out)``.

    ReLU after every layer but the last; ``layers`` stops after that many
    layers (``len(params) // 2 - 1``: the hidden representation, after its ReLU).
    """
    total = len(params) // 2
    h = x
    for i in range(total if layers is None else layers):
        h = torch.baddbmm(params[2 * i + 1].unsqueeze(1), h, params[2 * i].transpose(1, 2))
        if i < total - 1:
            h = torch.relu(h)
    return h


def _row_sum(t: torch.Tensor) -> torch.Tensor:
    """``t.sum(dim=1)`` for ``t`` of shape ``(models, n, k)``, as a matrix product.

    ATen's vectorised reductions add in an order that depends on the CPU's
    instruction set (``ATEN_CPU_CAPABILITY``), so over thousands of training
    steps the last bits grow into different networks; the matrix product (BLAS)
    and single elementwise operations give the same bits on every capability.
    """
    return torch.bmm(t.new_ones(t.shape[0], 1, t.shape[1]), t)[:, 0]


def _mse(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each stacked model's mean squared error, shape ``(models,)``."""
    d = stacked_forward(params, x) - y
    d = (d * d).reshape(d.shape[0], -1, 1)
    return _row_sum(d)[:, 0] / d.shape[1]


def _mse_grad(params: Params, x: torch.Tensor, y: torch.Tensor) -> Params:
    """The gradient of each stacked model's MSE w.r.t. its own weights, by hand-written backpropagation.

    The same numbers as ``torch.autograd.grad(_mse(params, x, y).sum(), params)``
    (the tests check it), without building a graph: Reptile's and the
    fine-tuning's many tiny steps are dominated by autograd's overhead.
    """
    total = len(params) // 2
    inputs, pre = [], []
    h = x
    for i in range(total):
        inputs.append(h)
        z = torch.baddbmm(params[2 * i + 1].unsqueeze(1), h, params[2 * i].transpose(1, 2))
        pre.append(z)
        h = torch.relu(z) if i < total - 1 else z
    delta = (h - y) * (2.0 / (h.shape[1] * h.shape[2]))
    ones = h.new_ones(h.shape[0], 1, h.shape[1])  # the bias gradients are row sums, as in _row_sum
    grads: Params = [None] * len(params)  # type: ignore[list-item]
    for i in reversed(range(total)):
        if i < total - 1:  # ReLU's derivative: delta where the pre-activation is positive, else 0
            delta = torch.ops.aten.threshold_backward(delta, pre[i], 0)
        grads[2 * i] = torch.bmm(delta.transpose(1, 2), inputs[i])
        grads[2 * i + 1] = torch.bmm(ones, delta)[:, 0]
        if i:
            delta = torch.bmm(delta, params[2 * i])
    return grads


def _per_model(rate: float | torch.Tensor | np.ndarray, like: torch.Tensor) -> torch.Tensor:
    rate = torch.as_tensor(rate, dtype=like.dtype, device=like.device)
    return rate.reshape(-1, *([1] * (like.dim() - 1))) if rate.dim() else rate


def sgd_stacked(params: Params, x: torch.Tensor, y: torch.Tensor, steps: int,
                lr: float | np.ndarray | torch.Tensor) -> Params:
    """``steps`` full-batch SGD steps on each stacked model's MSE (new tensors; ``params`` is unchanged).

    Model ``m`` takes steps of ``lr[m]`` (or one ``lr`` for all) on its own
    examples ``(x[m], y[m])``: the stacked twin of :func:`mtl_course.torch.meta.adapt`.
    A model whose loss overflows ends with non-finite weights; the others are not affected.
    """
    check_count(steps, "steps", 0)
    current = [p.detach() for p in params]
    rates = [_per_model(lr, p) for p in current]
    with torch.no_grad():
        for _ in range(steps):
            current = [p - r * g for p, r, g in zip(current, rates, _mse_grad(current, x, y))]
    return current


@dataclass
class StackedRun:
    """What :func:`fit_stacked` and :func:`reptile_stacked` return, one entry per stacked model.

    Attributes:
        params: the weights at each model's best validation value.
        best: each model's best validation value.
        best_at: the epoch (or outer step) of that value, from 1.
        at: the epochs (or outer steps) at which the validation value was measured.
        curve: the validation values, ``(models, len(at))``.
        stopped_at: the epoch (or outer step) at which each model had gone
            ``patience`` evaluations without improvement, 0 where it had not
            when training ended (the cap ended it).
    """

    params: Params
    best: np.ndarray
    best_at: np.ndarray
    at: np.ndarray
    curve: np.ndarray
    stopped_at: np.ndarray


class _Best:
    """Each model's best validation value and weights; counts evaluations without improvement.

    A model that has gone ``patience`` evaluations without improvement has
    stopped: its best value and weights are final, even while the other
    models of the stack go on training.
    """

    def __init__(self, params: Params, patience: int) -> None:
        self.patience = check_count(patience, "patience")
        n = params[0].shape[0]
        self.value, self.at = np.full(n, np.inf), np.zeros(n, dtype=int)
        self.since = np.zeros(n, dtype=int)
        self.stopped_at = np.zeros(n, dtype=int)
        self.params = [p.detach().clone() for p in params]
        self.times: list[int] = []
        self.curve: list[np.ndarray] = []

    def update(self, at: int, value: np.ndarray, params: Params) -> bool:
        """Record ``value`` (non-finite counts as no improvement); True when every model has stopped."""
        value = np.where(np.isfinite(value), value, np.inf)
        self.times.append(at)
        self.curve.append(value)
        better = (value < self.value) & (self.stopped_at == 0)
        self.value[better], self.at[better] = value[better], at
        self.since = np.where(better, 0, self.since + 1)
        self.stopped_at[(self.since >= self.patience) & (self.stopped_at == 0)] = at
        mask = torch.as_tensor(better, device=self.params[0].device)
        for kept, p in zip(self.params, params):
            kept[mask] = p.detach()[mask]
        return bool((self.since >= self.patience).all())

    def run(self) -> StackedRun:
        return StackedRun(self.params, self.value, self.at, np.array(self.times), np.stack(self.curve, 1),
                          self.stopped_at)


class _Adam:
    """Adam (Kingma and Ba 2015, ``torch.optim.Adam``'s defaults) on stacked weights, one rate per tensor.

    Written out in single elementwise operations, which round the same way on
    every CPU (a fused kernel may use FMA instructions on one CPU and not on
    another). Adam works element by element, so each stacked model follows
    exactly its own run.
    """

    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def __init__(self, params: Params, rates: Sequence[float | torch.Tensor]) -> None:
        self.rates = list(rates)
        self.first = [torch.zeros_like(p) for p in params]
        self.second = [torch.zeros_like(p) for p in params]
        self.count = 0

    def step(self, params: Params, grads: Params, rows: torch.Tensor | None = None) -> Params:
        """The weights after one step along ``grads`` (new tensors).

        With ``rows``, ``params`` and ``grads`` hold only those stacked models
        (the others have stopped); their moments are updated, the others' kept.
        """
        b1, b2 = self.beta1, self.beta2
        self.count += 1
        first, second, rates = self.first, self.second, self.rates
        if rows is not None:
            first, second = [m[rows] for m in first], [v[rows] for v in second]
            rates = [r[rows] if isinstance(r, torch.Tensor) and r.dim() else r for r in rates]
        first = [m * b1 + g * (1 - b1) for m, g in zip(first, grads)]
        second = [v * b2 + (g * g) * (1 - b2) for v, g in zip(second, grads)]
        if rows is None:
            self.first, self.second = first, second
        else:
            for kept, new in zip(self.first + self.second, first + second):
                kept[rows] = new
        c1, c2 = 1 - b1 ** self.count, 1 - b2 ** self.count
        return [p - (m / c1) / (torch.sqrt(v / c2) + self.eps) * r for p, m, v, r in zip(params, first, second, rates)]


def fit_stacked(params: Params, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
                lr: float = 1e-2, max_epochs: int = 3000, patience: int = 100) -> StackedRun:
    """Full-batch Adam on each stacked model's MSE, with early stopping on its validation MSE.

    Adam (Kingma and Ba 2015, with ``torch.optim.Adam``'s defaults) is written out
    in single elementwise operations, which round the same way on every CPU
    (a fused kernel may use FMA instructions on one CPU and not on another).

    Model ``m`` trains on ``(x[m], y[m])`` and is validated on
    ``(x_val[m], y_val[m])`` after every epoch (one step); its weights of the
    best validation epoch before its own stop (``patience`` epochs without
    improvement) are kept. Training ends when every model has stopped, or after
    ``max_epochs``. Adam works element by element, so each model follows exactly
    its own run.
    """
    check_rate(lr, "lr")
    max_epochs = check_count(max_epochs, "max_epochs")
    weights = [p.detach().clone() for p in params]
    adam = _Adam(weights, [lr] * len(weights))
    best = _Best(weights, patience)
    with torch.no_grad():
        for epoch in range(1, max_epochs + 1):
            weights = adam.step(weights, _mse_grad(weights, x, y))
            if best.update(epoch, _mse(weights, x_val, y_val).cpu().numpy(), weights):
                break
    return best.run()


def reptile_stacked(params: Params, sample: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]],
                    seeds: Sequence[int], outer_lr: float | np.ndarray, monitor: Callable[[Params], np.ndarray],
                    meta_steps: int = 3000, inner_steps: int = 5, inner_lr: float = 0.02, eval_every: int = 250,
                    patience: int = 4, minibatch: int | None = None, outer: str = "sgd") -> StackedRun:
    r"""Reptile on each stacked model, one task per outer step, with early stopping on ``monitor``.

    At every outer step model ``m`` draws its task's examples with
    ``sample(m, rng_m)`` (``rng_m = np.random.default_rng(seeds[m])``: models
    with the same seed see the same tasks) and takes ``inner_steps`` SGD steps of
    ``inner_lr`` from :math:`\theta_m` to :math:`\phi_m`: each on all the drawn
    examples (``minibatch=None``), or on successive slices of ``minibatch``
    examples (cycling through them; the Reptile authors' sine-wave demo takes one
    pass over a task's examples in minibatches). Then, with ``outer="sgd"``, it
    moves :math:`\theta_m \leftarrow \theta_m + \varepsilon_m (\phi_m - \theta_m)`,
    the update of :func:`mtl_course.torch.meta.reptile_step` with one task; with
    ``outer="adam"`` it treats :math:`\theta_m - \phi_m` as a gradient and takes an
    Adam step of rate ``outer_lr[m]`` (Nichol et al. 2018, section 3).
    Every ``eval_every`` steps ``monitor(params)`` gives each model's
    validation value (lower is better); the best checkpoint is kept, a model
    that has gone ``patience`` evaluations without improvement stops (its
    checkpoint is final and it no longer trains, which saves its share of the
    work), and training ends when every model has stopped, or after ``meta_steps``.
    """
    meta_steps, eval_every = check_count(meta_steps, "meta_steps"), check_count(eval_every, "eval_every")
    if outer not in ("sgd", "adam"):
        raise ValueError(f"outer must be 'sgd' or 'adam', got {outer!r}")
    if minibatch is not None:
        check_count(minibatch, "minibatch")
    n = params[0].shape[0]
    if len(seeds) != n:
        raise ValueError(f"seeds needs one entry per stacked model ({n}), got {len(seeds)}")
    rngs = [np.random.default_rng(int(s)) for s in seeds]
    theta = [p.detach().clone() for p in params]
    rates = [_per_model(outer_lr, p) for p in theta]
    adam = _Adam(theta, rates) if outer == "adam" else None
    best = _Best(theta, patience)
    dtype, dev = theta[0].dtype, theta[0].device
    active = np.arange(n)  # the models still training: a stopped model's checkpoint is final
    for step in range(1, meta_steps + 1):
        examples = [sample(int(m), rngs[m]) for m in active]
        x = torch.as_tensor(np.stack([e[0] for e in examples]), dtype=dtype, device=dev)
        y = torch.as_tensor(np.stack([e[1] for e in examples]), dtype=dtype, device=dev)
        rows = None if len(active) == n else torch.as_tensor(active, device=dev)
        current = theta if rows is None else [t[rows] for t in theta]
        if minibatch is None:
            phi = sgd_stacked(current, x, y, inner_steps, inner_lr)
        else:
            if x.shape[1] % minibatch:
                raise ValueError(f"sample gave {x.shape[1]} examples, not a multiple of minibatch={minibatch}")
            phi = current
            for i in range(inner_steps):
                batch = slice(i * minibatch % x.shape[1], i * minibatch % x.shape[1] + minibatch)
                phi = sgd_stacked(phi, x[:, batch], y[:, batch], 1, inner_lr)
        if adam is not None:
            new = adam.step(current, [t - p for t, p in zip(current, phi)], rows)
        elif rows is None:
            new = [t + r * (p - t) for t, r, p in zip(current, rates, phi)]
        else:
            new = [t + (r[rows] if r.dim() else r) * (p - t) for t, r, p in zip(current, rates, phi)]
        if rows is None:
            theta = new
        else:
            for t, v in zip(theta, new):
                t[rows] = v
        if step % eval_every == 0:
            if best.update(step, monitor(theta), theta):
                break
            active = np.flatnonzero(best.stopped_at == 0)
    return best.run()


# --------------------------------------------------------------------------
# adaptation to new tasks, every setting of a grid at once
# --------------------------------------------------------------------------


def _ridge_predict(features: np.ndarray, y: np.ndarray, query: np.ndarray, ridge: float) -> np.ndarray:
    """:class:`LinearHeadLearner`'s head on features ``[h, 1]`` (the bias not shrunk)."""
    penalty = ridge * np.eye(features.shape[1])
    penalty[-1, -1] = 0.0
    return query @ np.linalg.solve(features.T @ features + penalty, features.T @ y)


def adaptation_errors(params: Params, tasks: Sequence[Sequence[SineTask]],
                      support: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]], shots: Sequence[int],
                      grid: np.ndarray, ridges: Sequence[float], adapt_lrs: Sequence[float],
                      adapt_steps: int = 32) -> dict[str, np.ndarray]:
    """Mean test MSE of both adaptations at every grid setting: ``{adaptation: (models, shots, settings)}``.

    Stacked model ``m`` is adapted to each task ``tasks[m][i]`` from the first
    ``K`` examples of ``support[m][i]``, for each ``K`` in ``shots``: a ridge
    head (:class:`LinearHeadLearner`) for each penalty in ``ridges``, and
    ``adapt_steps`` SGD steps (:class:`FineTuneLearner`) for each rate in
    ``adapt_lrs``. The error is the MSE on ``grid``, averaged over the tasks;
    a fine-tuning that diverges scores inf.
    """
    n_models, n_tasks = params[0].shape[0], len(tasks[0])
    dtype, dev = params[0].dtype, params[0].device
    hidden = len(params) // 2 - 1
    truth = np.stack([np.stack([task(grid) for task in row]) for row in tasks])  # (models, tasks, grid, 1)
    with torch.no_grad():
        grid_t = torch.as_tensor(np.broadcast_to(grid, (n_models, *grid.shape)).copy(), dtype=dtype, device=dev)
        grid_h = stacked_forward(params, grid_t, hidden).cpu().numpy()
    out = {"ridge head": np.zeros((n_models, len(shots), len(ridges))),
           "fine-tune": np.zeros((n_models, len(shots), len(adapt_lrs)))}
    n_lr = len(adapt_lrs)
    for j, k in enumerate(shots):
        x = np.stack([np.stack([s[0][:k] for s in row]) for row in support])  # (models, tasks, k, 1)
        y = np.stack([np.stack([s[1][:k] for s in row]) for row in support]).astype(np.float64)
        with torch.no_grad():
            h = stacked_forward(params, torch.as_tensor(x.reshape(n_models, -1, 1), dtype=dtype, device=dev),
                                hidden).cpu().numpy().reshape(n_models, n_tasks, k, -1)
        ones = np.ones((k, 1))
        query_ones = np.ones((len(grid), 1))
        for m in range(n_models if len(ridges) else 0):
            query = np.hstack([grid_h[m], query_ones])
            for i in range(n_tasks):
                features = np.hstack([h[m, i], ones])
                for r, ridge in enumerate(ridges):
                    prediction = _ridge_predict(features, y[m, i], query, ridge)
                    out["ridge head"][m, j, r] += np.mean((prediction - truth[m, i]) ** 2) / n_tasks
        # fine-tuning: one stacked model per (model, task, rate)
        copies = n_tasks * n_lr
        start = [p.repeat_interleave(copies, dim=0) for p in params]
        rates = np.tile(np.asarray(adapt_lrs, dtype=np.float64), n_models * n_tasks)
        x_t = torch.as_tensor(np.repeat(x.reshape(n_models * n_tasks, k, 1), n_lr, axis=0), dtype=dtype, device=dev)
        y_t = torch.as_tensor(np.repeat(y.reshape(n_models * n_tasks, k, 1), n_lr, axis=0), dtype=dtype, device=dev)
        tuned = sgd_stacked(start, x_t, y_t, adapt_steps, rates)
        with torch.no_grad():
            prediction = stacked_forward(tuned, grid_t.repeat_interleave(copies, dim=0)).cpu().numpy()
        with np.errstate(over="ignore", invalid="ignore"):
            mse = ((prediction.reshape(n_models, n_tasks, n_lr, -1) - truth[..., 0][:, :, None, :]) ** 2).mean(-1)
        out["fine-tune"][:, j] = np.where(np.isfinite(mse), mse, np.inf).mean(1)
    return out


# --------------------------------------------------------------------------
# the chapter's comparison
# --------------------------------------------------------------------------


@dataclass
class Comparison:
    """What :func:`compare_few_shot` returns.

    Attributes:
        seeds, shots: the axes.
        errors: ``errors[seed][(approach, adaptation)][K]``, the test MSE at
            the adaptation setting chosen on the meta-validation tasks.
        chosen: ``chosen[seed][(approach, adaptation)][K]``, that setting
            (the ridge penalty, or the fine-tuning rate).
        val_errors / test_errors: ``(approach, adaptation) -> (seeds, shots, settings)``,
            every setting's mean MSE on the meta-validation and the test tasks.
        pretraining: ``approach -> {"grid", "chosen", "runs"}`` for "pooled",
            "multi-task" and "reptile": the step-size grid, the chosen value per
            seed, and one :class:`StackedRun` per grid value (models = seeds).
        nets: ``nets[seed][approach]``, the prepared networks (float64 ``nn.Sequential``).
        settings: the adaptation grids, ``{"ridge head": ridges, "fine-tune": adapt_lrs}``.
    """

    seeds: tuple[int, ...]
    shots: tuple[int, ...]
    errors: dict = field(default_factory=dict)
    chosen: dict = field(default_factory=dict)
    val_errors: dict = field(default_factory=dict)
    test_errors: dict = field(default_factory=dict)
    pretraining: dict = field(default_factory=dict)
    nets: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


def init_mlp(sizes: Sequence[int], seed: int) -> nn.Sequential:
    r"""A float64 :func:`~mtl_course.torch.models.mlp` with PyTorch's default initialisation, drawn by numpy.

    Every weight and bias of a layer with ``fan_in`` inputs is drawn from
    :math:`U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})`, the distribution of
    ``nn.Linear``'s own initialisation, layer by layer from
    ``np.random.default_rng([seed, 3])``: bit-identical on every CPU (torch's
    ``uniform_`` kernel rounds differently on different instruction sets). Two
    sizes that agree on their first layers get the same first layers.
    """
    rng = np.random.default_rng([seed, 3])
    net = mlp(list(sizes)).double()
    with torch.no_grad():
        for layer in _linears(net):
            bound = 1.0 / math.sqrt(layer.in_features)
            layer.weight.copy_(torch.as_tensor(rng.uniform(-bound, bound, size=tuple(layer.weight.shape)),
                                               device=layer.weight.device))
            layer.bias.copy_(torch.as_tensor(rng.uniform(-bound, bound, size=tuple(layer.bias.shape)),
                                             device=layer.bias.device))
    return net


def _new_tasks(family: SineFamily, seed: int, stream: int, n_tasks: int, n_examples: int):
    rng = np.random.default_rng([seed, stream])
    tasks = family.sample_tasks(n_tasks, rng)
    return tasks, [family.sample(task, n_examples, rng) for task in tasks]


def compare_few_shot(seeds: Sequence[int] = (0, 1, 2, 3, 4), shots: Sequence[int] = (2, 5, 10, 20),
                     n_train_tasks: int = 20, n_per_task: int = 50, n_val_per_task: int = 25,
                     n_val_tasks: int = 10, n_test_tasks: int = 10, family: SineFamily | None = None,
                     hidden: int = 40, pretrain_lrs: Sequence[float] = (3e-3, 1e-2, 3e-2), max_epochs: int = 10000,
                     patience: int = 100, outer_lrs: Sequence[float] = (3e-3, 1e-2, 3e-2), meta_steps: int = 30000,
                     eval_every: int = 250, meta_patience: int = 12, inner_shots: int = 10, inner_steps: int = 5,
                     inner_lr: float = 0.02, ridges: Sequence[float] = (0.01, 0.1, 1.0),
                     adapt_lrs: Sequence[float] = (0.001, 0.003, 0.01), adapt_steps: int = 32,
                     outer_optimizer: str = "adam") -> Comparison:
    """The chapter's experiment (see the module docstring), every seed at once.

    Seed ``s`` draws its training tasks, training and held-out inputs from
    ``np.random.default_rng(s)``, its meta-validation tasks and their examples
    from ``default_rng([s, 7])`` and its test tasks and examples from
    ``default_rng([s, 11])`` (as :func:`few_shot_errors`); every network of a
    seed starts from the weights of :func:`init_mlp` with seed ``s``. ``K`` examples
    are the first ``K`` of ``max(shots)`` draws.
    """
    family = family if family is not None else SineFamily()
    seeds, shots = tuple(int(s) for s in seeds), tuple(check_count(k, "shots") for k in shots)
    if not seeds or not shots:
        raise ValueError("seeds and shots must not be empty")
    check_count(n_train_tasks, "n_train_tasks")
    if check_count(inner_shots, "inner_shots") * check_count(inner_steps, "inner_steps") > n_per_task:
        raise ValueError(f"inner_steps={inner_steps} minibatches of inner_shots={inner_shots} are more than the "
                         f"{n_per_task} examples per training task")
    result = Comparison(seeds, shots, settings={"ridge head": tuple(ridges), "fine-tune": tuple(adapt_lrs)})

    trains, vals, inits, mt_inits = [], [], [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        tasks = family.sample_tasks(n_train_tasks, rng)
        trains.append(family.multitask_split(tasks, n_per_task, rng))
        vals.append(family.multitask_split(tasks, n_val_per_task, rng))
        inits.append(init_mlp([1, hidden, hidden, 1], seed))
        mt_inits.append(init_mlp([1, hidden, hidden, n_train_tasks], seed))  # the same trunk; a head per task
    names = list(trains[0].task_names)

    def stacked(splits, key):
        x = np.stack([s.x for s in splits]).astype(np.float64)
        y = np.stack([np.concatenate([s.y[t] for t in names], axis=1) for s in splits]).astype(np.float64)
        y = y.mean(axis=2, keepdims=True) if key == "pooled" else y
        device = next(inits[0].parameters()).device
        return torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)

    start = {"pooled": stack_params(inits), "multi-task": stack_params(mt_inits)}
    prepared: dict[str, Params] = {"random": stack_params(inits)}
    for key in ("pooled", "multi-task"):
        (x, y), (xv, yv) = stacked(trains, key), stacked(vals, key)
        runs = [fit_stacked(start[key], x, y, xv, yv, lr, max_epochs, patience) for lr in pretrain_lrs]
        pick = np.argmin(np.stack([r.best for r in runs]), axis=0)
        prepared[key] = [torch.stack([runs[g].params[i][m] for m, g in enumerate(pick)]) for i in range(len(start[key]))]
        result.pretraining[key] = {"grid": tuple(pretrain_lrs), "chosen": [pretrain_lrs[g] for g in pick], "runs": runs}
    # the multi-task network hands over the mean of its heads as its output layer
    for i in (-2, -1):  # numpy's mean: the same bits on every CPU
        head = prepared["multi-task"][i]
        prepared["multi-task"][i] = torch.as_tensor(head.cpu().numpy().mean(axis=1, keepdims=True), device=head.device)

    val_tasks = [_new_tasks(family, s, 7, n_val_tasks, max(max(shots), inner_shots)) for s in seeds]
    test_tasks = [_new_tasks(family, s, 11, n_test_tasks, max(shots)) for s in seeds]
    grid = family.grid(100).astype(np.float64)

    def monitor(params: Params) -> np.ndarray:
        """Each model's mean MSE on its seed's meta-validation tasks after Reptile's own inner loop."""
        per_seed = len(params[0]) // len(seeds)
        tasks = [val_tasks[m // per_seed][0] for m in range(len(params[0]))]
        support = [val_tasks[m // per_seed][1] for m in range(len(params[0]))]
        return adaptation_errors(params, tasks, support, (inner_shots,), grid, (), (inner_lr,),
                                 inner_steps)["fine-tune"][:, 0, 0]

    n_seeds = len(seeds)
    train_y = [np.concatenate([s.y[t] for t in names], axis=1) for s in trains]

    def sample(m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s = m // len(outer_lrs)
        task = rng.integers(len(names))
        index = rng.permutation(n_per_task)[:inner_steps * inner_shots]
        return trains[s].x[index], train_y[s][index, task:task + 1]

    # every outer step size at once: model m is seed m // len(outer_lrs), step size m % len(outer_lrs)
    repeated = [p.repeat_interleave(len(outer_lrs), dim=0) for p in stack_params(inits)]
    run = reptile_stacked(repeated, sample, [s for s in seeds for _ in outer_lrs],
                          np.tile(np.asarray(outer_lrs, dtype=np.float64), n_seeds), monitor, meta_steps,
                          inner_steps, inner_lr, eval_every, meta_patience, inner_shots, outer_optimizer)
    by_lr = run.best.reshape(n_seeds, len(outer_lrs))
    pick = np.argmin(by_lr, axis=1)
    rows = [s * len(outer_lrs) + g for s, g in enumerate(pick)]
    prepared["reptile"] = [p[rows] for p in run.params]
    result.pretraining["reptile"] = {
        "grid": tuple(outer_lrs), "chosen": [outer_lrs[g] for g in pick],
        "runs": [StackedRun([p[g::len(outer_lrs)] for p in run.params], run.best[g::len(outer_lrs)],
                            run.best_at[g::len(outer_lrs)], run.at, run.curve[g::len(outer_lrs)],
                            run.stopped_at[g::len(outer_lrs)])
                 for g in range(len(outer_lrs))]}

    for approach in APPROACHES:
        val = adaptation_errors(prepared[approach], [t for t, _ in val_tasks], [s for _, s in val_tasks], shots,
                                grid, ridges, adapt_lrs, adapt_steps)
        test = adaptation_errors(prepared[approach], [t for t, _ in test_tasks], [s for _, s in test_tasks], shots,
                                 grid, ridges, adapt_lrs, adapt_steps)
        for adaptation in ADAPTATIONS:
            key = (approach, adaptation)
            result.val_errors[key], result.test_errors[key] = val[adaptation], test[adaptation]
            best = np.argmin(val[adaptation], axis=2)  # (seeds, shots)
            grid_values = result.settings[adaptation]
            for i, seed in enumerate(seeds):
                result.errors.setdefault(seed, {})[key] = {k: float(test[adaptation][i, j, best[i, j]])
                                                           for j, k in enumerate(shots)}
                result.chosen.setdefault(seed, {})[key] = {k: grid_values[best[i, j]] for j, k in enumerate(shots)}
    for i, seed in enumerate(seeds):
        result.nets[seed] = {a: load_params(mlp([1, hidden, hidden, 1]).double(), prepared[a], i) for a in APPROACHES}
    return result


def few_shot_errors(learners: dict, family: SineFamily, shots: Sequence[int], n_test_tasks: int = 10,
                    seed: int = 0) -> dict[str, dict[int, float]]:
    """Each learner's mean test MSE on ``n_test_tasks`` new tasks, for each number of examples in ``shots``.

    Every learner sees the same new tasks and the same examples; the ``K``
    examples are the first ``K`` of ``max(shots)`` draws, so larger ``K``
    adds examples to smaller ones. ``learners`` maps any key to an object
    with ``predict(x, y, x_query)``.
    """
    shots = [check_count(k, "shots") for k in shots]
    if not shots:
        raise ValueError("shots is empty")
    rng = np.random.default_rng([seed, 11])
    tasks = family.sample_tasks(n_test_tasks, rng)
    grid = family.grid(100)
    support = [family.sample(task, max(shots), rng) for task in tasks]
    errors: dict[str, dict[int, float]] = {}
    for name, learner in learners.items():
        errors[name] = {}
        for k in shots:
            mse = [float(np.mean((learner.predict(x[:k], y[:k], grid) - task(grid)) ** 2))
                   for task, (x, y) in zip(tasks, support)]
            errors[name][k] = float(np.mean(mse))
    return errors

