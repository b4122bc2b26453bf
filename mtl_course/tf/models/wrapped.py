"""Your own Keras model as a course multi-task model: :func:`wrap` (twin of :mod:`mtl_course.torch.models.wrapped`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import keras
import tensorflow as tf

from mtl_course.checks import check_task_names
from mtl_course.core.model_config import check_heads, outputs_by_task
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)
from mtl_course.tf.models.base import MultiTaskModel, variables_of


def _variables(part: keras.layers.Layer | Iterable) -> list:
    items = [part] if isinstance(part, keras.layers.Layer) else list(part)
    found: dict[int, object] = {}
    for item in items:
        for v in (variables_of([item]) if isinstance(item, keras.layers.Layer) else [item]):
            found.setdefault(id(v), v)
    return list(found.values())


class Wrapped(MultiTaskModel):
    """A Keras layer or model whose outputs are named by task, with its shared variables
    declared (built by :func:`wrap`; twin of :class:`mtl_course.torch.models.Wrapped`).

    Examples:
        >>> import tensorflow as tf
        >>> import keras
        >>> net = keras.Sequential([keras.layers.Dense(4, activation='relu'), keras.layers.Dense(1)])  # one output
        >>> _ = net(tf.ones((1, 3)))
        >>> model = wrap(net, ['price'], shared=net.layers[0])
        >>> type(model).__name__, {k: tuple(v.shape) for k, v in model(tf.ones((5, 3))).items()}
        ('Wrapped', {'price': (5, 1)})
    """

    def __init__(self, module: keras.layers.Layer, tasks: Sequence[str],
                 shared: keras.layers.Layer | Iterable | None = None,
                 heads: Mapping[str, keras.layers.Layer] | None = None, **kwargs) -> None:
        super().__init__(tasks, **kwargs)
        if not isinstance(module, keras.layers.Layer):
            raise TypeError(f"module must be a keras Layer or Model, got {type(module).__name__}")
        self.module = module
        self._heads = check_heads(heads, self.task_names)
        self._shared = shared

    def call(self, x, training=None) -> dict[str, tf.Tensor]:
        out = self.module(x, training=training)
        return outputs_by_task(out, self.task_names, tf.is_tensor(out))

    def shared_parameters(self) -> list:
        owned = {id(v) for head in self._heads.values() for v in variables_of([head])}
        if self._shared is None:  # everything that no head owns
            return [v for v in variables_of([self.module]) if id(v) not in owned]
        return _variables(self._shared)

    def task_parameters(self, name: str) -> list:
        self._check_task(name)
        return variables_of([self._heads[name]]) if name in self._heads else []


def wrap(module: keras.layers.Layer, tasks: Sequence[str], shared: keras.layers.Layer | Iterable | None = None,
         heads: Mapping[str, keras.layers.Layer] | None = None) -> Wrapped:
    """Make your own Keras model a multi-task model that ``fit``, ``backward`` and the aggregators accept.

    Twin of :func:`mtl_course.torch.models.wrap` (see it for the arguments):
    ``module`` returns a tuple or list of outputs in the order of ``tasks``,
    a dict, or one tensor; ``shared`` is the layer (or list of layers /
    variables) every task uses, by default every variable no head owns.

    Examples:
        >>> import keras
        >>> inputs = keras.Input((3,))
        >>> z = keras.layers.Dense(8, activation="relu", name="trunk")(inputs)
        >>> net = keras.Model(inputs, [keras.layers.Dense(1)(z), keras.layers.Dense(5)(z)])
        >>> model = wrap(net, ["price", "kind"], shared=net.get_layer("trunk"))
        >>> {k: tuple(v.shape) for k, v in model(keras.ops.ones((2, 3))).items()}
        {'price': (2, 1), 'kind': (2, 5)}
        >>> len(model.shared_parameters())
        2
    """
    return Wrapped(module, check_task_names(tasks), shared, heads)
