"""The multi-task training loop in TensorFlow, twin of :mod:`mtl_course.torch.train`.

Same functions, arguments, defaults and :class:`~mtl_course.core.tasks.History` as the PyTorch
version: :func:`fit`, :func:`evaluate`, :func:`predict`, :func:`save`,
:func:`load`. ``fit`` compiles its training step with ``tf.function`` (no XLA)
for the built-in weightings (their weights are drawn on the host and passed in
as a tensor; GradNorm's update, its Adam step included, runs in the graph on
its state passed in and out as tensors) and for the built-in aggregators (whose small
``T x T`` solve runs through ``tf.numpy_function``; they get ``G = J J^T`` from
:class:`~mtl_course.tf.gramian.LayerGramian` without forming ``J``, then one
backward pass of ``sum_t w_t L_t``); weightings of your own and
aggregator functions of your own run eagerly (the latter on ``J``).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import tqdm

from mtl_course.core import methods as core_methods
from mtl_course.core import tasks as core_tasks
from mtl_course.core.files import atomic_write
from mtl_course.core.tasks import History, Task
from mtl_course.core.weighting import gradnorm_layer_index
from mtl_course.data.types import MultiTaskSplit
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)
from mtl_course.tf.runtime import device as default_device
from mtl_course.tf.weighting import (
    DWA,
    RLW,
    WEIGHTINGS,
    EqualWeighting,
    GradNorm,
    StaticWeighting,
    UncertaintyWeighting,
    Weighting,
)

Data = MultiTaskSplit | tuple[np.ndarray, Mapping[str, np.ndarray]]
Method = Weighting | str | Callable[[tf.Tensor], tf.Tensor]

__all__ = ["History", "Task", "evaluate", "fit", "load", "predict", "save", "task_loss"]


def task_loss(name: str, task: Task, prediction: tf.Tensor, target: tf.Tensor,
              mask: tf.Tensor | None = None) -> tf.Tensor:
    """The mean loss of one task over its labelled entries; twin of :func:`mtl_course.torch.train.task_loss`.

    Examples:
        >>> import tensorflow as tf
        >>> from mtl_course.tf import Task
        >>> pred, y = tf.constant([1.0, 2.0, 9.0]), tf.constant([0.0, 0.0, 0.0])
        >>> float(task_loss("t", Task("mse"), pred, y, mask=tf.constant([True, True, False])))
        2.5
    """
    if not isinstance(task.loss, str):
        if mask is None:
            return task.loss(prediction, target)
        rows = tf.reduce_all(tf.reshape(mask, [tf.shape(mask)[0], -1]), axis=1)
        if not bool(tf.reduce_any(rows)):
            return tf.reduce_sum(prediction) * 0.0
        return task.loss(tf.boolean_mask(prediction, rows), tf.boolean_mask(target, rows))
    shape = core_tasks.aligned_shape(name, tuple(prediction.shape), tuple(target.shape), task.loss)
    if mask is not None:  # unlabelled targets (NaN, -1, ...) must not reach the loss or its gradient
        target = tf.where(tf.reshape(mask, tf.shape(target)), target, tf.zeros_like(target))
    if task.loss == "cross_entropy":
        per_entry = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=prediction)
    else:
        prediction = tf.reshape(prediction, shape)
        target = tf.cast(target, prediction.dtype)
        if task.loss == "mse":
            per_entry = tf.square(prediction - target)
        else:
            per_entry = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=prediction)
    if mask is None:
        return tf.reduce_mean(per_entry)
    mask = tf.reshape(mask, tf.shape(per_entry))
    # where() (not a product) so that nothing from an unlabelled entry reaches the gradient
    total = tf.reduce_sum(tf.where(mask, per_entry, tf.zeros_like(per_entry)))
    count = tf.maximum(tf.reduce_sum(tf.cast(mask, per_entry.dtype)), tf.ones((), per_entry.dtype))
    return total / count


def resolve_method(method: Method, tasks: Mapping[str, Task], seed: int | None = None) -> Weighting | Callable:
    """A weighting (bound to ``tasks``) or an aggregator function; see the PyTorch twin."""
    from mtl_course.tf.aggregators import AGGREGATORS

    return core_methods.resolve_method(method, tasks, seed, Weighting, WEIGHTINGS, AGGREGATORS)


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
                          aggregator: Callable, penalty: tf.Tensor | None, variables: list,
                          recorder=None) -> tuple[list, tf.Tensor]:
    """Shared variables get the aggregated direction over ``losses``, the other variables their
    own loss's gradient, all the penalty's (:func:`~mtl_course.tf.gradients.aggregate_gradients`);
    also returns the aggregator's weights (float64, zeros without shared variables).

    With a ``recorder`` (a :class:`~mtl_course.tf.gramian.LayerGramian` that recorded the forward
    pass) ``J`` is never formed: ``G`` is built layer by layer, the aggregator's weights ``w``
    come from it, and the shared variables get the gradient of ``sum_t w_t L_t`` (``w^T J``).
    """
    from mtl_course.tf.gradients import aggregate_gradients, aggregator_weights

    grads: dict[int, tf.Tensor] = {}
    shared = list(model.shared_parameters())
    weights = tf.zeros((len(losses),), tf.float64)
    if shared:
        skip = {id(v) for v in shared}
        others = [v for v in variables if id(v) not in skip]
        shared_grads, other_grads, w, J, direction = aggregate_gradients(
            tape, losses, shared, aggregator, others, recorder)
        grads.update({id(v): g for v, g in zip(shared, shared_grads)})
        grads.update({id(v): g for v, g in zip(others, other_grads) if g is not None})
        # an aggregator of your own runs eagerly: its weights by least squares, on the host
        weights = w if w is not None else tf.constant(aggregator_weights(J, direction))
    else:  # no shared variables (soft sharing): each task's variables get its own loss's gradient
        with tape:
            loss_sum = tf.add_n(losses)
        for v, g in zip(variables, tape.gradient(loss_sum, variables)):
            if g is not None:
                grads[id(v)] = tf.convert_to_tensor(g)
    if penalty is not None:
        for v, g in zip(variables, tape.gradient(penalty, variables)):
            if g is not None:
                grads[id(v)] = grads[id(v)] + g if id(v) in grads else tf.convert_to_tensor(g)
    return [grads.get(id(v)) for v in variables], weights


def _clip(grads: list, count: int, clip_norm: float | None) -> list:
    """Clip the global norm of the first ``count`` gradients (the model's) to ``clip_norm``."""
    if clip_norm is None:
        return grads
    kept = [i for i in range(count) if grads[i] is not None]
    clipped, _ = tf.clip_by_global_norm([grads[i] for i in kept], clip_norm)
    out = list(grads)
    for i, g in zip(kept, clipped):
        out[i] = g
    return out


# Weightings whose total fit's compiled step can build in the graph (exact types: a subclass may
# override __call__ with numpy code).
_COMPILED_WEIGHTINGS = (EqualWeighting, StaticWeighting, UncertaintyWeighting, DWA, RLW, GradNorm)
# Tests set this to run fit's eager step for a parity check against the compiled one.
_FORCE_EAGER = False


def _builtin_aggregator(method: Callable) -> bool:
    """Whether ``method`` is one of :data:`AGGREGATORS` (or a ``functools.partial`` of one): graph-safe."""
    from mtl_course.tf.aggregators import AGGREGATORS

    func = method.func if isinstance(method, functools.partial) else method
    return any(func is f for f in AGGREGATORS.values())


def _non_finite_error(names: list[str], values: np.ndarray) -> ValueError:
    bad = [n for n, v in zip(names, values) if not np.isfinite(v)]
    return ValueError(f"non-finite (NaN or inf) loss for task(s) {bad}")


def _train_step(model: keras.Model, specs: Mapping[str, Task], resolved: Weighting | Callable,
                opt: keras.optimizers.Optimizer, variables: list, gradnorm_vars: list | None,
                masked: set[str], clip_norm: float | None) -> Callable:
    """The training step ``fit`` calls on each batch:
    ``step(x_all, ys_all, ms_all, index, present) -> (losses, aggregator summary or None)``.

    ``ys_all`` / ``ms_all``: the targets, and the label masks of the tasks in ``masked``;
    the batch is the rows ``index``; ``present`` says which tasks have a label in it.
    Compiled (``tf.function``) for the weightings in ``_COMPILED_WEIGHTINGS`` and the
    built-in aggregators; eager otherwise, and for an aggregator on a batch where a task
    has no label (that task is left out of the aggregation). Either way a non-finite loss
    raises a ``ValueError`` naming the task before any variable changes (the compiled step
    checks in the graph and skips the update, the host then raises).
    """
    names = list(specs)
    is_weighting = isinstance(resolved, Weighting)
    has_penalty = callable(getattr(model, "penalty", None))
    n_model = len(variables) - (len(resolved.trainable_variables) if is_weighting else 0)
    compiled = type(resolved) in _COMPILED_WEIGHTINGS if is_weighting else _builtin_aggregator(resolved)
    compiled = compiled and not _FORCE_EAGER
    gradnorm = gradnorm_vars is not None and isinstance(resolved, GradNorm)
    # a custom loss on a partially labelled task selects rows with a host-side check
    compiled = compiled and not any(not isinstance(specs[n].loss, str) for n in masked)
    recorder = None  # the built-in aggregators need J only through G: build G layer by layer
    if not is_weighting and compiled and model.shared_parameters():
        from mtl_course.tf.gramian import LayerGramian

        recorder = LayerGramian(model, model.shared_parameters())

    def forward(batch_x, batch_ys, batch_ms):
        with recorder if recorder is not None else contextlib.nullcontext():
            outputs = model(batch_x, training=True)
        _check_model(model, outputs, names, False)
        losses = [task_loss(n, specs[n], outputs[n], batch_ys[n], batch_ms.get(n)) for n in names]
        return losses, (model.penalty() if has_penalty else None)

    persistent = not is_weighting or gradnorm_vars is not None

    def eager_step(x_all, ys_all, ms_all, index, present):
        idx = tf.constant(index)
        with tf.GradientTape(persistent=persistent) as tape:
            losses, penalty = forward(tf.gather(x_all, idx), {n: tf.gather(ys_all[n], idx) for n in names},
                                      {n: tf.gather(m, idx) for n, m in ms_all.items()})
            if is_weighting:
                total = resolved(dict(zip(names, losses)))
                if penalty is not None:
                    total = total + penalty
        values = np.array([float(v) for v in losses])
        summary = None
        if is_weighting:
            if gradnorm_vars is not None and present.all():
                resolved.update(dict(zip(names, losses)), gradnorm_vars, tape)
            grads = tape.gradient(total, variables)
        else:
            if not np.all(np.isfinite(values)):
                raise _non_finite_error(names, values)
            kept = [loss for loss, here in zip(losses, present) if here]
            grads, w = _aggregated_gradients(model, tape, kept, resolved, penalty, variables)
            summary = (w.numpy(), present)
        del tape
        grads = _clip(grads, n_model, clip_norm)
        opt.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        return values, summary

    if not compiled:
        return eager_step

    # Traced once per batch size (the batch and the last, smaller one): the losses need static
    # shapes. No autograph: the step's Python control flow is all decided at trace time.
    @tf.function(autograph=False)
    def compiled_step(x_all, ys_all, ms_all, idx, weights, state):
        with tf.GradientTape(persistent=not is_weighting or gradnorm) as tape:
            losses, penalty = forward(tf.gather(x_all, idx), {n: tf.gather(ys_all[n], idx) for n in names},
                                      {n: tf.gather(m, idx) for n, m in ms_all.items()})
            stacked = tf.stack([tf.reshape(loss, []) for loss in losses])
            if is_weighting:
                total = resolved._graph_total(stacked, weights)
                if penalty is not None:
                    total = total + penalty
        T = len(names)
        values = tf.cast(stacked, tf.float64)
        ok = tf.reduce_all(tf.math.is_finite(stacked))
        if gradnorm:  # GradNorm's update, in the graph; ok is False where the eager update raises
            norms = tf.stack([tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(tf.cast(g, tf.float64)))
                                                 for g in tape.gradient(loss, gradnorm_vars) if g is not None]))
                              for loss in losses])
            new_state, valid = resolved._graph_update(values, norms, weights, state)
            ok = ok & valid

        def update():
            w = tf.zeros((T,), tf.float64)
            if is_weighting:
                grads = tape.gradient(total, variables)
            else:
                grads, w = _aggregated_gradients(model, tape, losses, resolved, penalty, variables, recorder)
            grads = _clip(grads, n_model, clip_norm)
            opt.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
            return w

        # the NaN check in the graph: a non-finite loss skips the update, the host then raises
        w = tf.cond(ok, update, lambda: tf.zeros((T,), tf.float64))
        return values, w, (new_state if gradnorm else ())

    def step(x_all, ys_all, ms_all, index, present):
        if not is_weighting and not present.all():
            return eager_step(x_all, ys_all, ms_all, index, present)
        weights = resolved._step_weights() if is_weighting else np.zeros(len(names))
        state = tuple(tf.constant(a) for a in resolved._graph_state(bool(present.all()))) if gradnorm else ()
        values, w, new_state = compiled_step(x_all, ys_all, ms_all, tf.constant(index, tf.int64),
                                             tf.constant(weights, tf.float64), state)
        values = values.numpy()
        if is_weighting:
            resolved._record(values)
            if gradnorm:
                resolved._keep_graph_state(values, [a.numpy() for a in new_state], bool(present.all()))
            return values, None
        if not np.all(np.isfinite(values)):
            raise _non_finite_error(names, values)
        return values, (w.numpy(), present)

    return step


def _check_model(model: keras.Model, outputs: object, names: list[str], needs_shared: bool) -> None:
    """Raise a TypeError saying what ``fit`` needs from a model that lacks it."""
    core_tasks.check_model_outputs(model, outputs, names, needs_shared, "mtl_course.tf", "a list or a tensor", "variables")


def _numpy(value: object) -> np.ndarray:
    return value.numpy() if tf.is_tensor(value) else np.asanyarray(value)


def _set_learning_rate(opt: keras.optimizers.Optimizer, value: float) -> None:
    if not isinstance(opt.learning_rate, tf.Variable) and not hasattr(opt.learning_rate, "assign"):
        raise TypeError("scheduler needs an optimizer with a plain learning rate (not a LearningRateSchedule)")
    opt.learning_rate.assign(float(value))


def fit(model: keras.Model, train_data: Data, tasks: Mapping[str, Task | str], method: Method = "equal",
        epochs: int = 10, batch_size: int = 64, optimizer: keras.optimizers.Optimizer | str | None = None,
        lr: float = 1e-3, val_data: Data | None = None, seed: int = 0, progress: bool = True,
        device: str | None = None, scheduler: Callable[[int, float], float] | None = None,
        patience: int | None = None, monitor: str = "loss", clip_grad_norm: float | None = None,
        callback: Callable[[int, History], bool | None] | None = None) -> History:
    """Train ``model`` on ``tasks`` and return its :class:`~mtl_course.core.tasks.History`.

    Twin of :func:`mtl_course.torch.train.fit` (see it for every argument).
    ``optimizer`` is None or "adam" (Keras Adam with ``epsilon=1e-8`` like
    PyTorch's), "sgd", or a Keras optimizer; it is applied to
    ``model.trainable_variables + method.trainable_variables``. ``device`` is
    a TensorFlow device string (default :func:`mtl_course.tf.device <mtl_course.tf.runtime.device>`).
    ``train_data`` / ``val_data`` may be a ``tf.data.Dataset`` of batches
    ``(x, {task: y})``. ``scheduler`` is Keras's convention, a function
    ``(epoch, lr) -> new lr`` called after each epoch (a
    ``keras.optimizers.schedules.LearningRateSchedule`` goes in the optimizer
    instead). ``clip_grad_norm`` clips the global norm of the model's gradients
    (``tf.clip_by_global_norm``).

    Examples:
        >>> import numpy as np
        >>> from mtl_course import tf as mtl
        >>> mtl.seed_everything(0)
        >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
        >>> y = {"a": x.sum(1), "b": (x[:, 0] > 0).astype("float32")}
        >>> y["a"][::3] = np.nan  # a third of task a's labels are missing
        >>> model = mtl.HardSharing(mtl.mlp((3, 8)), {"a": mtl.mlp((8, 1)), "b": mtl.mlp((8, 1))})
        >>> history = mtl.fit(model, (x, y), {"a": "mse", "b": "bce"}, method="upgrad", epochs=2,
        ...                   progress=False, device="/CPU:0")
        >>> history.epochs, len(history.weights[-1])
        (2, 2)
    """
    if scheduler is not None and not callable(scheduler):
        raise TypeError(f"scheduler must be a function (epoch, lr) -> lr, got {scheduler!r}")
    plan = core_tasks.plan_fit(model, train_data, tasks, val_data, epochs, patience, monitor, clip_grad_norm,
                               _numpy)
    loader, split, specs, names = plan.loader, plan.split, plan.specs, plan.names
    val_data, stopper = plan.val_data, plan.stopper
    resolved = resolve_method(method, specs, seed)
    is_weighting = isinstance(resolved, Weighting)
    needs_shared = not is_weighting or isinstance(resolved, GradNorm)
    opt = _optimizer(optimizer, lr)
    rng = np.random.default_rng(seed)
    history = History(task_names=names, metric_names={n: core_tasks.metric_name(t) for n, t in specs.items()})
    best_weights = None

    with tf.device(device or default_device()):
        if loader:
            sample_x = plan.first_x
            masked = set(names)  # not known in advance: every task may have missing labels
        else:
            targets, masks = core_tasks.prepare_targets(split, specs)
            x = tf.constant(split.x)
            ys = {k: tf.constant(v) for k, v in targets.items()}
            ms = {k: tf.constant(m) for k, m in masks.items() if m is not None}
            masked = set(ms)
            sample_x = x[:1]
        outputs = model(sample_x[:1] if hasattr(sample_x, "shape") else sample_x)
        _check_model(model, outputs, names, needs_shared)
        if not loader:
            for n in names:
                if specs[n].loss == "cross_entropy":
                    core_tasks.check_labels(n, specs[n], targets[n], masks[n], int(outputs[n].shape[-1]))
        variables = list(model.trainable_variables) + (list(resolved.trainable_variables) if is_weighting else [])
        if not opt.built:
            opt.build(variables)
        gradnorm_vars = None
        if isinstance(resolved, GradNorm):
            shared = list(model.shared_parameters())
            gradnorm_vars = [shared[gradnorm_layer_index([tuple(v.shape) for v in shared])]]
        step = _train_step(model, specs, resolved, opt, variables, gradnorm_vars, masked, clip_grad_norm)
        has_shared = not is_weighting and bool(model.shared_parameters())

        def batches():
            if not loader:
                for index in core_tasks.batch_indices(len(split), batch_size, rng):
                    present = np.array([masks[n] is None or bool(masks[n][index].any()) for n in names])
                    yield x, ys, ms, index, present
                return
            for batch in train_data:
                bx, by = core_tasks.batch_pair(batch)
                bx = tf.convert_to_tensor(bx)
                bys, bms, present = {}, {}, []
                for n in names:
                    classes = int(outputs[n].shape[-1]) if specs[n].loss == "cross_entropy" else None
                    target, mask = core_tasks.prepare_target(n, specs[n], _numpy(by[n]), classes)
                    bys[n] = tf.constant(target)
                    bms[n] = tf.constant(np.ones(target.shape, bool) if mask is None else mask)
                    present.append(mask is None or bool(mask.any()))
                yield bx, bys, bms, np.arange(int(bx.shape[0])), np.array(present)

        kwargs = {} if progress else {"disable": True}  # leave `disable` to TQDM_DISABLE otherwise
        bar = tqdm.tqdm(range(epochs), desc="fit", unit="epoch", **kwargs)
        for epoch in bar:
            start = time.perf_counter()
            sums = np.zeros(len(names))
            seen = np.zeros(len(names))
            last = None
            for x_all, ys_all, ms_all, index, present in batches():
                values, summary = step(x_all, ys_all, ms_all, index, present)
                last = summary or last
                sums += np.where(present, values, 0.0)
                seen += present
            mean_loss = core_tasks.epoch_mean_losses(names, sums, seen)
            if is_weighting:
                weights = resolved.weights
                resolved.end_epoch()
            else:
                weights = None
                if last is not None and has_shared:
                    w, present = last  # of the tasks present in the last aggregated batch
                    weights = np.zeros(len(names))
                    weights[present] = w
            val_loss = val_metric = None
            if val_data is not None:
                val_metric, val_loss = evaluate(model, val_data, specs, return_losses=True)
            history.record(mean_loss, weights, time.perf_counter() - start, val_loss, val_metric)
            bar.set_postfix({n: f"{v:.4g}" for n, v in mean_loss.items()})
            if val_data is not None and stopper.update(val_loss, val_metric) and patience is not None:
                best_weights = [v.numpy() for v in model.weights]
            if scheduler is not None:
                _set_learning_rate(opt, scheduler(epoch, float(np.asarray(opt.learning_rate))))
            if callback is not None and callback(epoch, history):
                break
            if stopper.should_stop:
                break
        if best_weights is not None:
            for v, value in zip(model.weights, best_weights):
                v.assign(value)
            history.best_epoch = stopper.best_epoch
    return history


def predict(model: keras.Model, x: np.ndarray | tf.Tensor, batch_size: int = 256,
            tasks: Mapping[str, Task | str] | None = None) -> dict[str, np.ndarray]:
    """The model's outputs on ``x`` as numpy arrays (inference mode, in batches); twin of
    :func:`mtl_course.torch.train.predict` (``tasks``: probabilities for classification tasks).

    Examples:
        >>> import numpy as np
        >>> from mtl_course import tf as mtl
        >>> model = mtl.HardSharing(mtl.mlp((3, 4)), {"kind": mtl.mlp((4, 5))})
        >>> p = predict(model, np.ones((2, 3), np.float32), tasks={"kind": "cross_entropy"})["kind"]
        >>> p.shape, bool(np.allclose(p.sum(1), 1.0))
        ((2, 5), True)
    """
    x = tf.convert_to_tensor(x)
    specs = None if tasks is None else {n: t if isinstance(t, Task) else Task(t) for n, t in tasks.items()}
    chunks: dict[str, list[np.ndarray]] = {}
    n = int(x.shape[0])
    parts = [np.arange(0)] if n == 0 else core_tasks.batch_indices(n, batch_size, None)
    for index in parts:
        outputs = model(tf.gather(x, tf.constant(index, tf.int64)), training=False)
        if not isinstance(outputs, Mapping):
            _check_model(model, outputs, [], False)
        for name, out in outputs.items():
            loss = specs[name].loss if specs is not None and name in specs else None
            if loss == "cross_entropy":
                out = tf.nn.softmax(out, axis=-1)
            elif loss == "bce":
                out = tf.sigmoid(out)
            chunks.setdefault(name, []).append(np.asarray(out))
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def evaluate(model: keras.Model, data: Data, tasks: Mapping[str, Task | str], batch_size: int = 256,
             return_losses: bool = False) -> core_tasks.Scores | tuple[core_tasks.Scores, dict[str, float]]:
    """Each task's metric on ``data`` (and, with ``return_losses=True``, its mean loss too); twin of
    :func:`mtl_course.torch.train.evaluate` (labelled rows only; a :class:`~mtl_course.core.tasks.Scores`).

    Examples:
        >>> import numpy as np
        >>> from mtl_course import tf as mtl
        >>> model = mtl.HardSharing(mtl.mlp((3, 4)), {"a": mtl.mlp((4, 1))})
        >>> evaluate(model, (np.ones((4, 3), np.float32), {"a": np.zeros(4)}), {"a": "mse"}).metrics
        {'a': 'mse'}
    """
    def loss(name: str, task: Task, pred: np.ndarray, y: np.ndarray, mask: np.ndarray | None) -> float:
        return float(task_loss(name, task, tf.constant(pred), tf.constant(y),
                               None if mask is None else tf.constant(mask)))

    return core_tasks.evaluate_model(model, data, tasks, batch_size, return_losses, predict, loss, _numpy)


def save(path: str | Path, model: keras.Model, method: Weighting | None = None,
         optimizer: keras.optimizers.Optimizer | None = None) -> None:
    """Save model, weighting and optimizer variables to an ``.npz`` file (plain arrays, no pickle).

    Variables are stored in their creation order (``model.weights``,
    ``optimizer.variables``), so :func:`load` needs objects of the same
    architecture, built the same way. The write is atomic (a temporary file
    in the same folder, then ``os.replace``): a failed write leaves the
    previous checkpoint intact.

    Examples:
        >>> import tempfile, os
        >>> from mtl_course import tf as mtl
        >>> model = mtl.HardSharing(mtl.mlp((3, 4)), {"a": mtl.mlp((4, 1))})
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
        >>> save(path, model); load(path, model)
    """
    arrays = {f"model/{i}": np.asarray(v) for i, v in enumerate(model.weights)}
    if method is not None:
        arrays.update({f"method/{k}": v for k, v in method.state_dict().items()})
    if optimizer is not None:
        arrays.update({f"optimizer/{i}": np.asarray(v) for i, v in enumerate(optimizer.variables)})
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path: str | Path, model: keras.Model, method: Weighting | None = None,
         optimizer: keras.optimizers.Optimizer | None = None) -> None:
    """Load what :func:`save` wrote (``np.load(allow_pickle=False)``) into existing, built objects.

    The optimizer is built for ``model.trainable_variables`` plus the
    weighting's variables first if it has not been built yet.

    Examples:
        >>> import tempfile, os
        >>> import numpy as np
        >>> from mtl_course import tf as mtl
        >>> model = mtl.HardSharing(mtl.mlp((3, 4)), {'a': mtl.mlp((4, 1))})
        >>> _ = model(np.ones((1, 3)))
        >>> path = os.path.join(tempfile.mkdtemp(), 'ckpt.npz')
        >>> save(path, model)
        >>> copy = mtl.HardSharing(mtl.mlp((3, 4)), {'a': mtl.mlp((4, 1))})
        >>> _ = copy(np.ones((1, 3)))  # build it first
        >>> load(path, copy)
        >>> all(np.array_equal(p, q) for p, q in zip(model.get_weights(), copy.get_weights()))
        True
    """
    with np.load(path, allow_pickle=False) as data:
        stored = {k: data[k] for k in data.files}
    if not model.weights and any(k.startswith("model/") for k in stored):
        raise ValueError("the model has no variables yet (Keras creates them on the first call): "
                         "call it once on a batch, model(x[:1]), then load")
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
