r"""Regression tasks with planted groups (chapter 10: task relationships).

Tasks in one group are noisy copies of one nonlinear function of the input;
different groups use different functions, so a model that shares its trunk
across groups must split its capacity between them. The planted groups are
the ground truth that a task-grouping method (:func:`mtl_course.core.affinity.group_tasks`)
should recover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mtl_course.checks import as_generator, check_real, positive_int
from mtl_course.data.synthetic import as_float32
from mtl_course.data.types import MultiTaskSplit, Splits

__all__ = ["GroupedRegression", "grouped_regression"]


@dataclass(frozen=True)
class GroupedRegression:
    """A multi-task regression set with planted task groups.

    Attributes:
        splits: train / validation / test :class:`~mtl_course.data.Splits`
            (float32 inputs and targets).
        groups: the planted groups, as lists of task names.
        noise: each task's label-noise standard deviation (task name -> float).
    """

    splits: Splits
    groups: list[list[str]]
    noise: dict[str, float]

    @property
    def task_names(self) -> tuple[str, ...]:
        return self.splits.train.task_names


def grouped_regression(group_sizes: Sequence[int] = (3, 3), n_train: int = 512, n_val: int = 256,
                       n_test: int = 256, dim: int = 8, hidden: int = 4, own: float = 0.2,
                       noise: float | Sequence[float] = 0.1, seed: int = 0) -> GroupedRegression:
    r"""Regression tasks in planted groups; task ``k`` of group ``g`` is named ``"{letter}{k}"`` (``a0, a1, ..., b0, ...``).

    Every group :math:`g` has its own function
    :math:`f_g(x) = c_g \tanh(x^\top W_g)\, v_g` with :math:`W_g \in \mathbb R^{d\times h}`
    and :math:`v_g \in \mathbb R^{h}` drawn from :math:`\mathcal N(0, 1)` and
    :math:`c_g` scaling :math:`f_g` to unit variance; every task :math:`t` in
    the group adds a small linear part of its own:

    .. math::

        y_t = f_g(x) + \text{own}\; x^\top u_t / \sqrt d + \sigma_t \varepsilon,
        \qquad x \sim \mathcal N(0, I_d),\ u_t \sim \mathcal N(0, I_d),\ \varepsilon \sim \mathcal N(0, 1).

    Args:
        group_sizes: the number of tasks in each group (at most 26 groups).
        n_train, n_val, n_test: examples per split (the inputs are shared by all tasks).
        dim: input dimension ``d``; hidden: width ``h`` of each group's function.
        own: weight of each task's own linear part (0: identical tasks within a group).
        noise: label-noise standard deviation, one for all tasks or one per task.
        seed: seeds the functions and the data.
    """
    if isinstance(group_sizes, (str, bytes)) or not isinstance(group_sizes, Sequence):
        raise TypeError(
            "group_sizes must be a sequence with the number of tasks of each group, e.g. (3, 3), "
            f"got {group_sizes!r}"
        )
    sizes = [positive_int(s, "group size") for s in group_sizes]
    if not 1 <= len(sizes) <= 26:
        raise ValueError(f"group_sizes must list between 1 and 26 groups, got {len(sizes)}")
    n_train, n_val, n_test = (positive_int(v, k) for k, v in
                              (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)))
    dim = positive_int(dim, "dim")
    hidden = positive_int(hidden, "hidden")
    own = check_real(own, "own", 0.0)
    groups = [[f"{chr(ord('a') + g)}{k}" for k in range(size)] for g, size in enumerate(sizes)]
    names = [name for group in groups for name in group]
    sigmas = np.broadcast_to(np.asarray(noise, dtype=np.float64), (len(names),)) \
        if np.ndim(noise) == 0 else np.asarray(noise, dtype=np.float64)
    if sigmas.shape != (len(names),):
        raise ValueError(f"noise must be one number or one per task ({len(names)}), got {len(sigmas)}")
    for name, s in zip(names, sigmas):
        check_real(float(s), f"noise of task {name}", 0.0)

    rng = as_generator(positive_int(seed, "seed", 0))
    n = n_train + n_val + n_test
    x = rng.standard_normal((n, dim))
    y = {}
    for group in groups:
        W = rng.standard_normal((dim, hidden)) / np.sqrt(dim)
        v = rng.standard_normal(hidden)
        f = np.tanh(x @ W) @ v
        f = f / f.std()
        for name in group:
            u = rng.standard_normal(dim)
            y[name] = f + own * (x @ u) / np.sqrt(dim)
    for name, s in zip(names, sigmas):
        y[name] = as_float32(f"with noise={s:g} and own={own:g}, the targets of {name}",
                              y[name] + s * rng.standard_normal(n))
    x = x.astype(np.float32)
    cuts = [slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, n)]
    splits = Splits(*(MultiTaskSplit(x[c], {k: v[c] for k, v in y.items()}) for c in cuts))
    return GroupedRegression(splits, groups, dict(zip(names, sigmas.tolist())))
