"""Mixture-of-experts multi-task models (MMoE, PLE) (Keras); ESMM is in ``mtl_course.tf.models.esmm``.

Twins of :mod:`mtl_course.torch.models.experts`, with the same arguments,
outputs and parameter split; the docstrings there give formulas and papers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import tensorflow as tf

from mtl_course.core.model_config import mmoe_sizes, ple_sizes, tower_specs
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)
from mtl_course.tf.models.base import MultiTaskModel, check_input, dense, mlp, variables_of

_MODULE = keras.layers.Layer


def _towers(specs: dict, input_dim: int, activation: str) -> dict[str, keras.layers.Layer]:
    """Each task's tower: the layer given, or an MLP ``(input_dim, *hidden, out)``."""
    return {name: spec if isinstance(spec, keras.layers.Layer) else mlp((input_dim, *spec[0], spec[1]), activation)
            for name, spec in specs.items()}


def mix_experts(gate_logits: tf.Tensor, expert_outputs: Sequence[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """``sum_i softmax(gate_logits)_i f_i``: returns (mixture, gate weights).

    Examples:
        >>> import tensorflow as tf
        >>> experts = [tf.constant([[1.0, 1.0]]), tf.constant([[3.0, 5.0]])]
        >>> mixture, gates = mix_experts(tf.zeros((1, 2)), experts)  # equal gate logits
        >>> mixture.numpy(), gates.numpy()
        (array([[2., 3.]], dtype=float32), array([[0.5, 0.5]], dtype=float32))
    """
    weights = tf.nn.softmax(gate_logits, axis=-1)  # (batch, E)
    stacked = tf.stack(list(expert_outputs), axis=1)  # (batch, E, d)
    return tf.einsum("be,bed->bd", weights, stacked), weights


def _experts(count: int, sizes: Sequence[int], activation: str) -> list[keras.Sequential]:
    return [mlp(sizes, activation, output_activation=True) for _ in range(count)]


class MMoE(MultiTaskModel):
    """Multi-gate Mixture-of-Experts (Ma et al., KDD 2018); twin of
    :class:`mtl_course.torch.models.MMoE`. ``num_gates=1`` is the one-gate MoE baseline.

    Examples:
        >>> import keras
        >>> model = MMoE(6, num_experts=3, expert_hidden=8, tasks={"price": 1, "kind": 5},
        ...              tower_hidden={"price": (4,), "kind": (16, 8)})
        >>> {k: tuple(v.shape) for k, v in model(keras.ops.ones((2, 6))).items()}
        {'price': (2, 1), 'kind': (2, 5)}
    """

    def __init__(
        self,
        input_dim: int,
        num_experts: int,
        expert_hidden: int | Sequence[int],
        tasks: Sequence[str] | Mapping[str, int],
        tower_hidden: int | Sequence[int] | Mapping[str, int | Sequence[int]] = (),
        num_gates: int | None = None,
        activation: str = "relu",
        **kwargs,
    ) -> None:
        sizes = tower_specs(tasks, tower_hidden, _MODULE)
        super().__init__(list(sizes), **kwargs)
        self.input_dim, num_experts, expert_hidden, num_gates = mmoe_sizes(
            input_dim, num_experts, expert_hidden, len(sizes), num_gates)
        self.experts = _experts(num_experts, (self.input_dim, *expert_hidden), activation)
        self.gate_layers = [dense(self.input_dim, num_experts) for _ in range(num_gates)]
        self.towers = _towers(sizes, expert_hidden[-1], activation)

    def _gate_index(self, k: int) -> int:
        return k if len(self.gate_layers) > 1 else 0

    def _mixtures(self, x) -> tuple[list[tf.Tensor], dict[str, tf.Tensor]]:
        x = check_input(x, self.input_dim)
        expert_outputs = [expert(x) for expert in self.experts]
        mixtures, weights = [], {}
        for k, name in enumerate(self.task_names):
            mixture, weights[name] = mix_experts(self.gate_layers[self._gate_index(k)](x), expert_outputs)
            mixtures.append(mixture)
        return mixtures, weights

    def call(self, x) -> dict[str, tf.Tensor]:
        mixtures, _ = self._mixtures(x)
        return {name: self.towers[name](m) for name, m in zip(self.task_names, mixtures)}

    def gates(self, x) -> dict[str, tf.Tensor]:
        """Gate weights ``g^k(x)``: task -> ``(batch, num_experts)``, rows summing to 1."""
        return self._mixtures(x)[1]

    def shared_parameters(self) -> list:
        shared = list(self.experts)
        if len(self.gate_layers) == 1:
            shared.append(self.gate_layers[0])
        return variables_of(shared)

    def task_parameters(self, name: str) -> list:
        self._check_task(name)
        k = self.task_names.index(name)
        own = [self.towers[name]]
        if len(self.gate_layers) > 1:
            own.insert(0, self.gate_layers[k])
        return variables_of(own)


class CGCLayer(keras.layers.Layer):
    """One extraction level of PLE (Customized Gate Control); twin of
    :class:`mtl_course.torch.models.CGCLayer`.

    Examples:
        >>> import tensorflow as tf
        >>> layer = CGCLayer(['a', 'b'], input_dim=6, num_shared_experts=1, num_task_experts=2, expert_hidden=(8,),
        ...                  activation='relu', with_shared_gate=True)
        >>> x = tf.ones((2, 6))
        >>> outputs, shared_next, gates = layer([x, x], x)
        >>> [tuple(o.shape) for o in outputs], tuple(shared_next.shape), tuple(gates['a'].shape)  # 2 + 1 experts
        ([(2, 8), (2, 8)], (2, 8), (2, 3))
    """

    def __init__(
        self,
        task_names: Sequence[str],
        input_dim: int,
        num_shared_experts: int,
        num_task_experts: int,
        expert_hidden: Sequence[int],
        activation: str,
        with_shared_gate: bool,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        sizes = (input_dim, *expert_hidden)
        self.task_names = tuple(task_names)
        self.task_experts = {n: _experts(num_task_experts, sizes, activation) for n in task_names}
        self.shared_experts = _experts(num_shared_experts, sizes, activation)
        self.task_gates = {n: dense(input_dim, num_task_experts + num_shared_experts) for n in task_names}
        total = len(task_names) * num_task_experts + num_shared_experts
        self.shared_gate = dense(input_dim, total) if with_shared_gate else None
        self.built = True

    def call(self, task_inputs, shared_input):
        shared_out = [e(shared_input) for e in self.shared_experts]
        task_out = {n: [e(h) for e in self.task_experts[n]] for n, h in zip(self.task_names, task_inputs)}
        outputs, weights = [], {}
        for name, h in zip(self.task_names, task_inputs):
            mixture, weights[name] = mix_experts(self.task_gates[name](h), task_out[name] + shared_out)
            outputs.append(mixture)
        shared_next = None
        if self.shared_gate is not None:
            everything = [o for n in self.task_names for o in task_out[n]] + shared_out
            shared_next, _ = mix_experts(self.shared_gate(shared_input), everything)
        return outputs, shared_next, weights


class PLE(MultiTaskModel):
    """Progressive Layered Extraction (Tang et al., RecSys 2020); twin of
    :class:`mtl_course.torch.models.PLE`.

    Examples:
        >>> import keras
        >>> model = PLE(6, {"price": 1, "kind": 5}, num_shared_experts=1, num_task_experts=1, expert_hidden=8)
        >>> {k: tuple(v.shape) for k, v in model(keras.ops.ones((2, 6))).items()}
        {'price': (2, 1), 'kind': (2, 5)}
    """

    def __init__(
        self,
        input_dim: int,
        tasks: Sequence[str] | Mapping[str, int],
        num_shared_experts: int,
        num_task_experts: int,
        expert_hidden: int | Sequence[int],
        num_levels: int = 1,
        tower_hidden: int | Sequence[int] | Mapping[str, int | Sequence[int]] = (),
        activation: str = "relu",
        **kwargs,
    ) -> None:
        sizes = tower_specs(tasks, tower_hidden, _MODULE)
        super().__init__(list(sizes), **kwargs)
        self.input_dim, num_shared_experts, num_task_experts, num_levels, expert_hidden = ple_sizes(
            input_dim, num_shared_experts, num_task_experts, num_levels, expert_hidden)
        self.levels = [
            CGCLayer(
                self.task_names,
                self.input_dim if level == 0 else expert_hidden[-1],
                num_shared_experts,
                num_task_experts,
                expert_hidden,
                activation,
                with_shared_gate=level < num_levels - 1,
            )
            for level in range(num_levels)
        ]
        self.towers = _towers(sizes, expert_hidden[-1], activation)

    def _extract(self, x) -> tuple[list[tf.Tensor], dict[str, tf.Tensor]]:
        x = check_input(x, self.input_dim)
        task_inputs, shared_input = [x] * len(self.task_names), x
        for level in self.levels:
            task_inputs, shared_input, weights = level(task_inputs, shared_input)
        return task_inputs, weights

    def call(self, x) -> dict[str, tf.Tensor]:
        features, _ = self._extract(x)
        return {name: self.towers[name](h) for name, h in zip(self.task_names, features)}

    def gates(self, x) -> dict[str, tf.Tensor]:
        """Last-level task gate weights: task -> ``(batch, num_task_experts + num_shared_experts)``."""
        return self._extract(x)[1]

    def task_parameters(self, name: str) -> list:
        self._check_task(name)
        last = self.levels[-1]
        own = [*last.task_experts[name], last.task_gates[name]]
        if len(self.levels) > 1:
            own.append(self.levels[-2].task_gates[name])
        return variables_of([*own, self.towers[name]])

    def shared_parameters(self) -> list:
        own = {id(v) for name in self.task_names for v in self.task_parameters(name)}
        return [v for v in self.trainable_variables if id(v) not in own]
