"""Your own PyTorch module as a course multi-task model: :func:`wrap` (twin of :mod:`mtl_course.tf.models.wrapped`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn

from mtl_course.checks import check_task_names
from mtl_course.core.model_config import check_heads, outputs_by_task
from mtl_course.torch.models.base import MultiTaskModel


def _parameters(part: nn.Module | Iterable[nn.Module | nn.Parameter]) -> list[nn.Parameter]:
    items = [part] if isinstance(part, nn.Module) else list(part)
    found: dict[int, nn.Parameter] = {}
    for item in items:
        for p in (item.parameters() if isinstance(item, nn.Module) else [item]):
            found.setdefault(id(p), p)
    return list(found.values())


class Wrapped(MultiTaskModel):
    """A module whose outputs are named by task, with its shared parameters declared.

    Built by :func:`wrap`; ``module`` is registered as a submodule, so
    ``parameters()``, ``state_dict()`` and ``.to(device)`` see its parameters.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))  # one task: a plain tensor
        >>> model = wrap(net, ['price'], shared=net[0])
        >>> type(model).__name__, {k: tuple(v.shape) for k, v in model(torch.ones(5, 3)).items()}
        ('Wrapped', {'price': (5, 1)})
    """

    def __init__(self, module: nn.Module, tasks: Sequence[str],
                 shared: nn.Module | Iterable[nn.Module | nn.Parameter] | None = None,
                 heads: Mapping[str, nn.Module] | None = None) -> None:
        super().__init__(tasks)
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        self.module = module
        self._heads = check_heads(heads, self.task_names)
        owned = {id(p) for head in self._heads.values() for p in head.parameters()}
        if shared is None:  # everything that no head owns
            self._shared = [p for p in module.parameters() if id(p) not in owned]
        else:
            self._shared = _parameters(shared)
            inside = {id(p) for p in module.parameters()}
            if any(id(p) not in inside for p in self._shared):
                raise ValueError("shared must be parameters (or submodules) of module")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.module(x)
        return outputs_by_task(out, self.task_names, isinstance(out, torch.Tensor))

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self._shared)

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self._check_task(name)
        return list(self._heads[name].parameters()) if name in self._heads else []


def wrap(module: nn.Module, tasks: Sequence[str],
         shared: nn.Module | Iterable[nn.Module | nn.Parameter] | None = None,
         heads: Mapping[str, nn.Module] | None = None) -> Wrapped:
    """Make your own module a multi-task model that ``fit``, ``backward`` and the aggregators accept.

    Args:
        module: returns one output per task: a tuple or list in the order of
            ``tasks``, a dict task -> output, or (one task) a tensor.
        tasks: the task names, in the order of the module's outputs.
        shared: the parameters every task uses (a submodule such as the
            trunk, or a list of submodules / parameters). Default: every
            parameter no head owns.
        heads: task -> submodule used by that task only (its
            ``task_parameters``); optional.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.trunk, self.a, self.b = nn.Linear(3, 8), nn.Linear(8, 1), nn.Linear(8, 5)
        ...     def forward(self, x):
        ...         z = torch.relu(self.trunk(x))
        ...         return self.a(z), self.b(z)
        >>> net = Net()
        >>> model = wrap(net, ["price", "kind"], shared=net.trunk, heads={"price": net.a, "kind": net.b})
        >>> {k: tuple(v.shape) for k, v in model(torch.ones(2, 3)).items()}
        {'price': (2, 1), 'kind': (2, 5)}
        >>> len(model.shared_parameters())
        2
    """
    return Wrapped(module, check_task_names(tasks), shared, heads)
