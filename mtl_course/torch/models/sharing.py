"""Hard and soft parameter sharing (PyTorch)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from mtl_course.checks import check_mapping
from mtl_course.core.model_config import check_coupling, check_same_shapes, check_strength
from mtl_course.torch.models.base import MultiTaskModel


def _check_modules(modules: dict, what: str) -> None:
    for name, module in modules.items():
        if not isinstance(module, nn.Module):
            raise TypeError(f"{what}[{name!r}] must be a torch.nn.Module, got {type(module).__name__}")


class HardSharing(MultiTaskModel):
    """Hard parameter sharing: one shared trunk, one head per task.

    ``z = trunk(x)`` and ``y_t = head_t(z)`` for every task ``t``: all heads
    branch from the trunk output (they are never stacked one after another).
    This is the "shared-bottom" architecture of Caruana, "Multitask Learning",
    Machine Learning 28 (1997).

    Args:
        trunk: the shared module; its output is the shared representation ``z``.
        heads: task name -> head module, each taking ``z`` (a dict or an ``nn.ModuleDict``).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = HardSharing(nn.Linear(3, 8), nn.ModuleDict({"a": nn.Linear(8, 1), "b": nn.Linear(8, 5)}))
        >>> {k: tuple(v.shape) for k, v in model(torch.ones(2, 3)).items()}
        {'a': (2, 1), 'b': (2, 5)}
    """

    def __init__(self, trunk: nn.Module, heads: Mapping[str, nn.Module]) -> None:
        heads = check_mapping(heads, "heads")
        super().__init__(list(heads))
        _check_modules({"trunk": trunk}, "trunk")
        _check_modules(heads, "heads")
        self.trunk = trunk
        self.heads = nn.ModuleDict(heads)

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """The shared representation ``z = trunk(x)`` (what MGDA-UB differentiates)."""
        return self.trunk(x)

    def heads_forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every head applied to the shared representation ``z``."""
        return {name: self.heads[name](z) for name in self.task_names}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads_forward(self.representation(x))

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self._check_task(name)
        return list(self.heads[name].parameters())


class SoftSharing(MultiTaskModel):
    """Soft parameter sharing: one tower per task, coupled by a penalty.

    Each task has its own tower with the same architecture; nothing is shared
    (:meth:`shared_parameters` is empty). :meth:`penalty` pulls corresponding
    parameters together and is added to the training loss:

    - ``"l2"``: ``strength * sum_p sum_{t<s} ||theta_t^p - theta_s^p||^2``, the
      squared L2 distance between the towers (Duong, Cohn, Bird and Cook,
      "Low Resource Dependency Parsing: Cross-lingual Parameter Sharing in a
      Neural Network Parser", ACL 2015);
    - ``"trace_norm"``: ``strength * sum_p ||W^p||_*``, where ``W^p`` is the
      ``T x numel`` matrix whose row ``t`` is task ``t``'s flattened parameter
      ``p`` and ``||.||_*`` the nuclear norm (Yang and Hospedales, "Trace Norm
      Regularised Deep Multi-Task Learning", ICLR 2017 workshop track);
    - ``"weight_decay"``: ``strength * sum_t sum_p ||theta_t^p||^2``, each tower's
      own squared norm. This couples nothing: it is plain L2 weight decay of
      separate towers, the control every coupling must beat (it is also the
      penalty ``lambda * sum_j ||W_j||^2`` that some tutorials call "soft sharing").

    ``strength = 0`` gives separate single-task models; a large strength pulls
    the towers together. Since every layer is coupled, output layers included,
    the ``"l2"`` limit is one network whose outputs serve every task (all
    towers equal), not hard sharing with task-specific heads: to mimic that,
    build towers whose heads are not coupled, or use :class:`HardSharing`.

    Examples:
        >>> import torch
        >>> from mtl_course.torch import mlp
        >>> model = SoftSharing({'a': mlp((3, 4, 1)), 'b': mlp((3, 4, 1))}, coupling='l2', strength=0.1)
        >>> {k: tuple(v.shape) for k, v in model(torch.ones(2, 3)).items()}
        {'a': (2, 1), 'b': (2, 1)}
        >>> _ = model.towers['b'].load_state_dict(model.towers['a'].state_dict())  # make the towers equal
        >>> float(model.penalty().detach())  # equal towers: no penalty
        0.0
    """

    def __init__(self, towers: Mapping[str, nn.Module], coupling: str = "l2", strength: float = 1e-2) -> None:
        towers = check_mapping(towers, "towers")
        super().__init__(list(towers))
        _check_modules(towers, "towers")
        self.coupling = check_coupling(coupling)
        self.strength = check_strength(strength)
        check_same_shapes({n: [tuple(p.shape) for p in t.parameters()] for n, t in towers.items()}, "parameters")
        self.towers = nn.ModuleDict(towers)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: self.towers[name](x) for name in self.task_names}

    def penalty(self) -> torch.Tensor:
        """The coupling term times ``strength`` (a scalar tensor).

        Computed, and part of the autograd graph, even for ``strength = 0``
        (then its value and gradients are exactly zero), so ``backward()`` on it always works.
        """
        per_task = [list(self.towers[name].parameters()) for name in self.task_names]
        first = per_task[0][0] if per_task[0] else None
        total = torch.zeros((), dtype=first.dtype if first is not None else torch.float32,
                            device=first.device if first is not None else None)
        for position in zip(*per_task):
            stacked = torch.stack([p.reshape(-1) for p in position])  # (T, numel)
            if self.coupling == "l2":
                for t in range(len(position)):
                    for s in range(t + 1, len(position)):
                        total = total + (stacked[t] - stacked[s]).pow(2).sum()
            elif self.coupling == "weight_decay":
                total = total + stacked.pow(2).sum()
            else:
                total = total + torch.linalg.matrix_norm(stacked, ord="nuc")
        return self.strength * total

    def shared_parameters(self) -> list[nn.Parameter]:
        return []

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self._check_task(name)
        return list(self.towers[name].parameters())
