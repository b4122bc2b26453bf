"""Building blocks shared by the Keras multi-task models: ``mlp``, ``dense`` and the base class."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import keras
import tensorflow as tf

from mtl_course.checks import check_task_names, layer_sizes
from mtl_course.core.model_config import check_activation
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)


def mlp(sizes: Sequence[int], activation: str | None = "relu", output_activation: bool = False) -> keras.Sequential:
    """A multilayer perceptron of ``Dense`` layers, built for inputs of size ``sizes[0]``.

    Twin of :func:`mtl_course.torch.models.mlp`: ``len(sizes) - 1`` Dense
    layers, the activation inside every one but the last (and in the last too
    when ``output_activation`` is true). The model is built at construction
    (it starts with ``keras.Input``), so its weights exist right away.

    Examples:
        >>> model = mlp((3, 8, 1))
        >>> [(type(layer).__name__, layer.units) for layer in model.layers]
        [('Dense', 8), ('Dense', 1)]
    """
    sizes = layer_sizes(sizes, "sizes")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs an input and an output size, got {sizes}")
    activation = check_activation(activation)
    act = None if activation == "identity" else activation
    layers = [keras.Input(shape=(sizes[0],))]
    for i, d_out in enumerate(sizes[1:]):
        is_last = i == len(sizes) - 2
        layers.append(keras.layers.Dense(d_out, activation=act if (output_activation or not is_last) else None))
    return keras.Sequential(layers)


def dense(d_in: int, d_out: int) -> keras.layers.Dense:
    """A linear ``Dense`` layer built for inputs of size ``d_in`` (used for gates)."""
    layer = keras.layers.Dense(d_out)
    layer.build((None, d_in))
    return layer


def variables_of(layers: Iterable[keras.layers.Layer]) -> list:
    """The trainable variables of several layers, in order, without duplicates.

    Raises ``RuntimeError`` for a layer whose weights do not exist yet.
    """
    seen: set[int] = set()
    variables = []
    for layer in layers:
        if not layer.built:
            raise RuntimeError(
                f"layer {layer.name!r} has no weights yet: call the model once on a batch "
                "(or build its layers with keras.Input) before asking for its parameters"
            )
        for v in layer.trainable_variables:
            if id(v) not in seen:
                seen.add(id(v))
                variables.append(v)
    return variables


class MultiTaskModel(keras.Model):
    """Common interface of the course's Keras multi-task models.

    ``call(x)`` returns a dict ``task name -> output`` in the order of
    :attr:`task_names`. :meth:`shared_parameters` are the variables every
    task's output depends on, :meth:`task_parameters` those only one task uses
    (``keras.Variable`` objects: pass them to ``tf.GradientTape.gradient`` or
    an optimizer as they are).

    Examples:
        >>> import tensorflow as tf
        >>> import keras
        >>> class TwoHeads(MultiTaskModel):
        ...     def __init__(self):
        ...         super().__init__(['a', 'b'])
        ...         self.trunk, self.a, self.b = keras.layers.Dense(4), keras.layers.Dense(1), keras.layers.Dense(1)
        ...     def call(self, x):
        ...         z = self.trunk(x)
        ...         return {'a': self.a(z), 'b': self.b(z)}
        ...     def shared_parameters(self):
        ...         return list(self.trunk.trainable_variables)
        ...     def task_parameters(self, name):
        ...         return list(getattr(self, name).trainable_variables)
        >>> model = TwoHeads()
        >>> _ = model(tf.ones((2, 3)))
        >>> model.task_names, len(model.shared_parameters()), len(model.task_parameters('a'))
        (('a', 'b'), 2, 2)
    """

    def __init__(self, task_names: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self._task_names = check_task_names(task_names)

    @property
    def task_names(self) -> tuple[str, ...]:
        return self._task_names

    def _check_task(self, name: str) -> None:
        if name not in self._task_names:
            raise ValueError(f"unknown task {name!r}; this model's tasks are {self._task_names}")

    def shared_parameters(self) -> list:
        raise NotImplementedError

    def task_parameters(self, name: str) -> list:
        raise NotImplementedError


def check_input(x, features: int) -> tf.Tensor:
    """``x`` as a float tensor, raising unless its shape is ``(batch, features)``."""
    x = tf.convert_to_tensor(x)
    if x.shape.rank != 2 or x.shape[1] != features:
        raise ValueError(f"expected input of shape (batch, {features}), got {tuple(x.shape)}")
    if not x.dtype.is_floating:
        raise TypeError(f"expected a floating-point input, got {x.dtype.name}")
    return x
