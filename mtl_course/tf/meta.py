r"""Meta-learning in TensorFlow: Reptile and few-shot adaptation (chapter 11).

Twin of :mod:`mtl_course.torch.meta`, name for name. :func:`reptile_step` is
one outer update of Reptile (Nichol, Achiam and Schulman, "On First-Order
Meta-Learning Algorithms", arXiv 2018) with :math:`k` steps of full-batch SGD
on each task's mean squared error, :math:`\phi_i = U^k_i(\theta)`, then

.. math::

   \theta \leftarrow \theta + \varepsilon \, \frac{1}{n} \sum_{i=1}^{n} (\phi_i - \theta).

The models are single-task Keras regressors mapping ``(n, d_in)`` to
``(n, d_out)``; :func:`adapt` copies them with ``keras.models.clone_model``,
so they must be Sequential or functional models (as
:func:`mtl_course.tf.models.mlp` builds). As in the PyTorch twin, the examples
are used in the model's dtype: float64 for a float64 model (without a detour
through float32), float32 otherwise.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from mtl_course.checks import check_count, check_rate
from mtl_course.core import meta as core_meta
from mtl_course.core.meta import check_examples
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)

__all__ = ["adapt", "reptile", "reptile_step"]

Examples = tuple[np.ndarray, np.ndarray]


def _mse(model: keras.Model, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    prediction = model(x, training=True)
    if tuple(prediction.shape) != tuple(y.shape):
        raise ValueError(f"the model predicts shape {tuple(prediction.shape)} but y has shape {tuple(y.shape)}")
    return tf.reduce_mean(tf.square(prediction - y))


def _sgd(model: keras.Model, variables: list, x: tf.Tensor, y: tf.Tensor, steps: int, lr: float) -> float:
    """``steps`` full-batch SGD steps on the MSE, in place; returns the loss before the first step.

    The loop runs as one compiled graph (:func:`_compiled_sgd`); a non-finite
    loss stops it before that step's update and raises here.
    """
    first, failed_at, bad = _compiled_sgd(model, variables)(x, y, tf.constant(steps, tf.int32),
                                                            tf.constant(lr, x.dtype))
    if int(failed_at) >= 0:
        raise ValueError(f"the loss became {float(bad)} at SGD step {int(failed_at)}: lower the learning rate")
    return float(first)


# model -> (its trainable variables, the compiled SGD loop on them); weak keys, so models can be freed.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled_sgd(model: keras.Model, variables: list) -> Callable:
    """The ``tf.function`` running :func:`_sgd`'s loop on ``model``, traced once per model and input shape.

    It returns ``(first loss, index of the first non-finite loss or -1, that loss)``;
    ``steps`` and ``lr`` are tensors, so new values do not retrace.
    """
    cached = _COMPILED.get(model)
    if cached is not None and len(cached[0]) == len(variables) and all(
            a is b for a, b in zip(cached[0], variables)):
        return cached[1]
    model_ref = weakref.ref(model)  # the function must not keep its own key alive

    @tf.function(reduce_retracing=True)
    def loop(x: tf.Tensor, y: tf.Tensor, steps: tf.Tensor, lr: tf.Tensor) -> tuple:
        first = tf.constant(math.nan, x.dtype)
        failed_at = tf.constant(-1, tf.int32)
        bad = tf.constant(0.0, x.dtype)
        for step in tf.range(steps):
            with tf.GradientTape() as tape:
                loss = _mse(model_ref(), x, y)
            if not tf.math.is_finite(loss):
                failed_at, bad = step, loss
                break
            if step == 0:
                first = loss
            for v, g in zip(variables, tape.gradient(loss, variables)):
                v.assign_sub(lr * g)
        return first, failed_at, bad

    _COMPILED[model] = (list(variables), loop)
    return loop


def _trainable(model: keras.Model) -> list:
    variables = list(model.trainable_variables)
    if not variables:
        raise ValueError("the model has no trainable variables (is it built?)")
    return variables


def _tensors(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[tf.Tensor, tf.Tensor]:
    """The checked examples in the model's floating dtype (float32 or float64), as in the PyTorch twin."""
    weights = model.weights
    float64 = bool(weights) and keras.backend.standardize_dtype(weights[0].dtype) == "float64"
    x, y = check_examples(x, y, float64=float64)
    return tf.constant(x), tf.constant(y)


def reptile_step(model: keras.Model, tasks: Sequence[Examples], inner_steps: int = 5, inner_lr: float = 0.02,
                 outer_lr: float = 0.1) -> float:
    r"""One Reptile outer update of ``model``'s weights, in place, from a batch of tasks.

    Twin of :func:`mtl_course.torch.meta.reptile_step` (same arguments): each
    task gets ``inner_steps`` full-batch SGD steps of size ``inner_lr`` from
    :math:`\theta`, then :math:`\theta` moves by ``outer_lr`` times the mean
    of :math:`\phi_i - \theta`. Returns the tasks' mean MSE at :math:`\theta`.

    Examples:
        >>> import numpy as np
        >>> import keras
        >>> from mtl_course import tf as mtl
        >>> keras.utils.set_random_seed(0)
        >>> model = mtl.mlp((1, 8, 1))
        >>> x = np.linspace(-1, 1, 10).reshape(-1, 1).astype(np.float32)
        >>> _ = model(x)
        >>> before = model.get_weights()
        >>> loss = reptile_step(model, [(x, 2 * x), (x, -x)], inner_steps=3)
        >>> isinstance(loss, float), any(not np.array_equal(p, q) for p, q in zip(before, model.get_weights()))
        (True, True)
    """
    inner_steps, inner_lr, outer_lr = core_meta.check_reptile_arguments(tasks, inner_steps, inner_lr, outer_lr)
    variables = _trainable(model)
    data = [_tensors(model, x, y) for x, y in tasks]
    theta = [tf.identity(v) for v in variables]
    delta = [tf.zeros_like(v) for v in variables]
    losses = []
    try:
        for x, y in data:
            losses.append(_sgd(model, variables, x, y, inner_steps, inner_lr))
            delta = [d + (v - t) for d, v, t in zip(delta, variables, theta)]
            for v, t in zip(variables, theta):
                v.assign(t)
    except Exception:
        for v, t in zip(variables, theta):  # leave the model as it was
            v.assign(t)
        raise
    for v, t, d in zip(variables, theta, delta):
        v.assign(t + outer_lr * (d / len(data)))
    return float(np.mean(losses))


def reptile(model: keras.Model, sample_task: Callable[[np.random.Generator], Examples], meta_steps: int,
            meta_batch_size: int = 1, inner_steps: int = 5, inner_lr: float = 0.02, outer_lr: float = 0.1,
            seed: int = 0, progress: bool = True) -> np.ndarray:
    """Meta-train ``model`` with Reptile: ``meta_steps`` calls of :func:`reptile_step`.

    Twin of :func:`mtl_course.torch.meta.reptile`: ``sample_task(rng)``
    returns one new task's ``(x, y)``, drawn with a numpy Generator seeded
    with ``seed``, so both twins see the same tasks. Returns the
    pre-adaptation loss of every step.

    Examples:
        >>> import numpy as np
        >>> import keras
        >>> from mtl_course import tf as mtl
        >>> keras.utils.set_random_seed(0)
        >>> model = mtl.mlp((1, 8, 1))
        >>> _ = model(np.zeros((1, 1)))
        >>> def sample_task(rng):
        ...     x = rng.uniform(-1, 1, size=(10, 1)).astype(np.float32)
        ...     return x, rng.uniform(0.5, 2) * x
        >>> losses = reptile(model, sample_task, meta_steps=4, progress=False)
        >>> losses.shape
        (4,)
    """
    return core_meta.reptile_loop(lambda batch: reptile_step(model, batch, inner_steps, inner_lr, outer_lr),
                                  sample_task, meta_steps, meta_batch_size, seed, progress)


def adapt(model: keras.Model, x: np.ndarray, y: np.ndarray, steps: int = 32, lr: float = 0.02) -> keras.Model:
    """A copy of ``model`` fine-tuned on one task's examples by ``steps`` full-batch SGD steps on the MSE.

    Twin of :func:`mtl_course.torch.meta.adapt`; ``model`` itself is not changed.

    Examples:
        >>> import numpy as np
        >>> import keras
        >>> from mtl_course import tf as mtl
        >>> keras.utils.set_random_seed(0)
        >>> model = mtl.mlp((1, 8, 1))
        >>> x = np.linspace(-1, 1, 10).reshape(-1, 1).astype(np.float32)
        >>> y = 2 * x
        >>> _ = model(x)
        >>> tuned = adapt(model, x, y, steps=50, lr=0.1)
        >>> mse = lambda m: float(((np.asarray(m(x)) - y) ** 2).mean())
        >>> mse(tuned) < mse(model)  # model itself is unchanged
        True
    """
    steps = check_count(steps, "steps", 0)
    lr = check_rate(lr, "lr")
    x_t, y_t = _tensors(model, x, y)
    adapted = keras.models.clone_model(model)
    if steps:
        # Train ``model`` itself and restore it, so its compiled loop is reused instead of traced for a clone.
        before = model.get_weights()
        try:
            _sgd(model, _trainable(model), x_t, y_t, steps, lr)
            adapted.set_weights(model.get_weights())
        finally:
            model.set_weights(before)
    else:
        adapted.set_weights(model.get_weights())
    return adapted
