r"""The Gram matrix of the task gradients, :math:`G = J J^\top`, built layer by layer without ``J``.

TensorFlow twin of :mod:`mtl_course.torch.gramian` (see it for the formula):
for a ``Dense`` layer :math:`z = a W + b` with inputs ``A`` and task output
gradients :math:`D_t = \partial L_t / \partial z`,
:math:`\langle g_s, g_t\rangle = \sum_{b,b'} (A A^\top)[b,b'] (D_s D_t^\top)[b,b']`
plus the bias term.

:class:`LayerGramian` wraps, while it is entered, every ``keras.layers.Dense``
and ``keras.layers.Conv2D`` whose variables are among the shared ones, so that
the forward pass records each layer's input and its pre-activation output
``z`` (Keras's own ``call`` still does the computing; the wrapper only wraps
``call`` and ``activation``). Then, on the tape that recorded the forward pass:

* ``Dense``: the Gram trick or the per-task kernel gradients :math:`A^\top D_t`,
  whichever is cheaper (:func:`mtl_course.core.gramian.linear_layer_costs`);
* ``Conv2D``: the per-task gradients of that layer's kernel and bias only,
  from the recorded ``z`` and :math:`D_t`;
* **fallback to the explicit Jacobian** for every other shared variable
  (other layer types, a layer called more than once, LoRA or quantized
  ``Dense``): :func:`mtl_course.tf.gradients.jacobian` on those variables, adding
  :math:`J_{rest} J_{rest}^\top`.

It works eagerly and inside ``tf.function`` (fit's compiled step uses it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from mtl_course.core import gramian as core
from mtl_course.core.aggregation import gram_rtol
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)

__all__ = ["LayerGramian", "gramian_weights"]


def _layers_of(model: keras.layers.Layer) -> list:
    flatten = getattr(model, "_flatten_layers", None)
    return list(flatten(include_self=True, recursive=True)) if flatten else [model]


def _plain(layer: keras.layers.Layer) -> bool:
    """A Dense or Conv2D that computes ``activation(z)`` with a plain kernel (no LoRA, no quantization)."""
    if type(layer) not in (keras.layers.Dense, keras.layers.Conv2D):
        return False
    return not getattr(layer, "lora_enabled", False) and getattr(layer, "quantization_mode", None) is None


class LayerGramian:
    """Records the shared layers during a forward pass, then builds ``G = J J^T`` without ``J``.

    Use it around the forward pass, on a persistent tape::

        with tf.GradientTape(persistent=True) as tape, LayerGramian(model) as recorder:
            outputs = model(x, training=True)
            losses = [loss_fn(outputs[t], y[t]) for t in tasks]
        G = recorder.gramian(tape, losses)     # (T, T)

    Args:
        model: the Keras model (or layer) whose forward pass is recorded; built.
        variables: what ``J`` is taken with respect to (default
            ``model.shared_parameters()``).

    ``G`` equals ``J J^T`` of :func:`mtl_course.tf.gradients.jacobian` to rounding.

    Examples:
        >>> import tensorflow as tf
        >>> import keras
        >>> from mtl_course import tf as mtl
        >>> keras.utils.set_random_seed(0)
        >>> model = mtl.HardSharing(mtl.mlp((3, 4)), {'a': mtl.mlp((4, 1)), 'b': mtl.mlp((4, 1))})
        >>> x = tf.random.normal((8, 3))
        >>> _ = model(x)
        >>> with tf.GradientTape(persistent=True) as tape, LayerGramian(model) as recorder:
        ...     out = model(x, training=True)
        ...     losses = [tf.reduce_mean(out['a'] ** 2), tf.reduce_mean(tf.abs(out['b']))]
        >>> G = recorder.gramian(tape, losses)
        >>> J = mtl.jacobian(tape, losses, model.shared_parameters())
        >>> G.shape, bool(tf.reduce_all(tf.abs(G - tf.matmul(J, J, transpose_b=True)) < 1e-6))
        (TensorShape([2, 2]), True)
    """

    def __init__(self, model: keras.layers.Layer, variables: Iterable | None = None) -> None:
        if variables is None:
            if not callable(getattr(model, "shared_parameters", None)):
                raise ValueError("pass variables, or a model with shared_parameters()")
            variables = model.shared_parameters()
        self.variables = list(variables)
        if not self.variables:
            raise ValueError("variables is empty: there is no shared variable to build G for")
        wanted = {id(v) for v in self.variables}
        layers = _layers_of(model)
        owners: dict[int, int] = {}  # how many leaf layers hold each variable (tied weights: several)
        for layer in layers:
            if not _layers_of(layer)[1:]:
                for v in layer.trainable_weights:
                    owners[id(v)] = owners.get(id(v), 0) + 1
        self.layers = [layer for layer in layers if _plain(layer) and layer.trainable_weights
                       and all(id(v) in wanted and owners.get(id(v)) == 1 for v in layer.trainable_weights)]
        self._records: dict[int, list] = {}
        self._originals: dict[int, tuple] = {}

    def __enter__(self) -> LayerGramian:
        self._records = {id(layer): [] for layer in self.layers}
        for layer in self.layers:
            self._wrap(layer)
        return self

    def __exit__(self, *exc_info) -> None:
        for layer in self.layers:
            if id(layer) in self._originals:
                layer.activation = self._originals.pop(id(layer))
                del layer.call  # the instance attribute: back to the class's method

    def _wrap(self, layer: keras.layers.Layer) -> None:
        records = self._records[id(layer)]
        call, activation = layer.call, layer.activation
        self._originals[id(layer)] = activation
        pending: list = []

        def recording_activation(z):
            pending.append(z)
            return activation(z)

        def recording_call(inputs, *args, **kwargs):
            pending.clear()
            out = call(inputs, *args, **kwargs)
            records.append((inputs, pending[0]) if len(pending) == 1 else None)
            return out

        layer.activation = recording_activation
        layer.call = recording_call

    def gramian(self, tape: tf.GradientTape, losses: Sequence[tf.Tensor] | Mapping[str, tf.Tensor]) -> tf.Tensor:
        """``G = J J^T`` (``T x T``) of the forward pass recorded on ``tape`` (persistent)."""
        from mtl_course.tf.gradients import jacobian, loss_list

        values = loss_list(losses)
        T = len(values)
        dtype = values[0].dtype if values[0].dtype in (tf.float32, tf.float64) else tf.float32
        usable = []
        for layer in self.layers:
            records = self._records.get(id(layer), [])
            if len(records) == 1 and records[0] is not None:
                usable.append((layer, *records[0]))
        covered = {id(v) for layer, _, _ in usable for v in layer.trainable_weights}
        rest = [v for v in self.variables if id(v) not in covered]
        G = tf.zeros([T, T], dtype)
        if usable:
            zs = [z for _, _, z in usable]
            D = jacobian(tape, values, zs)  # (T, sum of the z sizes): activations, not parameters
            sizes = [_size(z) for z in zs]
            for (layer, a, z), d in zip(usable, tf.split(D, sizes, axis=1)):
                G = G + _layer_block(tape, layer, a, z, tf.cast(d, dtype), T)
        if rest:
            J = tf.cast(jacobian(tape, values, rest), dtype)
            G = G + tf.matmul(J, J, transpose_b=True)
        return G


def _size(z: tf.Tensor) -> int:
    if z.shape.num_elements() is None:
        raise ValueError("LayerGramian needs static shapes (trace the step once per batch size)")
    return int(z.shape.num_elements())


def _layer_block(tape: tf.GradientTape, layer: keras.layers.Layer, a: tf.Tensor, z: tf.Tensor, d: tf.Tensor,
                 T: int) -> tf.Tensor:
    """One layer's ``J_l J_l^T`` from its input ``a``, pre-activation ``z`` and output gradients ``d`` (T, size z)."""
    if isinstance(layer, keras.layers.Dense):
        d_in, d_out = int(layer.kernel.shape[0]), int(layer.kernel.shape[1])
        A = tf.reshape(tf.cast(a, d.dtype), [-1, d_in])
        Dt = tf.reshape(d, [T, -1, d_out])
        if layer.bias is not None:
            A = tf.concat([A, tf.ones_like(A[:, :1])], axis=1)
        gram, explicit = core.linear_layer_costs(T, int(A.shape[0]), int(A.shape[1]), d_out)
        if gram <= explicit:
            E = tf.matmul(tf.matmul(A, A, transpose_b=True), Dt)  # E_t = (A A^T) D_t
            return tf.matmul(tf.reshape(Dt, [T, -1]), tf.reshape(E, [T, -1]), transpose_b=True)
        rows = tf.reshape(tf.matmul(A, Dt, transpose_a=True), [T, -1])  # per-task [dW; db]
        return tf.matmul(rows, rows, transpose_b=True)
    # Conv2D: the layer's own backward from z to its kernel and bias, once per task
    own = list(layer.trainable_weights)
    rows = []
    for t in range(T):
        grads = tape.gradient(z, own, output_gradients=tf.cast(tf.reshape(d[t], tf.shape(z)), z.dtype))
        rows.append(tf.concat([tf.reshape(tf.cast(g, d.dtype), [-1]) for g in grads], axis=0))
    rows = tf.stack(rows)
    return tf.matmul(rows, rows, transpose_b=True)


def gramian_weights(aggregator: Callable, G: tf.Tensor) -> tf.Tensor | None:
    """The weights ``w`` that ``aggregator`` gives for the Gram matrix ``G``, or None if it needs ``J``.

    Twin of :func:`mtl_course.torch.gramian.gramian_weights`; graph-safe (the
    solve runs through ``tf.numpy_function`` inside a ``tf.function``).
    Returns a tensor of shape ``(T,)`` in ``G``'s dtype.

    Examples:
        >>> import tensorflow as tf
        >>> from mtl_course.tf import mgda
        >>> G = tf.constant([[1.0, 0.0], [0.0, 4.0]], dtype=tf.float64)  # J J^T of J = diag(1, 2)
        >>> gramian_weights(mgda, G).numpy().round(4)
        array([0.8, 0.2])
    """
    from mtl_course.tf.aggregators import AGGREGATORS, weights_in_graph

    rule = core.gram_rule(aggregator, AGGREGATORS)
    if rule is None:
        return None
    eps = float(np.finfo(G.dtype.as_numpy_dtype).eps)
    return tf.cast(weights_in_graph(G, rule, gram_rtol(int(G.shape[0]), eps)), G.dtype)
