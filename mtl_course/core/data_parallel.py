r"""Framework-free pieces of data-parallel multi-task training (chapter 13).

In data parallelism, ``R`` replicas hold the same model; each step, a *global*
batch of ``B`` examples is cut into ``R`` equal shards of ``B / R`` and replica
``r`` computes its task losses :math:`L_t^{(r)}` (means over its shard). Since
the shards have equal sizes, the global mean loss is the mean of the shard
means, and so is every derivative:

.. math::

    L_t = \frac{1}{R} \sum_{r=1}^{R} L_t^{(r)}, \qquad
    J = \frac{1}{R} \sum_{r=1}^{R} J^{(r)}, \qquad
    J_{t,:}^{(r)} = \nabla_\theta L_t^{(r)} .

A *loss weighting* is linear in the gradients, so averaging the gradient of
:math:`\sum_t w_t L_t^{(r)}` across replicas (what ``DistributedDataParallel``
and ``MirroredStrategy`` do) gives the single-process gradient. A *gradient
aggregator* :math:`A` (MGDA, PCGrad, ...) is not linear in :math:`J`:
:math:`\frac1R \sum_r A(J^{(r)}) \ne A\big(\frac1R \sum_r J^{(r)}\big)` in
general, so the Jacobian must be all-reduced *before* aggregating
(:func:`average_then_aggregate`), and then every replica applies the same
direction. :func:`aggregate_then_average` is the tempting but wrong order,
kept for the demonstration in the chapter and the tests.

This module holds the problem, the batch schedule and the sharding that the
PyTorch (:mod:`mtl_course.torch.distributed_train`) and TensorFlow
(:mod:`mtl_course.tf.distributed_train`) scripts share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mtl_course.checks import check_count, check_rate
from mtl_course.data.synthetic import mmoe_synthetic
from mtl_course.data.types import MultiTaskSplit

__all__ = [
    "ROUNDING",
    "DistributedConfig",
    "aggregate_then_average",
    "average_then_aggregate",
    "global_batches",
    "make_problem",
    "shard",
]

ROUNDING = 1e-6
"""How far data-parallel weights may end from one process's weights after the runs of chapter 13.

That difference is float32 rounding from a different summation order, a few ulps per step. The
scripts print whether it is below this bound, not the difference itself, whose digits depend on
the CPU's kernels.

Examples:
    >>> import numpy as np
    >>> one, parallel = np.float32(0.1) * 3, np.float32(0.3)  # two summation orders
    >>> bool(abs(one - parallel) < ROUNDING)  # what the scripts print
    True
"""


@dataclass(frozen=True)
class DistributedConfig:
    """One small data-parallel run: the problem, the model size and the optimizer.

    Args:
        method: "equal" (equal loss weighting) or an aggregator name of
            :data:`mtl_course.torch.aggregators.AGGREGATORS` ("mgda", ...).
        steps: optimizer steps (plain SGD, so runs compare without Adam's
            division by tiny second moments amplifying rounding differences).
        global_batch: examples per step over all replicas; the number of
            replicas must divide it.
        lr: SGD learning rate.
        n: examples in the training set (:func:`mtl_course.data.mmoe_synthetic`).
        dim: input dimension.
        hidden: width of the shared trunk (one hidden layer) and of the heads.
        seed: seeds the data, the model initialisation and the batch order.

    Examples:
        >>> config = DistributedConfig(method='mgda', steps=2, global_batch=8)
        >>> config.method, config.global_batch, config.n
        ('mgda', 8, 256)
    """

    method: str = "mgda"
    steps: int = 20
    global_batch: int = 32
    lr: float = 0.05
    n: int = 256
    dim: int = 8
    hidden: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method:
            raise ValueError(f"method must be a non-empty name, got {self.method!r}")
        for name in ("steps", "global_batch", "n", "dim", "hidden"):
            check_count(getattr(self, name), name)
        if self.global_batch > self.n:
            raise ValueError(f"global_batch ({self.global_batch}) is larger than n ({self.n})")
        check_rate(self.lr, "lr")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")


def make_problem(config: DistributedConfig) -> MultiTaskSplit:
    """The training set: two related regression tasks on a shared input (MMoE's synthetic data).

    Examples:
        >>> split = make_problem(DistributedConfig(n=64, dim=8))
        >>> split.x.shape, split.task_names
        ((64, 8), ('task1', 'task2'))
    """
    return mmoe_synthetic(n=config.n, dim=config.dim, correlation=0.5, seed=config.seed, num_sin=3)


def global_batches(n: int, global_batch: int, steps: int, seed: int) -> list[np.ndarray]:
    """The row indices of each step's global batch, the same on every replica.

    Epochs are permutations drawn from ``np.random.default_rng(seed)``; an
    epoch's last, incomplete batch is dropped so every batch has exactly
    ``global_batch`` rows (and splits into equal shards).

    Examples:
        >>> batches = global_batches(n=10, global_batch=4, steps=3, seed=0)
        >>> [len(b) for b in batches], len(set(batches[0]) | set(batches[1]))  # 2 batches per epoch, then a new one
        ([4, 4, 4], 8)
    """
    n, global_batch, steps = (check_count(v, k) for k, v in (("n", n), ("global_batch", global_batch), ("steps", steps)))
    if global_batch > n:
        raise ValueError(f"global_batch ({global_batch}) is larger than n ({n})")
    rng = np.random.default_rng(seed)
    batches: list[np.ndarray] = []
    while len(batches) < steps:
        order = rng.permutation(n)
        for start in range(0, n - global_batch + 1, global_batch):
            batches.append(order[start:start + global_batch])
    return batches[:steps]


def shard(batch: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Replica ``rank``'s contiguous, equal share of a global batch.

    Examples:
        >>> import numpy as np
        >>> shard(np.arange(8), rank=1, world_size=4)
        array([2, 3])
    """
    world_size = check_count(world_size, "world_size")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an int in [0, {world_size}), got {rank!r}")
    if len(batch) % world_size:
        raise ValueError(f"the global batch ({len(batch)} rows) does not split into "
                         f"{world_size} equal shards")
    size = len(batch) // world_size
    return batch[rank * size:(rank + 1) * size]


def _stacked(jacobians: Sequence[np.ndarray]) -> np.ndarray:
    if len(jacobians) == 0:
        raise ValueError("jacobians is empty: pass one Jacobian per replica")
    J = np.stack([np.asarray(j, dtype=np.float64) for j in jacobians])
    if J.ndim != 3:
        raise ValueError(f"each Jacobian must be 2-D (tasks, parameters), got shape {J.shape[1:]}")
    if not np.isfinite(J).all():
        raise ValueError("a Jacobian holds NaN or inf")
    return J


def average_then_aggregate(jacobians: Sequence[np.ndarray], weights: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    r"""The correct data-parallel direction :math:`A\big(\frac1R\sum_r J^{(r)}\big)`.

    ``weights`` maps a Gram matrix :math:`G = J J^\top` to the task weights
    of an aggregator (for example
    :func:`mtl_course.core.aggregation.mgda_weights`); the direction is
    :math:`w(G)^\top J`. This is what every replica computes after the
    all-reduce, and what one process computes on the whole global batch.

    Examples:
        >>> import numpy as np
        >>> from mtl_course.core.aggregation import mean_weights, mgda_weights
        >>> jacobians = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 3.0]])]  # two replicas
        >>> average_then_aggregate(jacobians, mgda_weights).round(4)  # MGDA of the mean Jacobian [[1, 0], [0, 2]]
        array([0.8, 0.4])
        >>> average_then_aggregate(jacobians, mean_weights).round(4)
        array([0.5, 1. ])
    """
    J = _stacked(jacobians).mean(axis=0)
    return weights(J @ J.T) @ J


def aggregate_then_average(jacobians: Sequence[np.ndarray], weights: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    r"""The wrong order :math:`\frac1R\sum_r A(J^{(r)})`: aggregate each replica's Jacobian, then average.

    Equal to :func:`average_then_aggregate` for a linear aggregator (the mean)
    but not for MGDA, PCGrad and the others; kept to show the difference.

    Examples:
        >>> import numpy as np
        >>> from mtl_course.core.aggregation import mgda_weights
        >>> jacobians = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 3.0]])]  # two replicas
        >>> aggregate_then_average(jacobians, mgda_weights).round(4)
        array([0.7, 0.4])
        >>> average_then_aggregate(jacobians, mgda_weights).round(4)  # the right order differs
        array([0.8, 0.4])
    """
    J = _stacked(jacobians)
    return np.mean([weights(j @ j.T) @ j for j in J], axis=0)
