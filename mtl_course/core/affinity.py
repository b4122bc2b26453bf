r"""Lookahead inter-task affinity and task grouping (chapter 10), framework free.

Fifty, Amid, Zhao, Yu, Anil and Finn, "Efficiently Identifying Task Groupings
for Multi-Task Learning", NeurIPS 2021, measure how much one task's gradient
step helps another. At training step :math:`t`, let
:math:`\theta_{s|i}^{t+1}` be the shared parameters after a step on task
:math:`i`'s loss alone (the task heads stay at :math:`\theta^t`). The
*lookahead inter-task affinity* of task :math:`i` onto task :math:`j` is

.. math::

    Z^t_{i \to j} = 1 - \frac{L_j(\theta_{s|i}^{t+1}, \theta_j^t)}{L_j(\theta_s^t, \theta_j^t)},

positive when the step on :math:`i` lowers :math:`j`'s loss, negative when it
raises it, and averaged over the training steps (book equation ``ch10-affinity``).

The grouping step of the same paper picks the groups of tasks that would be
trained together so as to maximise the *total affinity*: every task
:math:`j` in a group :math:`g` scores the mean affinity onto it from the other
members, :math:`\frac{1}{|g|-1}\sum_{i \in g, i \ne j} Z_{i\to j}` (0 for a
task alone), and a partition scores the sum over all tasks. For the handful
of tasks of the book the search over all set partitions is exhaustive
(:func:`group_tasks`); the paper solves the same problem, with a budget of
networks, by branch and bound.

The PyTorch and TensorFlow functions that measure ``Z`` during training are
``task_affinity`` in :mod:`mtl_course.torch.affinity` and
:mod:`mtl_course.tf.affinity`; both return an :class:`AffinityTrace`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mtl_course.checks import check_count, check_rate

__all__ = [
    "MAX_GROUPING_TASKS",
    "AffinityTrace",
    "check_affinity_arguments",
    "Grouping",
    "group_tasks",
    "grouping_score",
    "lookahead_affinity",
    "set_partitions",
]

MAX_GROUPING_TASKS = 10
"""The largest task count :func:`group_tasks` searches exhaustively (115,975 partitions).

Examples:
    >>> import numpy as np
    >>> MAX_GROUPING_TASKS
    10
    >>> group_tasks(np.zeros((MAX_GROUPING_TASKS + 1,) * 2))
    Traceback (most recent call last):
        ...
    ValueError: exhaustive grouping is limited to 10 tasks, got 11
"""


def lookahead_affinity(loss_before: np.ndarray, loss_after: np.ndarray) -> np.ndarray:
    r"""One step's affinity matrix :math:`Z_{i\to j} = 1 - L_j^{(i)} / L_j`.

    Args:
        loss_before: ``(T,)`` the task losses :math:`L_j(\theta^t)` on the batch.
        loss_after: ``(T, T)``, row ``i`` holds every task's loss after the
            lookahead step on task ``i``: ``loss_after[i, j]`` is
            :math:`L_j(\theta_{s|i}^{t+1}, \theta_j^t)`.

    Returns:
        ``Z`` of shape ``(T, T)``; ``Z[i, j]`` is the affinity of ``i`` onto ``j``.

    Raises:
        ValueError: on wrong shapes, NaN or inf, or a loss that is not
            positive before the step (the ratio is undefined at a zero loss).

    Examples:
        >>> import numpy as np
        >>> loss_before = np.array([1.0, 2.0])
        >>> loss_after = np.array([[0.5, 1.5], [0.9, 1.0]])  # row i: every loss after a step on task i
        >>> lookahead_affinity(loss_before, loss_after)
        array([[0.5 , 0.25],
               [0.1 , 0.5 ]])
    """
    before = np.asarray(loss_before, dtype=np.float64)
    after = np.asarray(loss_after, dtype=np.float64)
    if before.ndim != 1 or before.size == 0:
        raise ValueError(f"loss_before must be a non-empty vector, got shape {before.shape}")
    if after.shape != (before.size, before.size):
        raise ValueError(f"loss_after must have shape {(before.size, before.size)}, got {after.shape}")
    if not (np.all(np.isfinite(before)) and np.all(np.isfinite(after))):
        raise ValueError("the losses contain NaN or inf")
    if np.any(before <= 0):
        raise ValueError(f"every loss before the step must be positive, got {before.tolist()}")
    return 1.0 - after / before[None, :]


@dataclass(frozen=True)
class AffinityTrace:
    """What ``task_affinity`` records, one entry per training step.

    Attributes:
        task_names: the order of the tasks (rows are sources ``i``, columns targets ``j``).
        steps: ``(steps, T, T)`` the affinity matrices :math:`Z^t`.
        losses: ``(steps, T)`` the mini-batch task losses before each step.

    Examples:
        >>> import numpy as np
        >>> trace = AffinityTrace(('a', 'b'), steps=np.zeros((5, 2, 2)), losses=np.ones((5, 2)))
        >>> trace.task_names, trace.steps.shape
        (('a', 'b'), (5, 2, 2))
    """

    task_names: tuple[str, ...]
    steps: np.ndarray
    losses: np.ndarray

    @property
    def affinity(self) -> np.ndarray:
        """The affinity averaged over all recorded steps, ``(T, T)``."""
        return self.steps.mean(axis=0)

    def onto(self, target: str) -> dict[str, float]:
        """The mean affinity of every other task onto ``target`` (name -> value)."""
        if target not in self.task_names:
            raise ValueError(f"unknown task {target!r}; the tasks are {self.task_names}")
        j = self.task_names.index(target)
        z = self.affinity
        return {name: float(z[i, j]) for i, name in enumerate(self.task_names) if i != j}


def check_affinity_arguments(epochs: object, lr: object, every: object) -> None:
    """The checks ``task_affinity`` in PyTorch and TensorFlow share.

    Examples:
        >>> check_affinity_arguments(epochs=1, lr=0.05, every=1)  # fine: returns None
        >>> check_affinity_arguments(epochs=1, lr=0.05, every=0)
        Traceback (most recent call last):
            ...
        ValueError: every must be an int >= 1, got 0
    """
    check_count(epochs, "epochs")
    check_count(every, "every")
    check_rate(lr, "lr")


def set_partitions(n: int) -> Iterator[list[list[int]]]:
    """Every partition of ``{0, ..., n-1}`` into non-empty groups (Bell(n) of them).

    Groups list their members in increasing order, and the groups are ordered
    by their smallest member, so every partition appears exactly once.

    Examples:
        >>> list(set_partitions(3))
        [[[0, 1, 2]], [[0, 1], [2]], [[0, 2], [1]], [[0], [1, 2]], [[0], [1], [2]]]
    """
    check_count(n, "n")

    def extend(k: int, groups: list[list[int]]) -> Iterator[list[list[int]]]:
        if k == n:
            yield [list(g) for g in groups]
            return
        for g in groups:  # element k joins an existing group ...
            g.append(k)
            yield from extend(k + 1, groups)
            g.pop()
        groups.append([k])  # ... or opens a new one
        yield from extend(k + 1, groups)
        groups.pop()

    yield from extend(1, [[0]])


def _check_affinity(affinity: np.ndarray) -> np.ndarray:
    z = np.asarray(affinity, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] != z.shape[1] or z.shape[0] == 0:
        raise ValueError(f"the affinity must be a non-empty square matrix, got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("the affinity contains NaN or inf")
    return z


def grouping_score(affinity: np.ndarray, groups: Sequence[Sequence[int]]) -> float:
    r"""The total affinity of a partition (Fifty et al., NeurIPS 2021).

    .. math::

        \operatorname{score}(\mathcal G) = \sum_{g \in \mathcal G} \sum_{j \in g}
            \frac{1}{|g| - 1} \sum_{i \in g,\, i \ne j} Z_{i \to j},

    with a task alone in its group contributing 0.

    Raises:
        ValueError: unless ``groups`` is a partition of ``0..T-1``.

    Examples:
        >>> import numpy as np
        >>> Z = np.array([[0.0, 0.3, -0.2], [0.4, 0.0, -0.1], [-0.3, -0.2, 0.0]])  # Z[i, j]: onto j from i
        >>> round(grouping_score(Z, [[0, 1], [2]]), 4)  # 0.4 + 0.3; c alone adds 0
        0.7
        >>> round(grouping_score(Z, [[0, 1, 2]]), 4)
        -0.05
    """
    z = _check_affinity(affinity)
    members = sorted(int(i) for g in groups for i in g)
    if members != list(range(len(z))) or any(len(g) == 0 for g in groups):
        raise ValueError(f"groups must partition the tasks 0..{len(z) - 1} into non-empty groups, got {groups}")
    total = 0.0
    for g in groups:
        if len(g) < 2:
            continue
        idx = np.asarray(g)
        block = z[np.ix_(idx, idx)]
        total += float((block.sum(axis=0) - np.diag(block)).sum()) / (len(g) - 1)
    return total


@dataclass(frozen=True)
class Grouping:
    """The best partition found by :func:`group_tasks`.

    Attributes:
        groups: the groups, as task indices (or names when names were given).
        score: its :func:`grouping_score`.

    Examples:
        >>> import numpy as np
        >>> Z = np.array([[0.0, 0.3, -0.2], [0.4, 0.0, -0.1], [-0.3, -0.2, 0.0]])  # Z[i, j]: onto j from i
        >>> best = group_tasks(Z, max_groups=2, task_names=['a', 'b', 'c'])
        >>> type(best).__name__, best.groups
        ('Grouping', [['a', 'b'], ['c']])
    """

    groups: list[list]
    score: float


def group_tasks(affinity: np.ndarray, max_groups: int | None = None,
                task_names: Sequence[str] | None = None) -> Grouping:
    """The partition of the tasks with the largest :func:`grouping_score`, by exhaustive search.

    Args:
        affinity: ``(T, T)`` mean affinity, ``affinity[i, j]`` onto ``j`` from ``i``.
        max_groups: at most this many groups (the number of networks one can
            afford to train); ``None``: any number.
        task_names: optional names; the groups then hold names instead of indices.

    Ties go to the partition :func:`set_partitions` lists first (it starts from
    the single group of all tasks), so the result is deterministic.

    Raises:
        ValueError: for more than :data:`MAX_GROUPING_TASKS` tasks, a bad
            ``max_groups`` or names of the wrong length.

    Examples:
        >>> import numpy as np
        >>> Z = np.array([[0.0, 0.3, -0.2], [0.4, 0.0, -0.1], [-0.3, -0.2, 0.0]])  # Z[i, j]: onto j from i
        >>> best = group_tasks(Z, max_groups=2, task_names=['a', 'b', 'c'])
        >>> best.groups, round(best.score, 4)  # a and b help each other, c helps no one
        ([['a', 'b'], ['c']], 0.7)
    """
    z = _check_affinity(affinity)
    T = len(z)
    if T > MAX_GROUPING_TASKS:
        raise ValueError(f"exhaustive grouping is limited to {MAX_GROUPING_TASKS} tasks, got {T}")
    if max_groups is not None:
        check_count(max_groups, "max_groups")
    if task_names is not None and len(task_names) != T:
        raise ValueError(f"{len(task_names)} task names for {T} tasks")
    best, best_score = None, -np.inf
    for groups in set_partitions(T):
        if max_groups is not None and len(groups) > max_groups:
            continue
        score = grouping_score(z, groups)
        if score > best_score + 1e-12:
            best, best_score = groups, score
    if task_names is not None:
        best = [[task_names[i] for i in g] for g in best]
    return Grouping(best, float(best_score))
