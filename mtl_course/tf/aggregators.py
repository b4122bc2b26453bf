"""Gradient aggregators for TensorFlow: the twins of :mod:`mtl_course.torch.aggregators`.

Same names, same arguments, same results: each function validates ``J``
(tasks x parameters), computes the Gram matrix ``J J^T`` in ``J``'s dtype,
hands it (as float64 numpy) to the matching ``*_weights`` function of
:mod:`mtl_course.core.aggregation` (the formula and the paper are there), and
returns ``w^T J`` in ``J``'s dtype. ``pcgrad``'s ``generator`` is a numpy
``Generator``, an int seed or ``None`` in both frameworks, so seeded results
match the PyTorch side exactly.

Half-precision Jacobians get a float32 Gram matrix, and ``J J^T`` is
recomputed from row-rescaled ``J`` where it would underflow or overflow (see the
PyTorch twin). The weights are constants: the result is differentiable with
respect to ``J`` through ``w^T J`` only, as in the PyTorch twin.

The small ``T x T`` solve runs in numpy. Eagerly it is called directly; inside a
``tf.function`` (or a compiled Keras ``train_step``) it runs through
``tf.numpy_function`` on ``G`` with the known output shape ``(T,)``, and the rest
(``G`` from row-rescaled ``J``, ``w^T J``, the finiteness check) stays in
TensorFlow ops, so the functions are graph-safe. In a graph a NaN or inf in
``J`` stops the step with a ``tf.errors.InvalidArgumentError`` whose message
names the problem. With
:func:`mtl_course.tf.gradients.jacobian`::

    J = jacobian(tape, losses, shared_variables)
    grads = unflatten_gradients(upgrad(J), shared_variables)
    optimizer.apply_gradients(zip(grads, shared_variables))
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from mtl_course.core import aggregation as core
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)

__all__ = [
    "mean",
    "mgda",
    "pcgrad",
    "cagrad",
    "nash_mtl",
    "imtl_g",
    "aligned_mtl",
    "upgrad",
    "AGGREGATORS",
]


def _check_jacobian(J: tf.Tensor) -> None:
    """Shape and dtype checks; finiteness is checked on the (much smaller) result."""
    if not tf.is_tensor(J):
        raise TypeError(f"J must be a tf.Tensor, got {type(J).__name__}")
    if J.shape.rank != 2:
        raise ValueError(f"J must be 2-D (tasks, parameters), got shape {tuple(J.shape)}")
    if J.shape[0] == 0:
        raise ValueError("J has no rows: there must be at least one task")
    if not J.dtype.is_floating:
        raise TypeError(f"J must have a floating dtype, got {J.dtype.name}")


def _raise_if_bad_rows(J: tf.Tensor) -> None:
    bad_rows = np.flatnonzero(~tf.reduce_all(tf.math.is_finite(J), axis=1).numpy()).tolist()
    if bad_rows:
        raise ValueError(f"J contains NaN or inf in row(s) {bad_rows}")


def _raise_if_not_finite(J: tf.Tensor, d: tf.Tensor) -> None:
    """The direction ``d`` is finite whenever J is and nothing overflowed, and NaN
    or inf whenever J has a NaN or inf, so only the error path scans all of J.

    As in the PyTorch twin, the sum of ``d`` (one reduction, which propagates NaN and
    inf) is checked first; only when it is not finite, which a sum of huge finite
    values can also be, is every entry of ``d`` checked. Inside a graph the check is a
    ``tf.debugging.Assert`` (run by ``tf.function``'s automatic control dependencies),
    since the values are not known while tracing."""
    if not tf.executing_eagerly():
        finite = tf.cond(tf.math.is_finite(tf.reduce_sum(d)), lambda: tf.constant(True),
                         lambda: tf.reduce_all(tf.math.is_finite(d)))
        tf.debugging.Assert(finite, ["J contains NaN or inf, or the result overflowed in", J.dtype.name])
        return
    if np.isfinite(tf.reduce_sum(d).numpy()) or bool(tf.reduce_all(tf.math.is_finite(d))):
        return
    _raise_if_bad_rows(J)
    raise ValueError(
        f"the aggregated direction overflowed in {J.dtype.name} (the gradients are too large); "
        "rescale the losses or use a wider dtype"
    )


def _gram(J: tf.Tensor) -> tuple[np.ndarray, float]:
    """The Gram matrix as float64 numpy, and the zero tolerance for J's dtype.

    As in the PyTorch twin: recomputed in float64 from row-rescaled J where
    ``J J^T`` overflowed or a non-zero row's squared norm is near underflow
    (TensorFlow flushes subnormal numbers to zero on CPU).
    """
    compute_dtype = J.dtype if J.dtype in (tf.float32, tf.float64) else tf.float32
    info = np.finfo(compute_dtype.as_numpy_dtype)
    rtol = core.gram_rtol(J.shape[0], float(info.eps))
    Jc = tf.cast(J, compute_dtype)
    G = tf.matmul(Jc, Jc, transpose_b=True).numpy().astype(np.float64)
    small = ~(np.diag(G) >= float(info.tiny) / float(info.eps) ** 2)
    finite = bool(np.isfinite(G).all())
    if finite and not small.any():
        return G, rtol
    if not finite:
        _raise_if_bad_rows(J)
    J64 = tf.cast(J, tf.float64)
    row_max = tf.reduce_max(tf.abs(J64), axis=1).numpy()
    if finite and not (row_max > 0)[small].any():
        return G, rtol  # the small rows are exactly zero
    scales = np.where(row_max > 0, row_max, 1.0)
    Js = J64 / scales[:, None]
    return tf.matmul(Js, Js, transpose_b=True).numpy() * np.outer(scales, scales), rtol


def _gram_in_graph(J: tf.Tensor) -> tuple[tf.Tensor, float]:
    """The Gram matrix as a float64 tensor inside a graph, and the zero tolerance.

    Always computed from row-rescaled ``J`` (each row divided by its largest
    entry, the products rescaled in float64), so tiny or huge rows neither
    underflow nor overflow; the eager path does the same only where needed.
    """
    compute_dtype = J.dtype if J.dtype in (tf.float32, tf.float64) else tf.float32
    rtol = core.gram_rtol(J.shape[0], float(np.finfo(compute_dtype.as_numpy_dtype).eps))
    Jc = tf.cast(J, compute_dtype)
    row_max = tf.reduce_max(tf.abs(Jc), axis=1)
    scales = tf.where(row_max > 0, row_max, tf.ones_like(row_max))
    Js = Jc / scales[:, None]
    s64 = tf.cast(scales, tf.float64)
    G = tf.cast(tf.matmul(Js, Js, transpose_b=True), tf.float64) * (s64[:, None] * s64[None, :])
    tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(G)), ["J contains NaN or inf (", J.dtype.name, ")"])
    return G, rtol


def weights_in_graph(G: tf.Tensor, rule: Callable[[np.ndarray, float], np.ndarray], rtol: float) -> tf.Tensor:
    """``rule(G, rtol)`` (a numpy ``*_weights`` function) as a float64 tensor of shape ``(T,)``.

    Eagerly the rule is called directly; in a graph it runs through
    ``tf.numpy_function`` (stateful, so that PCGrad's random draws advance every
    step), with the known output shape set on the result. The rule raises on a
    non-finite ``G``; in a graph that surfaces as ``tf.errors.InvalidArgumentError``.
    """
    T = int(G.shape[0])
    if tf.executing_eagerly():
        return tf.constant(np.asarray(rule(G.numpy().astype(np.float64), rtol), dtype=np.float64))

    def solve(gram: np.ndarray) -> np.ndarray:
        return np.asarray(rule(np.asarray(gram, dtype=np.float64), rtol), dtype=np.float64)

    w = tf.numpy_function(solve, [G], tf.float64, stateful=True, name="aggregator_weights")
    w.set_shape([T])
    return w


def _aggregate(J: tf.Tensor, rule: Callable[[np.ndarray, float], np.ndarray]) -> tf.Tensor:
    """``w^T J`` with ``w = rule(G, rtol)``, eagerly or inside a graph."""
    _check_jacobian(J)
    if tf.executing_eagerly():
        G, rtol = _gram(J)
        return _combine(J, rule(G, rtol), G)
    G, rtol = _gram_in_graph(J)
    return _combine_in_graph(J, weights_in_graph(G, rule, rtol))


def _combine_in_graph(J: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """The graph twin of :func:`_combine`: float64 where the weights exceed J's dtype, float32 for half."""
    largest_float = float(np.finfo(J.dtype.as_numpy_dtype).max)
    wide = tf.float32 if J.dtype.size < 4 else J.dtype
    d = tf.cond(
        tf.reduce_max(tf.abs(weights)) > largest_float / 4,
        lambda: tf.cast(tf.linalg.matvec(tf.cast(J, tf.float64), weights, transpose_a=True), wide),
        lambda: tf.linalg.matvec(tf.cast(J, wide), tf.cast(weights, wide), transpose_a=True),
    )
    d = tf.cast(d, J.dtype)
    _raise_if_not_finite(J, d)
    return d


def _combine(J: tf.Tensor, weights: np.ndarray, G: np.ndarray | None = None) -> tf.Tensor:
    """``weights^T J`` in J's dtype; raises if the direction overflows that dtype.

    ``|weights| @ sqrt(diag(G))`` bounds every entry of the result, so it is only
    checked when that bound comes near the dtype's largest number.
    """
    largest_float = float(np.finfo(J.dtype.as_numpy_dtype).max)
    largest = float(np.max(np.abs(weights)))
    if largest > largest_float / 4:  # weights not representable in J's dtype: combine in float64
        d = tf.linalg.matvec(tf.cast(J, tf.float64), tf.constant(weights, dtype=tf.float64), transpose_a=True)
        d = tf.cast(d, J.dtype)
    elif J.dtype.size < 4:  # half precision: weights rounded to 3 digits would move d; round d once
        d = tf.linalg.matvec(tf.cast(J, tf.float32), tf.constant(weights, dtype=tf.float32), transpose_a=True)
        d = tf.cast(d, J.dtype)
    else:
        d = tf.linalg.matvec(J, tf.constant(weights, dtype=J.dtype), transpose_a=True)
    if G is not None and not float(np.abs(weights) @ np.sqrt(np.diag(G))) < largest_float / 2:
        _raise_if_not_finite(J, d)
    return d


def mean(J: tf.Tensor) -> tf.Tensor:
    """The mean gradient (:func:`mtl_course.core.aggregation.mean_weights`).

    Raises ``ValueError`` naming the rows if ``J`` holds NaN or inf (in a graph, a
    ``tf.errors.InvalidArgumentError``). As in the PyTorch twin the check reads the
    result, not ``J``: the weights are positive, so a NaN or inf anywhere in ``J``
    reaches it.

    Examples:
        >>> import tensorflow as tf
        >>> J = tf.constant([[1.0, 0.0], [-0.5, 1.0]], dtype=tf.float64)
        >>> mean(J).numpy().round(4)
        array([0.25, 0.5 ])
    """
    _check_jacobian(J)
    d = _combine(J, core.mean_weights(np.eye(J.shape[0])))  # the same w @ J as the torch twin
    _raise_if_not_finite(J, d)
    return d


def mgda(J: tf.Tensor) -> tf.Tensor:
    """MGDA, the min-norm convex combination (:func:`mtl_course.core.aggregation.mgda_weights`).

    Examples:
        >>> import tensorflow as tf
        >>> J = tf.constant([[1.0, 0.0], [-0.5, 1.0]], dtype=tf.float64)
        >>> mgda(J).numpy().round(4)
        array([0.3077, 0.4615])
    """
    return _aggregate(J, lambda G, rtol: core.mgda_weights(G))


def pcgrad(J: tf.Tensor, generator: np.random.Generator | int | None = None) -> tf.Tensor:
    """PCGrad, the sum of de-conflicted gradients.

    See :func:`mtl_course.core.aggregation.pcgrad_weights`. ``generator`` (a numpy
    ``Generator``, an int seed or ``None``) draws the random task orders.

    Examples:
        >>> import tensorflow as tf
        >>> J = tf.constant([[1.0, 0.0], [-0.5, 1.0]], dtype=tf.float64)
        >>> pcgrad(J, generator=0).numpy().round(4)
        array([0.8, 1.4])
    """
    return _aggregate(J, lambda G, rtol: core.pcgrad_weights(G, generator))


def cagrad(J: tf.Tensor, c: float = 0.5) -> tf.Tensor:
    """CAGrad with ball radius ``c * ||mean gradient||``.

    See :func:`mtl_course.core.aggregation.cagrad_weights` (which also says how
    it differs from the authors' code, LibMTL and torchjd: no final rescaling).

    Examples:
        >>> import tensorflow as tf
        >>> J = tf.constant([[1.0, 0.0], [-0.5, 1.0]], dtype=tf.float64)
        >>> cagrad(J, c=0.5).numpy().round(4)
        array([0.4579, 0.6868])
    """
    return _aggregate(J, lambda G, rtol: core.cagrad_weights(G, c=c, rtol=rtol))


def nash_mtl(J: tf.Tensor, max_iter: int = 100) -> tf.Tensor:
    """Nash-MTL, solving ``G alpha = 1 / alpha``.

    See :func:`mtl_course.core.aggregation.nash_mtl_weights` (solved exactly:
    no normalisation of the Gram matrix and no clipping of the update, unlike
    the authors' code).

    Examples:
        >>> import tensorflow as tf
        >>> J = tf.constant([[1.0, 0.0], [-0.5, 1.0]], dtype=tf.float64)
        >>> nash_mtl(J).numpy().round(4)
        array([0.7435, 1.203 ])
    """
    return _aggregate(J, lambda G, rtol: core.nash_mtl_weights(G, rtol=rtol, max_iter=max_iter))


def imtl_g(J: tf.Tensor) -> tf.Tensor:
    """IMTL-G, equal projections on every unit gradient.

    See :func:`mtl_course.core.aggregation.imtl_g_weights` (applied to the
    parameter gradients ``J``; the paper uses the gradients on the shared features).

    Examples:
        >>> import tensorflow as tf
        >>> J = tf.constant([[1.0, 0.0], [-0.5, 1.0]], dtype=tf.float64)
        >>> imtl_g(J).numpy().round(4)
        array([0.2918, 0.4721])
    """
    return _aggregate(J, lambda G, rtol: core.imtl_g_weights(G, rtol=rtol))


def aligned_mtl(J: tf.Tensor) -> tf.Tensor:
    """Aligned-MTL, the mean of gradients aligned to condition number 1.

    See :func:`mtl_course.core.aggregation.aligned_mtl_weights` (the mean of
    the aligned gradients; LibMTL uses their sum, ``T`` times longer).

    Examples:
        >>> import tensorflow as tf
        >>> J = tf.constant([[1.0, 0.0], [-0.5, 1.0]], dtype=tf.float64)
        >>> aligned_mtl(J).numpy().round(4)
        array([0.284 , 0.4734])
    """
    return _aggregate(J, lambda G, rtol: core.aligned_mtl_weights(G, rtol=rtol))


def upgrad(J: tf.Tensor) -> tf.Tensor:
    """UPGrad, the mean of the gradients projected onto the dual cone.

    See :func:`mtl_course.core.aggregation.upgrad_weights` (projections solved
    exactly; torchjd adds a 1e-4 ridge to the normalised Gram matrix).

    Examples:
        >>> import tensorflow as tf
        >>> J = tf.constant([[1.0, 0.0], [-0.5, 1.0]], dtype=tf.float64)
        >>> d = upgrad(J)
        >>> d.numpy().round(4), bool(tf.reduce_all(tf.linalg.matvec(J, d) >= 0))
        (array([0.4, 0.7]), True)
    """
    return _aggregate(J, lambda G, rtol: core.upgrad_weights(G, rtol=rtol))


AGGREGATORS: dict[str, Callable[..., tf.Tensor]] = {
    "mean": mean,
    "mgda": mgda,
    "pcgrad": pcgrad,
    "cagrad": cagrad,
    "nash_mtl": nash_mtl,
    "imtl_g": imtl_g,
    "aligned_mtl": aligned_mtl,
    "upgrad": upgrad,
}
"""Aggregator name -> aggregator function; :func:`~mtl_course.tf.train.fit` accepts each name as its ``method``.

Examples:
    >>> import tensorflow as tf
    >>> sorted(AGGREGATORS)
    ['aligned_mtl', 'cagrad', 'imtl_g', 'mean', 'mgda', 'nash_mtl', 'pcgrad', 'upgrad']
    >>> AGGREGATORS["mgda"](tf.eye(2, dtype=tf.float64)).numpy()
    array([0.5, 0.5])
"""
