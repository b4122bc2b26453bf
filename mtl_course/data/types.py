"""Containers for multi-task data sets (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class MultiTaskSplit:
    """Inputs shared by every task and one target array per task.

    Attributes:
        x: inputs, shape ``(n, ...)``, float32.
        y: task name -> targets, each with ``n`` rows (float32 for regression,
            int64 class indices for classification).
    """

    x: np.ndarray
    y: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        if not self.y:
            raise ValueError("a MultiTaskSplit needs at least one task")
        n = len(self.x)
        for name, target in self.y.items():
            if len(target) != n:
                raise ValueError(
                    f"task {name!r} has {len(target)} targets but there are {n} inputs"
                )

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(self.y)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray | slice) -> "MultiTaskSplit":
        """The rows ``index`` of the inputs and of every task's targets."""
        return MultiTaskSplit(self.x[index], {k: v[index] for k, v in self.y.items()})


class Splits(NamedTuple):
    """A train / validation / test split of one multi-task data set."""

    train: MultiTaskSplit
    val: MultiTaskSplit
    test: MultiTaskSplit
