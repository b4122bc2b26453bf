"""Cross-stitch networks (Keras)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import tensorflow as tf

from mtl_course.checks import check_mapping, check_task_names
from mtl_course.core.model_config import cross_stitch_init, cross_stitch_parts
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)
from mtl_course.tf.models.base import MultiTaskModel, variables_of


class CrossStitchUnit(keras.layers.Layer):
    """Mixes the activations of ``T`` task columns: ``x~_t = sum_s alpha_ts x_s``
    (twin of :class:`mtl_course.torch.models.CrossStitchUnit`).

    Examples:
        >>> import tensorflow as tf
        >>> unit = CrossStitchUnit(2, alpha_self=0.9)
        >>> mixed = unit([tf.constant([[1.0]]), tf.constant([[0.0]])])
        >>> unit.alpha.numpy().round(4)
        array([[0.9, 0.1],
               [0.1, 0.9]], dtype=float32)
        >>> [round(float(a[0, 0]), 4) for a in mixed]
        [0.9, 0.1]
    """

    def __init__(self, num_tasks: int, alpha_self: float = 0.9, **kwargs) -> None:
        super().__init__(**kwargs)
        init = cross_stitch_init(num_tasks, alpha_self)
        self.alpha = self.add_weight(
            shape=init.shape, initializer=keras.initializers.Constant(init), name="alpha", trainable=True
        )

    def call(self, activations: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        shapes = {tuple(a.shape) for a in activations}
        if len(shapes) != 1:
            raise ValueError(f"cross-stitch needs activations of one shape across tasks, got {sorted(shapes, key=str)}")
        stacked = tf.stack(list(activations))  # (T, batch, ...)
        mixed = tf.tensordot(tf.convert_to_tensor(self.alpha), stacked, axes=[[1], [0]])
        return tf.unstack(mixed, num=len(activations))


class CrossStitch(MultiTaskModel):
    """Cross-stitch network (Misra, Shrivastava, Gupta and Hebert, CVPR 2016);
    Keras twin of :class:`mtl_course.torch.models.CrossStitch` (see there for
    the formula and the parameter split).

    Args:
        towers: task name -> list of Keras layers (the stages).
        heads: optional task name -> head layer, applied after the last stage.
        alpha_self: initial diagonal of every cross-stitch matrix.

    Examples:
        >>> import tensorflow as tf
        >>> import keras
        >>> towers = {t: [keras.layers.Dense(4), keras.layers.Dense(1)] for t in ('a', 'b')}  # 2 stages, 1 unit
        >>> model = CrossStitch(towers)
        >>> {k: tuple(v.shape) for k, v in model(tf.ones((2, 3))).items()}
        {'a': (2, 1), 'b': (2, 1)}
    """

    def __init__(
        self,
        towers: Mapping[str, Sequence[keras.layers.Layer]],
        heads: Mapping[str, keras.layers.Layer] | None = None,
        alpha_self: float = 0.9,
        **kwargs,
    ) -> None:
        towers = check_mapping(towers, "towers")
        names = check_task_names(list(towers), "towers")
        super().__init__(names, **kwargs)
        columns, heads, depth = cross_stitch_parts(towers, heads, keras.layers.Layer, "Keras layer")
        self.towers = columns
        self.heads = heads
        self.units = [CrossStitchUnit(len(names), alpha_self) for _ in range(depth - 1)]

    def call(self, x) -> dict[str, tf.Tensor]:
        activations = [x] * len(self.task_names)
        for i, unit in enumerate([*self.units, None]):
            activations = [self.towers[n][i](a) for n, a in zip(self.task_names, activations)]
            if unit is not None:
                activations = unit(activations)
        if self.heads is not None:
            activations = [self.heads[n](a) for n, a in zip(self.task_names, activations)]
        return dict(zip(self.task_names, activations))

    def shared_parameters(self) -> list:
        early = [stage for name in self.task_names for stage in self.towers[name][:-1]]
        return variables_of([*self.units, *early])

    def task_parameters(self, name: str) -> list:
        self._check_task(name)
        layers = [self.towers[name][-1]]
        if self.heads is not None:
            layers.append(self.heads[name])
        return variables_of(layers)
