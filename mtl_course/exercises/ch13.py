"""Checkers for the exercises of chapter 13, "Scaling up".

Each checker prints a short message (``Correct`` or ``Not yet``, with a hint)
and returns ``True`` or ``False``. Malformed answers get a message that
explains the expected form instead of an exception.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from mtl_course.core.aggregation import mean_weights, mgda_weights
from mtl_course.core.data_parallel import aggregate_then_average, average_then_aggregate

__all__ = [
    "REPLICA_JACOBIANS",
    "SINGLE_GPU_RUN",
    "check_replica_direction",
    "check_scaled_run",
    "expected_replica_direction",
]

#: Exercise ch13-ex-direction: the local Jacobians (rows: task 1, task 2) of two replicas.
REPLICA_JACOBIANS = (
    np.array([[3.0, 0.0], [0.0, 1.0]]),
    np.array([[1.0, 0.0], [0.0, 1.0]]),
)

#: Exercise ch13-ex-scaling: a run tuned on one GPU, moved to four with the same per-GPU batch.
SINGLE_GPU_RUN = {"batch_size": 64, "lr": 0.01, "gpus_after": 4}


def _say(correct: bool, message: str) -> bool:
    print(("Correct: " if correct else "Not yet: ") + message)
    return correct


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))


def expected_replica_direction() -> np.ndarray:
    """The answer of exercise ch13-ex-direction: MGDA of the averaged Jacobian."""
    return average_then_aggregate(REPLICA_JACOBIANS, mgda_weights)


def check_replica_direction(answer: object) -> bool:
    """Exercise ch13-ex-direction: the MGDA direction that both replicas of
    :data:`REPLICA_JACOBIANS` must apply, as two numbers."""
    try:
        value = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        value = None
    if value is None or value.shape != (2,) or not np.isfinite(value).all() or \
            isinstance(answer, (str, bytes)):
        return _say(False, f"give the direction as two finite numbers, e.g. [0.1, 0.2], got {answer!r}.")
    target = expected_replica_direction()
    if np.allclose(value, target, atol=1e-3):
        return _say(True, f"d = ({target[0]:.1f}, {target[1]:.1f}): average the Jacobians to "
                          "g1 = (2, 0), g2 = (0, 1), then MGDA gives 0.2 g1 + 0.8 g2. "
                          "Every replica computes the same d after the all-reduce.")
    if np.allclose(value, aggregate_then_average(REPLICA_JACOBIANS, mgda_weights), atol=1e-3):
        return _say(False, "that is the mean of each replica's own MGDA direction. MGDA is not linear: "
                           "all-reduce (average) the Jacobians first, then aggregate once.")
    if np.allclose(value, average_then_aggregate(REPLICA_JACOBIANS, mean_weights), atol=1e-3):
        return _say(False, "that is the mean gradient; MGDA takes the min-norm point of the segment "
                           "between the two averaged task gradients.")
    return _say(False, "average the two Jacobians row by row, then find the point of the segment "
                       "between the two rows that is closest to the origin.")


def check_scaled_run(global_batch: object, lr: object) -> bool:
    """Exercise ch13-ex-scaling: the global batch and the learning rate (linear scaling rule)
    of :data:`SINGLE_GPU_RUN` moved to four GPUs."""
    for name, value in (("global_batch", global_batch), ("lr", lr)):
        if not _is_number(value) or float(value) <= 0:
            return _say(False, f"`{name}` should be a positive number, got {value!r}.")
    run = SINGLE_GPU_RUN
    target_batch = run["batch_size"] * run["gpus_after"]
    target_lr = run["lr"] * target_batch / run["batch_size"]
    if float(global_batch) != target_batch:
        if float(global_batch) == run["batch_size"]:
            return _say(False, "each of the 4 GPUs takes its own 64 examples: the global batch grows.")
        return _say(False, "the global batch is the per-GPU batch times the number of GPUs.")
    if not math.isclose(float(lr), target_lr, rel_tol=1e-6):
        if math.isclose(float(lr), run["lr"], rel_tol=1e-6):
            return _say(False, "with the gradient averaged over a 4x larger batch, each step is as long "
                               "as before but there are 4x fewer steps per epoch: scale the rate up.")
        return _say(False, "the linear scaling rule multiplies the rate by the factor the batch grew.")
    return _say(True, f"global batch {target_batch}, lr {target_lr:g}: the linear scaling rule, a "
                      "starting point that usually needs a warm-up and a check on the validation set.")
