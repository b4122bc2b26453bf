"""The multi-task training loop in TensorFlow, twin of :mod:`mtl_course.torch.train`.

Same functions, arguments, defaults and :class:`~mtl_course.core.tasks.History` as the PyTorch
version: :func:`fit`, :func:`evaluate`, :func:`predict`, :func:`save`,
:func:`load`. ``fit`` compiles its training step with ``tf.function`` (no XLA)
for the built-in weightings but GradNorm (their weights are drawn on the host
and passed in as a tensor) and for the built-in aggregators (whose small
``T x T`` solve runs through ``tf.numpy_function``); GradNorm, weightings of
your own and aggregator functions of your own run eagerly.
"""

from __future__ import annotations

import functools

from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import tqdm

from mtl_course.core import tasks as core_tasks
from mtl_course.core.tasks import History, Task
from mtl_course.core.weighting import gradnorm_layer_index
from mtl_course.data.types import MultiTaskSplit
from mtl_course.tf.runtime import device as default_device
from mtl_course.tf.weighting import (DWA, RLW, WEIGHTINGS, EqualWeighting, GradNorm, StaticWeighting,
                                     UncertaintyWeighting, Weighting)

Data = MultiTaskSplit | tuple[np.ndarray, Mapping[str, np.ndarray]]
Method = Weighting | str | Callable[[tf.Tensor], tf.Tensor]

__all__ = ["History", "Task", "evaluate", "fit", "load", "predict", "save", "task_loss"]


def task_loss(name: str, task: Task, prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """The mean loss of one task (see :class:`~mtl_course.core.tasks.Task` for the built-in losses)."""
    if not isinstance(task.loss, str):
        return task.loss(prediction, target)
    shape = core_tasks.aligned_shape(name, tuple(prediction.shape), tuple(target.shape), task.loss)
    if task.loss == "cross_entropy":
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=prediction)
        return tf.reduce_mean(per_example)
    prediction = tf.reshape(prediction, shape)
    target = tf.cast(target, prediction.dtype)
    if task.loss == "mse":
        return tf.reduce_mean(tf.square(prediction - target))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=prediction))


def resolve_method(method: Method, tasks: Mapping[str, Task], seed: int | None = None) -> Weighting | Callable:
    """A weighting (bound to ``tasks``) or an aggregator function; see the PyTorch twin."""
    names = list(tasks)
    if isinstance(method, Weighting):
        return method.bind(names)
    if isinstance(method, str):
        if method == "uncertainty":
            return UncertaintyWeighting(names, kinds=[t.kind for t in tasks.values()])
        if method == "rlw":
            return RLW(generator=seed, tasks=names)
        if method in WEIGHTINGS:
            return WEIGHTINGS[method](tasks=names)
        from mtl_course.tf.aggregators import AGGREGATORS

        if method == "pcgrad":  # its random task order, seeded like RLW's draws
            return functools.partial(AGGREGATORS["pcgrad"], generator=np.random.default_rng(seed))
        if method in AGGREGATORS:
            return AGGREGATORS[method]
        raise ValueError(f"unknown method {method!r}; weightings: {sorted(WEIGHTINGS)}, "
                         f"aggregators: {sorted(AGGREGATORS)}")
    if callable(method):
        return method
    raise TypeError(f"method must be a Weighting, a name or an aggregator function, got {method!r}")


def _optimizer(optimizer: keras.optimizers.Optimizer | str | None, lr: float) -> keras.optimizers.Optimizer:
    # epsilon=1e-8 matches torch.optim.Adam's default (Keras defaults to 1e-7).
    if optimizer is None or optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)
    if optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    raise ValueError(f"optimizer must be None, 'adam', 'sgd' or a keras optimizer, got {optimizer!r}")


def _aggregated_gradients(model: keras.Model, tape: tf.GradientTape, losses: list[tf.Tensor],
                          task_names: list[str], aggregator: Callable, penalty: tf.Tensor | None,
                          variables: list) -> list:
    """Shared variables get ``aggregator(J)``, task variables their own loss's gradient, all the penalty's."""
    from mtl_course.tf.gradients import jacobian, unflatten_gradients

    grads: dict[int, tf.Tensor] = {}
    shared = list(model.shared_parameters())
    if shared:
        direction = aggregator(jacobian(tape, losses, shared))
        for v, g in zip(shared, unflatten_gradients(direction, shared)):
            grads[id(v)] = g
    own = [v for name in task_names for v in model.task_parameters(name)]
    if own:
        # A task's own variables only reach its own loss: the gradient of the sum is its own gradient.
        with tape:  # record the sum on the tape (the losses were recorded inside it)
            loss_sum = tf.add_n(losses)
        for v, g in zip(own, tape.gradient(loss_sum, own)):
            if g is not None:
                grads[id(v)] = tf.convert_to_tensor(g)
    if penalty is not None:
        for v, g in zip(variables, tape.gradient(penalty, variables)):
            if g is not None:
                grads[id(v)] = grads[id(v)] + g if id(v) in grads else tf.convert_to_tensor(g)
    return [grads.get(id(v)) for v in variables]


# Weightings whose total fit's compiled step can build in the graph (exact types: a subclass may
# override __call__ with numpy code).
_COMPILED_WEIGHTINGS = (EqualWeighting, StaticWeighting, UncertaintyWeighting, DWA, RLW)


def _builtin_aggregator(method: Callable) -> bool:
    """Whether ``method`` is one of :data:`AGGREGATORS` (or a ``functools.partial`` of one): graph-safe."""
    from mtl_course.tf.aggregators import AGGREGATORS

    func = method.func if isinstance(method, functools.partial) else method
    return any(func is f for f in AGGREGATORS.values())


def _non_finite_error(names: list[str], values: np.ndarray) -> ValueError:
    bad = [n for n, v in zip(names, values) if not np.isfinite(v)]
    return ValueError(f"non-finite (NaN or inf) loss for task(s) {bad}")


def _train_step(model: keras.Model, specs: Mapping[str, Task], resolved: Weighting | Callable,
                opt: keras.optimizers.Optimizer, variables: list, x: tf.Tensor, ys: dict[str, tf.Tensor],
                gradnorm_vars: list | None) -> Callable[[np.ndarray], np.ndarray]:
    """The training step ``fit`` calls on each batch's indices; returns the task losses (float64 numpy).

    Compiled (``tf.function``) for the weightings in
    ``_COMPILED_WEIGHTINGS`` and the built-in aggregators; eager otherwise. Either way a
    non-finite loss raises a ``ValueError`` naming the task before any variable changes (the
    compiled step checks in the graph and skips the update, the host then raises).
    """
    names = list(specs)
    is_weighting = isinstance(resolved, Weighting)
    has_penalty = callable(getattr(model, "penalty", None))
    compiled = type(resolved) in _COMPILED_WEIGHTINGS if is_weighting else _builtin_aggregator(resolved)

    def forward(batch_x, batch_ys):
        outputs = model(batch_x, training=True)
        losses = [task_loss(n, specs[n], outputs[n], batch_ys[n]) for n in names]
        return losses, (model.penalty() if has_penalty else None)

    if not compiled:
        persistent = not is_weighting or gradnorm_vars is not None

        def eager_step(index: np.ndarray) -> np.ndarray:
            idx = tf.constant(index)
            with tf.GradientTape(persistent=persistent) as tape:
                losses, penalty = forward(tf.gather(x, idx), {n: tf.gather(ys[n], idx) for n in names})
                if is_weighting:
                    total = resolved(dict(zip(names, losses)))
                    if penalty is not None:
                        total = total + penalty
            values = np.array([float(v) for v in losses])
            if is_weighting:
                if gradnorm_vars is not None:
                    resolved.update(dict(zip(names, losses)), gradnorm_vars, tape)
                grads = tape.gradient(total, variables)
            else:
                if not np.all(np.isfinite(values)):
                    raise _non_finite_error(names, values)
                grads = _aggregated_gradients(model, tape, losses, names, resolved, penalty, variables)
            del tape
            opt.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
            return values

        return eager_step

    # Traced once per batch size (the batch and the last, smaller one): the losses need static
    # shapes. No autograph: the step's Python control flow is all decided at trace time.
    @tf.function(autograph=False)
    def compiled_step(x_all, ys_all, idx, weights):
        with tf.GradientTape(persistent=not is_weighting) as tape:
            losses, penalty = forward(tf.gather(x_all, idx), {n: tf.gather(ys_all[n], idx) for n in names})
            stacked = tf.stack([tf.reshape(loss, []) for loss in losses])
            if is_weighting:
                total = resolved._graph_total(stacked, weights)
                if penalty is not None:
                    total = total + penalty

        def update():
            if is_weighting:
                grads = tape.gradient(total, variables)
            else:
                grads = _aggregated_gradients(model, tape, losses, names, resolved, penalty, variables)
            opt.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
            return tf.constant(True)

        # the NaN check in the graph: a non-finite loss skips the update, the host then raises
        tf.cond(tf.reduce_all(tf.math.is_finite(stacked)), update, lambda: tf.constant(False))
        return tf.cast(stacked, tf.float64)

    def step(index: np.ndarray) -> np.ndarray:
        weights = resolved._step_weights() if is_weighting else np.zeros(len(names))
        values = compiled_step(x, ys, tf.constant(index, tf.int64), tf.constant(weights, tf.float64)).numpy()
        if is_weighting:
            resolved._record(values)
        elif not np.all(np.isfinite(values)):
            raise _non_finite_error(names, values)
        return values

    return step


def fit(model: keras.Model, train_data: Data, tasks: Mapping[str, Task | str], method: Method = "equal",
        epochs: int = 10, batch_size: int = 64, optimizer: keras.optimizers.Optimizer | str | None = None,
        lr: float = 1e-3, val_data: Data | None = None, seed: int = 0, progress: bool = True,
        device: str | None = None) -> History:
    """Train ``model`` on ``tasks`` and return its :class:`~mtl_course.core.tasks.History`.

    Twin of :func:`mtl_course.torch.train.fit` (see it for every argument).
    ``optimizer`` is None or "adam" (Keras Adam with ``epsilon=1e-8`` like
    PyTorch's), "sgd", or a Keras optimizer; it is applied to
    ``model.trainable_variables + method.trainable_variables``. ``device`` is
    a TensorFlow device string (default :func:`mtl_course.tf.device <mtl_course.tf.runtime.device>`).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    split = core_tasks.training_split(train_data)
    specs = core_tasks.resolve_tasks(tasks, split.task_names, getattr(model, "task_names", None))
    names = list(specs)
    resolved = resolve_method(method, specs, seed)
    is_weighting = isinstance(resolved, Weighting)
    opt = _optimizer(optimizer, lr)
    rng = np.random.default_rng(seed)
    history = History(task_names=names)
    targets = core_tasks.cast_targets(split, specs)

    with tf.device(device or default_device()):
        x = tf.constant(split.x)
        ys = {k: tf.constant(v) for k, v in targets.items()}
        if not model.built:
            model(x[:1])
        variables = list(model.trainable_variables) + (list(resolved.trainable_variables) if is_weighting else [])
        if not opt.built:
            opt.build(variables)
        gradnorm_vars = None
        if isinstance(resolved, GradNorm):
            shared = list(model.shared_parameters())
            gradnorm_vars = [shared[gradnorm_layer_index([tuple(v.shape) for v in shared])]]
        step = _train_step(model, specs, resolved, opt, variables, x, ys, gradnorm_vars)

        kwargs = {} if progress else {"disable": True}  # leave `disable` to TQDM_DISABLE otherwise
        bar = tqdm.tqdm(range(epochs), desc="fit", unit="epoch", **kwargs)
        for _ in bar:
            start = time.perf_counter()
            sums = np.zeros(len(names))
            steps = 0
            for index in core_tasks.batch_indices(len(split), batch_size, rng):
                sums += step(index)
                steps += 1
            mean_loss = dict(zip(names, (sums / max(steps, 1)).tolist()))
            weights = resolved.weights if is_weighting else None
            if is_weighting:
                resolved.end_epoch()
            val_loss = val_metric = None
            if val_data is not None:
                val_metric, val_loss = evaluate(model, val_data, specs, return_losses=True)
            history.record(mean_loss, weights, time.perf_counter() - start, val_loss, val_metric)
            bar.set_postfix({n: f"{v:.4g}" for n, v in mean_loss.items()})
    return history


def predict(model: keras.Model, x: np.ndarray | tf.Tensor, batch_size: int = 256) -> dict[str, np.ndarray]:
    """The model's outputs on ``x`` as numpy arrays (inference mode, in batches)."""
    x = tf.convert_to_tensor(x)
    chunks: dict[str, list[np.ndarray]] = {}
    for index in core_tasks.batch_indices(int(x.shape[0]), batch_size, None):
        for name, out in model(tf.gather(x, tf.constant(index)), training=False).items():
            chunks.setdefault(name, []).append(np.asarray(out))
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def evaluate(model: keras.Model, data: Data, tasks: Mapping[str, Task | str], batch_size: int = 256,
             return_losses: bool = False) -> dict[str, float] | tuple[dict[str, float], dict[str, float]]:
    """Each task's metric on ``data`` (and, with ``return_losses=True``, its mean loss too)."""
    split = core_tasks.as_split(data)
    specs = core_tasks.resolve_tasks(tasks, split.task_names, getattr(model, "task_names", None))
    outputs = predict(model, split.x, batch_size)
    targets = core_tasks.cast_targets(split, specs)
    metrics, losses = {}, {}
    for name, task in specs.items():
        pred, y = outputs[name], targets[name]
        if isinstance(task.loss, str):
            pred = pred.reshape(core_tasks.aligned_shape(name, pred.shape, y.shape, task.loss))
        metrics[name] = task.score(pred, y)
        if return_losses:
            losses[name] = float(task_loss(name, task, tf.constant(pred), tf.constant(y)))
    return (metrics, losses) if return_losses else metrics


def save(path: str | Path, model: keras.Model, method: Weighting | None = None,
         optimizer: keras.optimizers.Optimizer | None = None) -> None:
    """Save model, weighting and optimizer variables to an ``.npz`` file (plain arrays, no pickle).

    Variables are stored in their creation order (``model.weights``,
    ``optimizer.variables``), so :func:`load` needs objects of the same
    architecture, built the same way.
    """
    arrays = {f"model/{i}": np.asarray(v) for i, v in enumerate(model.weights)}
    if method is not None:
        arrays.update({f"method/{k}": v for k, v in method.state_dict().items()})
    if optimizer is not None:
        arrays.update({f"optimizer/{i}": np.asarray(v) for i, v in enumerate(optimizer.variables)})
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load(path: str | Path, model: keras.Model, method: Weighting | None = None,
         optimizer: keras.optimizers.Optimizer | None = None) -> None:
    """Load what :func:`save` wrote (``np.load(allow_pickle=False)``) into existing, built objects.

    The optimizer is built for ``model.trainable_variables`` plus the
    weighting's variables first if it has not been built yet.
    """
    with np.load(path, allow_pickle=False) as data:
        stored = {k: data[k] for k in data.files}
    _assign("model", model.weights, stored)
    if method is not None:
        prefix = "method/"
        state = {k[len(prefix):]: v for k, v in stored.items() if k.startswith(prefix)}
        if not state:
            raise ValueError(f"{path} holds no method state")
        method.load_state_dict(state)
    if optimizer is not None:
        if not optimizer.built:
            extra = list(method.trainable_variables) if method is not None else []
            optimizer.build(list(model.trainable_variables) + extra)
        _assign("optimizer", optimizer.variables, stored)


def _assign(prefix: str, variables: list, stored: Mapping[str, np.ndarray]) -> None:
    count = sum(1 for k in stored if k.startswith(prefix + "/"))
    if count != len(variables):
        raise ValueError(f"saved {count} {prefix} variables, the {prefix} has {len(variables)}")
    for i, v in enumerate(variables):
        value = stored[f"{prefix}/{i}"]
        if value.shape != tuple(v.shape):
            raise ValueError(f"{prefix} variable {i}: saved shape {value.shape} != {tuple(v.shape)}")
        v.assign(value)
