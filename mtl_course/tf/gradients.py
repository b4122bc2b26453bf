"""Per-task gradients as one Jacobian matrix: the TensorFlow twin of :mod:`mtl_course.torch.gradients`.

The losses are recorded on a ``tf.GradientTape``. Inside a ``tf.function``
:func:`jacobian` stacks them on the same tape and calls ``tape.jacobian``
once, which vectorises the ``T`` backward passes with ``pfor``
(``tf.vectorized_map``) and is traced once. In eager mode ``pfor`` traces a
new graph on every call (about 0.3 s for a small MLP, with a retracing
warning on stderr), which costs far more than the ``T`` backward passes it
saves, so with a persistent tape eager calls take one ``tape.gradient`` per
task instead (measured about 20x faster for 3 tasks on CPU).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from mtl_course.core.methods import resolve_aggregator
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)

__all__ = ["jacobian", "representation_jacobian", "unflatten_gradients", "backward", "aggregator_weights"]


def loss_list(losses: Sequence[tf.Tensor] | Mapping[str, tf.Tensor]) -> list[tf.Tensor]:
    """The losses as a list, checked to be scalar tensors (and, when eager, finite)."""
    names = list(losses.keys()) if isinstance(losses, Mapping) else None
    values = list(losses.values()) if isinstance(losses, Mapping) else list(losses)
    if not values:
        raise ValueError("losses is empty: there must be at least one task loss")
    for k, loss in enumerate(values):
        if not tf.is_tensor(loss) or loss.shape.num_elements() != 1:
            label = repr(names[k]) if names else str(k)
            raise ValueError(f"loss {label} must be a scalar tensor")
    if not tf.executing_eagerly():  # values unknown while tracing: jacobian checks in the graph
        return values
    finite = np.isfinite([float(tf.reshape(loss, [])) for loss in values])
    if not finite.all():
        bad = [repr(names[k]) if names else str(k) for k in np.flatnonzero(~finite)]
        raise ValueError(f"loss(es) {', '.join(bad)} are NaN or inf")
    return values


def jacobian(
    tape: tf.GradientTape,
    losses: Sequence[tf.Tensor] | Mapping[str, tf.Tensor],
    variables: Sequence[tf.Variable | tf.Tensor],
) -> tf.Tensor:
    r"""The Jacobian of the task losses with respect to ``variables``, shape ``(T, P)``.

    Row ``t`` is :math:`\nabla L_t` flattened, the variables concatenated in
    the order given; variables a loss does not depend on give zero columns.
    ``losses`` (a sequence or dict of scalar tensors) must have been computed
    inside ``tape``; call this after the ``with tape:`` block. The losses are
    stacked on the same tape (re-entering it) and differentiated with one
    ``tape.jacobian`` call, vectorised by ``pfor`` (in eager mode with a
    persistent tape: one ``tape.gradient`` per task, which is faster there).

    If vectorisation fails it warns and falls back to
    ``experimental_use_pfor=False`` (a loop of per-task gradients), which
    needs a ``GradientTape(persistent=True)``; with a non-persistent tape a
    ValueError says so. A non-persistent tape can give one Jacobian only.

    Examples:
        >>> import tensorflow as tf
        >>> w = tf.Variable([1.0, 2.0])
        >>> with tf.GradientTape(persistent=True) as tape:
        ...     losses = [tf.reduce_sum(w), tf.reduce_sum(w ** 2)]
        >>> jacobian(tape, losses, [w]).numpy()
        array([[1., 1.],
               [2., 4.]], dtype=float32)
    """
    values = loss_list(losses)
    variables = list(variables)
    if not variables:
        raise ValueError("variables is empty: pass the variables to differentiate with respect to")
    T = len(values)
    zero = tf.UnconnectedGradients.ZERO
    if tf.executing_eagerly() and tape._persistent:  # see the module docstring
        rows = []
        for loss in values:
            grads = tape.gradient(loss, variables, unconnected_gradients=zero)
            rows.append(tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0))
        return tf.stack(rows)
    with tape:  # stack on the tape so that the stacked target is recorded
        stacked = tf.stack([tf.reshape(loss, []) for loss in values])
        if not tf.executing_eagerly():
            stacked = tf.debugging.check_numerics(stacked, "a task loss is NaN or inf")
    try:
        blocks = tape.jacobian(stacked, variables, unconnected_gradients=zero)
    except ValueError as error:  # pfor could not vectorise an operation
        warnings.warn(
            f"jacobian: vectorised jacobian failed ({str(error).splitlines()[0]}); "
            "falling back to experimental_use_pfor=False",
            UserWarning,
            stacklevel=2,
        )
        try:
            blocks = tape.jacobian(
                stacked, variables, unconnected_gradients=zero, experimental_use_pfor=False
            )
        except RuntimeError as fallback_error:
            raise ValueError(
                "the vectorised jacobian failed and the fallback needs "
                "tf.GradientTape(persistent=True)"
            ) from fallback_error
    return tf.concat([tf.reshape(block, [T, -1]) for block in blocks], axis=1)


def representation_jacobian(
    tape: tf.GradientTape,
    losses: Sequence[tf.Tensor] | Mapping[str, tf.Tensor],
    representation: tf.Tensor,
) -> tf.Tensor:
    r"""Gradients of the task losses with respect to the shared representation ``z``.

    Returns ``(T, size(z))``; ``z`` must have been computed inside ``tape``.
    This is MGDA-UB's input (Sener and Koltun, "Multi-Task Learning as
    Multi-Objective Optimization", NeurIPS 2018, section 3.3). To then
    differentiate the weighted loss through the network, record on a
    ``persistent=True`` tape.

    Examples:
        >>> import tensorflow as tf
        >>> x = tf.constant([[1.0, 2.0]])
        >>> with tf.GradientTape(persistent=True) as tape:
        ...     tape.watch(x)
        ...     z = 1.0 * x
        ...     losses = [tf.reduce_sum(z), tf.reduce_sum(z ** 2)]
        >>> representation_jacobian(tape, losses, z).numpy()
        array([[1., 1.],
               [2., 4.]], dtype=float32)
    """
    if not tf.is_tensor(representation):
        raise TypeError(f"representation must be a tf.Tensor, got {type(representation).__name__}")
    return jacobian(tape, losses, [representation])


def unflatten_gradients(
    direction: tf.Tensor, variables: Sequence[tf.Variable | tf.Tensor]
) -> list[tf.Tensor]:
    """Split a flat direction (``P`` elements, as a row of :func:`jacobian`) into
    tensors shaped like ``variables``, ready for
    ``optimizer.apply_gradients(zip(grads, variables))``.

    Examples:
        >>> import tensorflow as tf
        >>> import keras
        >>> layer = keras.layers.Dense(1)
        >>> layer.build((None, 2))
        >>> [tuple(g.shape) for g in unflatten_gradients(tf.range(3.0), layer.trainable_variables)]
        [(2, 1), (1,)]
    """
    variables = list(variables)
    sizes = [int(v.shape.num_elements()) for v in variables]
    if direction.shape.rank != 1 or direction.shape[0] != sum(sizes):
        raise ValueError(
            f"direction must be 1-D with {sum(sizes)} elements (the variables' total), "
            f"got shape {tuple(direction.shape)}"
        )
    pieces = tf.split(direction, sizes)
    return [
        tf.cast(tf.reshape(piece, v.shape), v.dtype) for piece, v in zip(pieces, variables)
    ]


def aggregator_weights(J: tf.Tensor, direction: tf.Tensor) -> np.ndarray:
    r"""Task weights ``w`` with ``w @ J = direction`` (float64 numpy); twin of
    :func:`mtl_course.torch.gradients.aggregator_weights` (least squares on :math:`G w = J d`).

    Examples:
        >>> import tensorflow as tf
        >>> from mtl_course.tf import mgda
        >>> J = tf.constant([[1.0, 0.0], [0.0, 2.0]], dtype=tf.float64)
        >>> aggregator_weights(J, mgda(J)).round(6)
        array([0.8, 0.2])
    """
    J64 = np.asarray(J, dtype=np.float64)
    d64 = np.asarray(direction, dtype=np.float64).reshape(-1)
    return np.linalg.lstsq(J64 @ J64.T, J64 @ d64, rcond=None)[0]


def _raw(variable: object) -> object:
    return getattr(variable, "_value", variable)


def backward(
    tape: tf.GradientTape,
    losses: Sequence[tf.Tensor] | Mapping[str, tf.Tensor],
    shared_variables: Sequence[tf.Variable],
    aggregator: Callable[[tf.Tensor], tf.Tensor] | str,
) -> tuple[list[tuple[tf.Tensor, tf.Variable]], np.ndarray]:
    r"""The gradients of a gradient-aggregation step, and the aggregator's task weights.

    Twin of :func:`mtl_course.torch.gradients.backward`: the shared variables
    get :math:`d = A(J)`, every other trainable variable the tape watched and
    the losses reach gets the gradient of :math:`\sum_t L_t` (a task head's
    own gradient). Keras has no ``.grad``, so this returns
    ``(grads_and_vars, weights)``: pass the pairs to
    ``optimizer.apply_gradients``. The losses must have been recorded on a
    ``tf.GradientTape(persistent=True)`` (two differentiations of them follow).

    Examples:
        >>> import tensorflow as tf, keras
        >>> keras.utils.set_random_seed(0)
        >>> trunk, heads = keras.layers.Dense(4), [keras.layers.Dense(1) for _ in range(2)]
        >>> x, y = tf.random.normal((8, 3)), tf.random.normal((8, 2))
        >>> with tf.GradientTape(persistent=True) as tape:
        ...     z = trunk(x)
        ...     losses = [tf.reduce_mean((h(z)[:, 0] - y[:, t]) ** 2) for t, h in enumerate(heads)]
        >>> pairs, w = backward(tape, losses, trunk.trainable_variables, "upgrad")
        >>> _ = keras.optimizers.SGD(0.1).apply_gradients(pairs)
        >>> len(pairs), w.shape
        (6, (2,))
    """
    from mtl_course.tf.aggregators import AGGREGATORS

    aggregator = resolve_aggregator(aggregator, AGGREGATORS)
    if not tape._persistent:
        raise ValueError("backward needs the losses recorded on a tf.GradientTape(persistent=True)")
    values = loss_list(losses)
    shared = list(shared_variables)
    if not shared:
        raise ValueError("shared_variables is empty: pass the variables every task shares")
    # The tape watches the tf.Variables inside Keras variables: compare those.
    skip = {id(_raw(v)) for v in shared}
    others = [v for v in tape.watched_variables() if id(_raw(v)) not in skip and getattr(v, "trainable", True)]
    shared_grads, other_grads, weights, J, direction = aggregate_gradients(tape, values, shared, aggregator, others)
    pairs = list(zip(shared_grads, shared)) + [(g, v) for g, v in zip(other_grads, others) if g is not None]
    if weights is None:
        return pairs, aggregator_weights(J, direction)
    return pairs, np.asarray(weights, dtype=np.float64)


def aggregate_gradients(
    tape: tf.GradientTape,
    losses: list[tf.Tensor],
    shared: list,
    aggregator: Callable[[tf.Tensor], tf.Tensor],
    others: list,
    recorder: object = None,
) -> tuple[list[tf.Tensor], list[tf.Tensor | None], tf.Tensor | None, tf.Tensor | None, tf.Tensor | None]:
    """The one home of the aggregated gradient step (``backward`` and ``fit`` use it; graph-safe
    when the aggregator is a built-in one): ``(shared gradients, others' gradients, weights, J, direction)``.

    The shared variables get the aggregated direction, each of ``others`` the gradient of the
    sum of the losses (None where no loss reaches it). For the built-in aggregators (weights
    from ``G = J J^T`` only) ``weights`` is a ``(T,)`` tensor and the direction ``w @ J``; with a
    ``recorder`` (a :class:`~mtl_course.tf.gramian.LayerGramian` that recorded the forward
    pass) ``J`` is never formed (``J`` and ``direction`` are then None). For any other
    aggregator ``weights`` is None (see :func:`aggregator_weights`).
    """
    from mtl_course.tf.gramian import gramian_weights

    weights = J = direction = None
    shared_grads = None
    if recorder is not None:
        w = gramian_weights(aggregator, recorder.gramian(tape, losses))
        if w is not None:
            with tape:
                total = tf.reduce_sum(tf.cast(w, losses[0].dtype) * tf.stack([tf.reshape(v, []) for v in losses]))
            shared_grads = tape.gradient(total, shared, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            weights = tf.cast(w, tf.float64)
    if shared_grads is None:
        J = jacobian(tape, losses, shared)
        w = gramian_weights(aggregator, tf.matmul(J, J, transpose_b=True))
        if w is None:
            direction = aggregator(J)
        else:  # the same direction as aggregator(J), with its weights
            direction = tf.linalg.matvec(J, tf.cast(w, J.dtype), transpose_a=True)
            weights = tf.cast(w, tf.float64)
        shared_grads = unflatten_gradients(direction, shared)
    other_grads: list = []
    if others:
        with tape:  # record the sum on the tape (the losses were recorded inside it)
            total = tf.add_n([tf.reshape(loss, []) for loss in losses])
        other_grads = [None if g is None else tf.convert_to_tensor(g) for g in tape.gradient(total, others)]
    return list(shared_grads), other_grads, weights, J, direction
