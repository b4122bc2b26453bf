"""Gradient aggregators for TensorFlow: the twins of :mod:`mtl_course.torch.aggregators`.

Same names, same arguments, same results: each function validates ``J``
(tasks x parameters), computes the Gram matrix ``J J^T`` in ``J``'s dtype,
hands it (as float64 numpy) to the matching ``*_weights`` function of
:mod:`mtl_course.core.aggregation` (the formula and the paper are there), and
returns ``w^T J`` in ``J``'s dtype. ``pcgrad``'s ``generator`` is a numpy
``Generator``, an int seed or ``None`` in both frameworks, so seeded results
match the PyTorch side exactly.

The small ``T x T`` solve runs in numpy. Eagerly it is called directly; inside a
``tf.function`` (or a compiled Keras ``train_step``) it runs through
``tf.numpy_function`` on ``G`` with the known output shape ``(T,)``, and the rest
(``G``, ``w^T J``, the finiteness check) stays in TensorFlow ops, so the
functions are graph-safe. In a graph a NaN or inf in ``J`` stops the step with
a ``tf.errors.InvalidArgumentError`` whose message names the problem. With
:func:`mtl_course.tf.gradients.jacobian`::

    J = jacobian(tape, losses, shared_variables)
    grads = unflatten_gradients(upgrad(J), shared_variables)
    optimizer.apply_gradients(zip(grads, shared_variables))
"""

from __future__ import annotations

from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)

from typing import Callable

import numpy as np
import tensorflow as tf

from mtl_course.core import aggregation as core

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


def _raise_if_not_finite(J: tf.Tensor, summary: tf.Tensor) -> None:
    """``summary`` (the Gram matrix or the mean) is finite whenever J is, and NaN or
    inf whenever J has a NaN or inf, so only the error path scans all of J.

    Inside a graph the check is a ``tf.debugging.Assert`` (run by ``tf.function``'s
    automatic control dependencies), since the values are not known while tracing."""
    if not tf.executing_eagerly():
        tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(summary)),
                            ["J contains NaN or inf, or J J^T overflowed in", J.dtype.name])
        return
    if bool(tf.reduce_all(tf.math.is_finite(summary))):
        return
    bad_rows = np.flatnonzero(~tf.reduce_all(tf.math.is_finite(J), axis=1).numpy()).tolist()
    if bad_rows:
        raise ValueError(f"J contains NaN or inf in row(s) {bad_rows}")
    raise ValueError(
        f"J J^T overflowed in {J.dtype.name} (the gradients are too large); "
        "rescale the losses or use float64"
    )


def _gram_tensor(J: tf.Tensor) -> tuple[tf.Tensor, float]:
    """The Gram matrix ``J J^T`` (float32 or float64 tensor), and the zero tolerance for its dtype."""
    compute_dtype = J.dtype if J.dtype in (tf.float32, tf.float64) else tf.float32
    Jc = tf.cast(J, compute_dtype)
    eps = float(np.finfo(compute_dtype.as_numpy_dtype).eps)
    return tf.matmul(Jc, Jc, transpose_b=True), core.gram_rtol(J.shape[0], eps)


def _gram(J: tf.Tensor) -> tuple[np.ndarray, float]:
    """The Gram matrix as float64 numpy (eager only), and the zero tolerance for J's dtype."""
    G, rtol = _gram_tensor(J)
    _raise_if_not_finite(J, G)
    return G.numpy().astype(np.float64), rtol


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
        return _combine(J, rule(G, rtol))
    G, rtol = _gram_tensor(J)
    return _combine(J, weights_in_graph(G, rule, rtol))


def _combine(J: tf.Tensor, weights: np.ndarray | tf.Tensor) -> tf.Tensor:
    weights = tf.cast(weights, J.dtype) if tf.is_tensor(weights) else tf.constant(weights, dtype=J.dtype)
    return tf.linalg.matvec(J, weights, transpose_a=True)


def mean(J: tf.Tensor) -> tf.Tensor:
    """The mean gradient (:func:`mtl_course.core.aggregation.mean_weights`)."""
    _check_jacobian(J)
    d = _combine(J, core.mean_weights(np.eye(J.shape[0])))  # the same w @ J as the torch twin
    _raise_if_not_finite(J, d)
    return d


def mgda(J: tf.Tensor) -> tf.Tensor:
    """MGDA, the min-norm convex combination (:func:`mtl_course.core.aggregation.mgda_weights`)."""
    return _aggregate(J, lambda G, rtol: core.mgda_weights(G))


def pcgrad(J: tf.Tensor, generator: np.random.Generator | int | None = None) -> tf.Tensor:
    """PCGrad, the sum of de-conflicted gradients.

    See :func:`mtl_course.core.aggregation.pcgrad_weights`. ``generator`` (a numpy
    ``Generator``, an int seed or ``None``) draws the random task orders.
    """
    return _aggregate(J, lambda G, rtol: core.pcgrad_weights(G, generator))


def cagrad(J: tf.Tensor, c: float = 0.5) -> tf.Tensor:
    """CAGrad with ball radius ``c * ||mean gradient||``.

    See :func:`mtl_course.core.aggregation.cagrad_weights`.
    """
    return _aggregate(J, lambda G, rtol: core.cagrad_weights(G, c=c, rtol=rtol))


def nash_mtl(J: tf.Tensor, max_iter: int = 100) -> tf.Tensor:
    """Nash-MTL, solving ``G alpha = 1 / alpha``.

    See :func:`mtl_course.core.aggregation.nash_mtl_weights`.
    """
    return _aggregate(J, lambda G, rtol: core.nash_mtl_weights(G, rtol=rtol, max_iter=max_iter))


def imtl_g(J: tf.Tensor) -> tf.Tensor:
    """IMTL-G, equal projections on every unit gradient.

    See :func:`mtl_course.core.aggregation.imtl_g_weights`.
    """
    return _aggregate(J, lambda G, rtol: core.imtl_g_weights(G, rtol=rtol))


def aligned_mtl(J: tf.Tensor) -> tf.Tensor:
    """Aligned-MTL, the mean of gradients aligned to condition number 1.

    See :func:`mtl_course.core.aggregation.aligned_mtl_weights`.
    """
    return _aggregate(J, lambda G, rtol: core.aligned_mtl_weights(G, rtol=rtol))


def upgrad(J: tf.Tensor) -> tf.Tensor:
    """UPGrad, the mean of the gradients projected onto the dual cone.

    See :func:`mtl_course.core.aggregation.upgrad_weights`.
    """
    return _aggregate(J, lambda G, rtol: core.upgrad_weights(G))


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
