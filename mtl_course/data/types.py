"""Containers for multi-task data sets (numpy only).

:class:`MultiTaskSplit`: one input array, every row labelled for every task
(the deep-learning chapters). :class:`TaskData`: each task with its own
examples (the classical estimators' ``X_list, y_list``).
"""

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


@dataclass(frozen=True)
class TaskData:
    """Per-task inputs and targets with names: each task has its own examples.

    The layout of the classical estimators (``fit(X_list, y_list)``) and of
    data whose tasks are different samples (e.g. patient groups,
    :func:`mtl_course.data.diabetes_tasks`). :class:`MultiTaskSplit` is the
    other layout: one input array whose every row is labelled for every task.

    Attributes:
        X: list of ``(n_t, d)`` input arrays; y: list of ``(n_t,)`` targets.
        task_names: one name per task; feature_names: one name per input column.
    """

    X: list[np.ndarray]
    y: list[np.ndarray]
    task_names: tuple[str, ...]
    feature_names: tuple[str, ...]


class Splits(NamedTuple):
    """A train / validation / test split of one multi-task data set."""

    train: MultiTaskSplit
    val: MultiTaskSplit
    test: MultiTaskSplit
