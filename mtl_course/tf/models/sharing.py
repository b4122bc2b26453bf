"""Hard and soft parameter sharing (Keras)."""

from __future__ import annotations

from collections.abc import Mapping

import keras
import tensorflow as tf

from mtl_course.checks import check_mapping
from mtl_course.core.model_config import check_coupling, check_same_shapes, check_strength
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)
from mtl_course.tf.models.base import MultiTaskModel, variables_of


def _check_layers(layers: dict, what: str) -> None:
    for name, layer in layers.items():
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(f"{what}[{name!r}] must be a keras Layer or Model, got {type(layer).__name__}")


class HardSharing(MultiTaskModel):
    """Hard parameter sharing: one shared trunk, one head per task (Keras twin of
    :class:`mtl_course.torch.models.HardSharing`; see there for the formula and reference).

    Heads may be unbuilt layers; call the model once on a batch before asking for parameters.

    Examples:
        >>> import keras
        >>> model = HardSharing(keras.layers.Dense(8), {"a": keras.layers.Dense(1), "b": keras.layers.Dense(5)})
        >>> {k: tuple(v.shape) for k, v in model(keras.ops.ones((2, 3))).items()}
        {'a': (2, 1), 'b': (2, 5)}
    """

    def __init__(self, trunk: keras.layers.Layer, heads: Mapping[str, keras.layers.Layer], **kwargs) -> None:
        heads = check_mapping(heads, "heads")
        super().__init__(list(heads), **kwargs)
        _check_layers({"trunk": trunk}, "trunk")
        _check_layers(heads, "heads")
        self.trunk = trunk
        self.heads = heads

    def representation(self, x) -> tf.Tensor:
        """The shared representation ``z = trunk(x)`` (what MGDA-UB differentiates)."""
        return self.trunk(x)

    def heads_forward(self, z) -> dict[str, tf.Tensor]:
        """Every head applied to the shared representation ``z``."""
        return {name: self.heads[name](z) for name in self.task_names}

    def call(self, x) -> dict[str, tf.Tensor]:
        return self.heads_forward(self.representation(x))

    def shared_parameters(self) -> list:
        return variables_of([self.trunk])

    def task_parameters(self, name: str) -> list:
        self._check_task(name)
        return variables_of([self.heads[name]])


class SoftSharing(MultiTaskModel):
    """Soft parameter sharing: one tower per task, coupled by :meth:`penalty`
    (Keras twin of :class:`mtl_course.torch.models.SoftSharing`; see there for
    the ``"l2"``, ``"trace_norm"`` and ``"weight_decay"`` formulas and references).

    Towers must have the same architecture; it is checked as soon as they are built.

    Examples:
        >>> import tensorflow as tf
        >>> from mtl_course.tf import mlp
        >>> model = SoftSharing({'a': mlp((3, 4, 1)), 'b': mlp((3, 4, 1))}, coupling='l2', strength=0.1)
        >>> {k: tuple(v.shape) for k, v in model(tf.ones((2, 3))).items()}
        {'a': (2, 1), 'b': (2, 1)}
        >>> model.towers['b'].set_weights(model.towers['a'].get_weights())  # make the towers equal
        >>> float(model.penalty())  # equal towers: no penalty
        0.0
    """

    def __init__(
        self, towers: Mapping[str, keras.layers.Layer], coupling: str = "l2", strength: float = 1e-2, **kwargs
    ) -> None:
        towers = check_mapping(towers, "towers")
        super().__init__(list(towers), **kwargs)
        _check_layers(towers, "towers")
        self.coupling = check_coupling(coupling)
        self.strength = check_strength(strength)
        self.towers = towers
        if all(t.built for t in towers.values()):
            self._check_architectures()

    def _check_architectures(self) -> None:
        check_same_shapes(
            {n: [tuple(v.shape) for v in variables_of([self.towers[n]])] for n in self.task_names}, "parameters"
        )

    def call(self, x) -> dict[str, tf.Tensor]:
        return {name: self.towers[name](x) for name in self.task_names}

    def penalty(self) -> tf.Tensor:
        """The coupling term times ``strength`` (a scalar float32 tensor)."""
        self._check_architectures()
        total = tf.zeros((), dtype=tf.float32)
        per_task = [variables_of([self.towers[n]]) for n in self.task_names]
        for position in zip(*per_task):
            stacked = tf.stack([tf.reshape(v, [-1]) for v in position])  # (T, numel)
            if self.coupling == "l2":
                for t in range(len(position)):
                    for s in range(t + 1, len(position)):
                        total = total + tf.reduce_sum(tf.square(stacked[t] - stacked[s]))
            elif self.coupling == "weight_decay":
                total = total + tf.reduce_sum(tf.square(stacked))
            else:
                total = total + tf.reduce_sum(tf.linalg.svd(stacked, compute_uv=False))
        return self.strength * total

    def shared_parameters(self) -> list:
        return []

    def task_parameters(self, name: str) -> list:
        self._check_task(name)
        return variables_of([self.towers[name]])
