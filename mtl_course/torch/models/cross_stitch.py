"""Cross-stitch networks (PyTorch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mtl_course.checks import check_mapping, check_task_names
from mtl_course.core.model_config import cross_stitch_init, cross_stitch_parts
from mtl_course.torch.models.base import MultiTaskModel, parameters_of


class CrossStitchUnit(nn.Module):
    """Mixes the activations of ``T`` task columns: ``x~_t = sum_s alpha_ts x_s``.

    ``alpha`` is a learnable ``T x T`` matrix (one per unit, shared by all
    channels), initialised by :func:`mtl_course.core.model_config.cross_stitch_init`.

    Examples:
        >>> import torch
        >>> unit = CrossStitchUnit(2, alpha_self=0.9)
        >>> unit.alpha.detach()
        tensor([[0.9000, 0.1000],
                [0.1000, 0.9000]])
        >>> [round(float(a.detach()), 4) for a in unit([torch.tensor([[1.0]]), torch.tensor([[0.0]])])]
        [0.9, 0.1]
    """

    def __init__(self, num_tasks: int, alpha_self: float = 0.9) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.from_numpy(cross_stitch_init(num_tasks, alpha_self)))

    def forward(self, activations: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        shapes = {tuple(a.shape) for a in activations}
        if len(shapes) != 1:
            raise ValueError(
                f"cross-stitch needs activations of one shape across tasks, got {sorted(shapes)}"
            )
        stacked = torch.stack(list(activations))  # (T, batch, ...)
        mixed = torch.tensordot(self.alpha, stacked, dims=([1], [0]))
        return list(mixed.unbind(0))


class CrossStitch(MultiTaskModel):
    """Cross-stitch network (Misra, Shrivastava, Gupta and Hebert, CVPR 2016,
    "Cross-stitch Networks for Multi-task Learning").

    One column per task, each an ordered sequence of stages. After every stage
    except the last, a cross-stitch unit replaces each task's activation by a
    learned linear combination of all tasks' activations,
    ``x~_t = sum_s alpha_ts x_s``. An optional head per task follows the last stage.

    Args:
        towers: task name -> stages (an ``nn.Sequential`` or a list of modules);
            every task needs the same number of stages, and stage ``i`` must
            give activations of the same shape in every column.
        heads: optional task name -> head module, applied after the last stage.
        alpha_self: initial diagonal of every cross-stitch matrix; the
            off-diagonal entries start at ``(1 - alpha_self) / (T - 1)``.

    Parameter split: every task's output depends, through the units, on every
    column's stages before the last unit, so those stages and the units are
    :meth:`shared_parameters`; a task's last stage and head are its
    :meth:`task_parameters`.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> towers = {t: [nn.Linear(3, 4), nn.Linear(4, 1)] for t in ('a', 'b')}  # 2 stages, 1 unit
        >>> model = CrossStitch(towers)
        >>> {k: tuple(v.shape) for k, v in model(torch.ones(2, 3)).items()}
        {'a': (2, 1), 'b': (2, 1)}
    """

    def __init__(
        self,
        towers: Mapping[str, Sequence[nn.Module] | nn.Sequential],
        heads: Mapping[str, nn.Module] | None = None,
        alpha_self: float = 0.9,
    ) -> None:
        towers = check_mapping(towers, "towers")
        names = check_task_names(list(towers), "towers")
        super().__init__(names)
        columns, heads, depth = cross_stitch_parts(towers, heads, nn.Module, "torch.nn.Module")
        self.towers = nn.ModuleDict({name: nn.ModuleList(stages) for name, stages in columns.items()})
        self.heads = nn.ModuleDict(heads) if heads is not None else None
        self.units = nn.ModuleList([CrossStitchUnit(len(names), alpha_self) for _ in range(depth - 1)])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        activations = [x] * len(self.task_names)
        for i, unit in enumerate([*self.units, None]):
            activations = [self.towers[n][i](a) for n, a in zip(self.task_names, activations)]
            if unit is not None:
                activations = unit(activations)
        if self.heads is not None:
            activations = [self.heads[n](a) for n, a in zip(self.task_names, activations)]
        return dict(zip(self.task_names, activations))

    def shared_parameters(self) -> list[nn.Parameter]:
        early = [stage for column in self.towers.values() for stage in list(column)[:-1]]
        return parameters_of([*self.units, *early])

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self._check_task(name)
        modules = [self.towers[name][-1]]
        if self.heads is not None:
            modules.append(self.heads[name])
        return parameters_of(modules)
