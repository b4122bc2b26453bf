"""Mixture-of-experts multi-task models (MMoE, PLE) (PyTorch); ESMM is in ``mtl_course.torch.models.esmm``.

Both take dense float inputs of shape ``(batch, input_dim)``. Each task
tower ends in a ``Linear`` layer without activation: outputs are raw scores
(logits for classification, values for regression), shape ``(batch, out_dim)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mtl_course.core.model_config import mmoe_sizes, ple_sizes, tower_specs
from mtl_course.torch.models.base import MultiTaskModel, check_input, mlp, parameters_of

_MODULE = nn.Module


def _towers(specs: dict, input_dim: int, activation: str) -> dict[str, nn.Module]:
    """Each task's tower: the module given, or an MLP ``(input_dim, *hidden, out)``."""
    return {name: spec if isinstance(spec, nn.Module) else mlp((input_dim, *spec[0], spec[1]), activation)
            for name, spec in specs.items()}


def mix_experts(gate_logits: torch.Tensor, expert_outputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``sum_i softmax(gate_logits)_i f_i``: returns (mixture, gate weights).

    Examples:
        >>> import torch
        >>> experts = [torch.tensor([[1.0, 1.0]]), torch.tensor([[3.0, 5.0]])]
        >>> mixture, gates = mix_experts(torch.zeros(1, 2), experts)  # equal gate logits
        >>> mixture, gates
        (tensor([[2., 3.]]), tensor([[0.5000, 0.5000]]))
    """
    weights = torch.softmax(gate_logits, dim=-1)  # (batch, E)
    stacked = torch.stack(list(expert_outputs), dim=1)  # (batch, E, d)
    return torch.einsum("be,bed->bd", weights, stacked), weights


def _experts(count: int, sizes: Sequence[int], activation: str) -> nn.ModuleList:
    return nn.ModuleList([mlp(sizes, activation, output_activation=True) for _ in range(count)])


class MMoE(MultiTaskModel):
    """Multi-gate Mixture-of-Experts (Ma, Zhao, Yi, Chen, Hong and Chi,
    "Modeling Task Relationships in Multi-task Learning with Multi-gate
    Mixture-of-Experts", KDD 2018).

    Experts ``f_i`` (MLPs ending in the activation) are shared; each task ``k``
    has a gate ``g^k(x) = softmax(W_gk x)`` and a tower ``h^k``:
    ``f^k(x) = sum_i g^k(x)_i f_i(x)`` and ``y_k = h^k(f^k(x))``.

    Args:
        input_dim: number of input features.
        num_experts: number of shared experts.
        expert_hidden: layer sizes of each expert (the last is the expert output size).
        tasks: task names (output size 1 each) or a mapping name -> output size
            or tower module (which receives the mixed expert output).
        tower_hidden: hidden layer sizes of each task tower (may be empty), or a
            mapping task -> hidden sizes for towers of different sizes.
        num_gates: ``None`` for one gate per task (MMoE); ``1`` for a single
            gate shared by all tasks, the paper's one-gate MoE (OMoE) baseline.
        activation: activation of experts and towers.

    Parameters: the experts are shared (and the gate too when ``num_gates=1``);
    task ``k``'s gate and tower are its task parameters.

    Examples:
        >>> import torch
        >>> model = MMoE(6, num_experts=3, expert_hidden=8, tasks={"price": 1, "kind": 5},
        ...              tower_hidden={"price": (4,), "kind": (16, 8)})
        >>> {k: tuple(v.shape) for k, v in model(torch.ones(2, 6)).items()}
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
    ) -> None:
        sizes = tower_specs(tasks, tower_hidden, _MODULE)
        super().__init__(list(sizes))
        self.input_dim, num_experts, expert_hidden, num_gates = mmoe_sizes(
            input_dim, num_experts, expert_hidden, len(sizes), num_gates)
        self.experts = _experts(num_experts, (self.input_dim, *expert_hidden), activation)
        self.gate_layers = nn.ModuleList([nn.Linear(self.input_dim, num_experts) for _ in range(num_gates)])
        self.towers = nn.ModuleDict(_towers(sizes, expert_hidden[-1], activation))

    def _gate_index(self, k: int) -> int:
        return k if len(self.gate_layers) > 1 else 0

    def _mixtures(self, x: torch.Tensor) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        check_input(x, self.input_dim)
        expert_outputs = [expert(x) for expert in self.experts]
        mixtures, weights = [], {}
        for k, name in enumerate(self.task_names):
            mixture, weights[name] = mix_experts(self.gate_layers[self._gate_index(k)](x), expert_outputs)
            mixtures.append(mixture)
        return mixtures, weights

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mixtures, _ = self._mixtures(x)
        return {name: self.towers[name](m) for name, m in zip(self.task_names, mixtures)}

    def gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gate weights ``g^k(x)``: task -> ``(batch, num_experts)``, rows summing to 1."""
        return self._mixtures(x)[1]

    def shared_parameters(self) -> list[nn.Parameter]:
        shared = list(self.experts)
        if len(self.gate_layers) == 1:
            shared.append(self.gate_layers[0])
        return parameters_of(shared)

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self._check_task(name)
        k = self.task_names.index(name)
        own = [self.towers[name]]
        if len(self.gate_layers) > 1:
            own.insert(0, self.gate_layers[k])
        return parameters_of(own)


class CGCLayer(nn.Module):
    """One extraction level of PLE: Customized Gate Control (Tang et al., RecSys 2020).

    Task ``k`` mixes its own experts and the shared experts with its gate;
    unless this is the last level, a shared gate mixes all experts (every
    task's and the shared ones) into the input of the next level's shared experts.
    Task experts, task gates and the shared gate read task ``k``'s, task
    ``k``'s and the shared input respectively.

    Examples:
        >>> import torch
        >>> layer = CGCLayer(['a', 'b'], input_dim=6, num_shared_experts=1, num_task_experts=2, expert_hidden=(8,),
        ...                  activation='relu', with_shared_gate=True)
        >>> x = torch.ones(2, 6)
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
    ) -> None:
        super().__init__()
        sizes = (input_dim, *expert_hidden)
        self.task_names = tuple(task_names)
        self.task_experts = nn.ModuleDict({n: _experts(num_task_experts, sizes, activation) for n in task_names})
        self.shared_experts = _experts(num_shared_experts, sizes, activation)
        self.task_gates = nn.ModuleDict(
            {n: nn.Linear(input_dim, num_task_experts + num_shared_experts) for n in task_names}
        )
        total = len(task_names) * num_task_experts + num_shared_experts
        self.shared_gate = nn.Linear(input_dim, total) if with_shared_gate else None

    def forward(
        self, task_inputs: Sequence[torch.Tensor], shared_input: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor | None, dict[str, torch.Tensor]]:
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
    """Progressive Layered Extraction (Tang, Liu, Zhao and Gong, "Progressive
    Layered Extraction (PLE): A Novel Multi-Task Learning (MTL) Model for
    Personalized Recommendations", RecSys 2020).

    ``num_levels`` stacked :class:`CGCLayer` levels, each with
    ``num_task_experts`` experts per task and ``num_shared_experts`` shared
    experts; then one tower per task. ``num_levels=1`` is the paper's CGC model.

    Args:
        input_dim: number of input features.
        tasks: task names (output size 1 each) or a mapping name -> output size
            or tower module (which receives the mixed expert output).
        num_shared_experts, num_task_experts: experts per level (each >= 1).
        expert_hidden: layer sizes of each expert (the last is its output size).
        num_levels: number of extraction levels.
        tower_hidden: hidden layer sizes of each task tower (may be empty), or a
            mapping task -> hidden sizes for towers of different sizes.
        activation: activation of experts and towers.

    Parameter split: task ``k``'s tower, its last-level experts and gate, and
    (with two or more levels) its gate in the level before are used by task
    ``k`` only; every other parameter reaches every task through the shared
    gates and experts.

    Examples:
        >>> import torch
        >>> model = PLE(6, {"price": 1, "kind": 5}, num_shared_experts=1, num_task_experts=1, expert_hidden=8)
        >>> {k: tuple(v.shape) for k, v in model(torch.ones(2, 6)).items()}
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
    ) -> None:
        sizes = tower_specs(tasks, tower_hidden, _MODULE)
        super().__init__(list(sizes))
        self.input_dim, num_shared_experts, num_task_experts, num_levels, expert_hidden = ple_sizes(
            input_dim, num_shared_experts, num_task_experts, num_levels, expert_hidden)
        self.levels = nn.ModuleList(
            [
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
        )
        self.towers = nn.ModuleDict(_towers(sizes, expert_hidden[-1], activation))

    def _extract(self, x: torch.Tensor) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        check_input(x, self.input_dim)
        task_inputs, shared_input = [x] * len(self.task_names), x
        for level in self.levels:
            task_inputs, shared_input, weights = level(task_inputs, shared_input)
        return task_inputs, weights

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features, _ = self._extract(x)
        return {name: self.towers[name](h) for name, h in zip(self.task_names, features)}

    def gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Last-level task gate weights: task -> ``(batch, num_task_experts + num_shared_experts)``,
        own experts first, then the shared ones; rows sum to 1."""
        return self._extract(x)[1]

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self._check_task(name)
        last = self.levels[-1]
        own = [last.task_experts[name], last.task_gates[name]]
        if len(self.levels) > 1:
            own.append(self.levels[-2].task_gates[name])
        return parameters_of([*own, self.towers[name]])

    def shared_parameters(self) -> list[nn.Parameter]:
        own = {id(p) for name in self.task_names for p in self.task_parameters(name)}
        return [p for p in self.parameters() if id(p) not in own]
