"""The two containers for multi-task data sets (numpy only), one per layout.

* :class:`MultiTaskSplit`: one input array whose rows every task shares, one
  target array per task (a missing label is NaN). Use it for ``fit`` of
  :mod:`mtl_course.torch` / :mod:`mtl_course.tf` (the deep-learning chapters).
* :class:`TaskData`: each task with its own examples, ``X[t], y[t]``. Use it
  for the classical estimators' ``fit(X_list, y_list)`` and for data whose
  tasks are different samples. The generators with a known truth
  (:class:`~mtl_course.data.planted.PlantedTasks`,
  :class:`~mtl_course.data.RelatedRegression`) extend it.

:meth:`TaskData.to_split` and :meth:`TaskData.from_split` convert between the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class MultiTaskSplit:
    """Inputs shared by every task and one target array per task.

    Use it when one input array is labelled for several tasks: the layout of
    ``fit`` in :mod:`mtl_course.torch` and :mod:`mtl_course.tf`, where a NaN
    target marks a missing label. For tasks with their own examples, use
    :class:`TaskData` (:meth:`TaskData.to_split` / :meth:`TaskData.from_split`
    convert).

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

    def subset(self, index: np.ndarray | slice) -> MultiTaskSplit:
        """The rows ``index`` of the inputs and of every task's targets."""
        return MultiTaskSplit(self.x[index], {k: v[index] for k, v in self.y.items()})


@dataclass(frozen=True)
class TaskData:
    """Per-task inputs and targets: each task has its own examples.

    Use it for the classical estimators (``fit(data.X, data.y)``) and for data
    whose tasks are different samples (e.g. patient groups,
    :func:`mtl_course.data.diabetes_tasks`). For one input array whose rows
    are labelled for several tasks, use :class:`MultiTaskSplit`;
    :meth:`to_split` and :meth:`from_split` convert.

    Attributes:
        X: one ``(n_t, d)`` input array per task (``n_t >= 1``, the same ``d`` for all).
        y: one ``(n_t,)`` target array per task.
        task_names: one distinct name per task; default ``("t0", "t1", ...)``.
        feature_names: one name per input column; default ``("x0", "x1", ...)``.

    Examples:
        >>> import numpy as np
        >>> data = TaskData(X=[np.ones((2, 3)), np.zeros((1, 3))], y=[np.array([1.0, 2.0]), np.array([5.0])])
        >>> data.task_names, data.num_tasks, data.dim
        (('t0', 't1'), 2, 3)
    """

    X: list[np.ndarray]
    y: list[np.ndarray]
    task_names: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.X) == 0:
            raise ValueError("a TaskData needs at least one task")
        if len(self.X) != len(self.y):
            raise ValueError(f"got {len(self.X)} input arrays but {len(self.y)} target arrays")
        dims = set()
        for t, (x, y) in enumerate(zip(self.X, self.y)):
            x_shape, y_shape = np.shape(x), np.shape(y)
            if len(x_shape) != 2 or len(y_shape) != 1 or x_shape[0] != y_shape[0] or x_shape[0] == 0:
                raise ValueError(f"task {t}: X must be (n, d) and y (n,) with n >= 1, got {x_shape} and {y_shape}")
            dims.add(x_shape[1])
        if len(dims) != 1:
            raise ValueError(f"every task needs the same number of input columns, got {sorted(dims)}")
        names = tuple(f"t{t}" for t in range(len(self.X))) if self.task_names is None else tuple(self.task_names)
        if len(names) != len(self.X) or len(set(names)) != len(names):
            raise ValueError(f"task_names must be {len(self.X)} distinct names, got {names}")
        (d,) = dims
        features = tuple(f"x{j}" for j in range(d)) if self.feature_names is None else tuple(self.feature_names)
        if len(features) != d:
            raise ValueError(f"feature_names must have {d} names (one per input column), got {len(features)}")
        object.__setattr__(self, "task_names", names)
        object.__setattr__(self, "feature_names", features)

    @property
    def num_tasks(self) -> int:
        return len(self.X)

    @property
    def dim(self) -> int:
        """The number of input columns ``d``."""
        return int(np.shape(self.X[0])[1])

    def to_split(self) -> MultiTaskSplit:
        """The same examples in the :class:`MultiTaskSplit` layout, unlabelled entries NaN.

        The inputs are stacked task after task (task 0's rows first), and the
        target of task ``s`` is NaN on every row that belongs to another task:
        ``fit`` treats NaN as a missing label, so each task trains on its own
        rows only. Targets become floating point (integer labels as float64) so
        that NaN fits; inputs keep their dtype.

        Raises:
            ValueError: if a target is already NaN (it would read as a missing label).

        Examples:
            >>> import numpy as np
            >>> data = TaskData(X=[np.ones((2, 1)), np.zeros((1, 1))], y=[np.array([1.0, 2.0]), np.array([5.0])])
            >>> data.to_split().y
            {'t0': array([ 1.,  2., nan]), 't1': array([nan, nan,  5.])}
        """
        ys = [np.asarray(v) for v in self.y]
        for name, v in zip(self.task_names, ys):
            if v.dtype.kind in "fc" and np.isnan(v).any():
                raise ValueError(f"task {name!r} has NaN targets, which a MultiTaskSplit reads as missing labels")
        x = np.concatenate([np.asarray(v) for v in self.X])
        starts = np.cumsum([0] + [len(v) for v in ys])
        targets = {}
        for t, (name, v) in enumerate(zip(self.task_names, ys)):
            target = np.full(len(x), np.nan, dtype=np.promote_types(v.dtype, np.float32))
            target[starts[t]:starts[t + 1]] = v
            targets[name] = target
        return MultiTaskSplit(x, targets)

    @classmethod
    def from_split(cls, split: MultiTaskSplit, feature_names: tuple[str, ...] | None = None) -> TaskData:
        """Each task's labelled rows of ``split``: task ``t`` gets the rows where its target is known.

        A label is missing where the target is NaN or masked
        (``numpy.ma.MaskedArray``); a ``Task(ignore_label=...)`` value is not
        known here, so replace it by NaN first. A row labelled for several
        tasks is copied into each of them. The inputs must be ``(n, d)`` and
        every target ``(n,)``.

        ``TaskData.from_split(data.to_split())`` gives ``data`` back (targets
        as floats); ``to_split`` of the result gives ``split`` back when every
        row of ``split`` is labelled for exactly one task.

        Raises:
            ValueError: for inputs that are not ``(n, d)``, targets that are not
                ``(n,)``, or a task without any labelled row.

        Examples:
            >>> import numpy as np
            >>> split = MultiTaskSplit(np.arange(3.0)[:, None], {"a": np.array([1.0, np.nan, 3.0]),
            ...                                                  "b": np.array([np.nan, 2.0, 4.0])})
            >>> data = TaskData.from_split(split)
            >>> [x.ravel().tolist() for x in data.X], [v.tolist() for v in data.y]
            ([[0.0, 2.0], [1.0, 2.0]], [[1.0, 3.0], [2.0, 4.0]])
        """
        x = np.asarray(split.x)
        if x.ndim != 2:
            raise ValueError(f"TaskData holds (n, d) inputs; this split's inputs have shape {x.shape}")
        X, y = [], []
        for name, target in split.y.items():
            if np.ndim(target) != 1:
                raise ValueError(f"TaskData holds one target per row; task {name!r} has shape {np.shape(target)}")
            values = np.ma.getdata(target)
            labelled = ~np.ma.getmaskarray(target) if np.ma.isMaskedArray(target) else np.ones(len(values), bool)
            if values.dtype.kind in "fc":
                labelled &= ~np.isnan(values)
            if not labelled.any():
                raise ValueError(f"task {name!r} has no labelled row")
            X.append(x[labelled])
            y.append(np.asarray(values)[labelled])
        return cls(X=X, y=y, task_names=split.task_names, feature_names=feature_names)


class Splits(NamedTuple):
    """A train / validation / test split of one multi-task data set."""

    train: MultiTaskSplit
    val: MultiTaskSplit
    test: MultiTaskSplit
