"""Checkers for the exercises of chapter 13, "Scaling up".

Each checker prints one message (``Correct``, ``Not yet`` with a hint, or
``Not answered yet`` for the placeholder ``...``) and returns ``True`` or
``False``; reading and comparing answers is :mod:`mtl_course.exercises.grading`.
"""

from __future__ import annotations

import numpy as np

from mtl_course.core.aggregation import mean_weights, mgda_weights
from mtl_course.core.data_parallel import aggregate_then_average, average_then_aggregate
from mtl_course.exercises.grading import (
    CLOSE_MESSAGE,
    as_number,
    as_vector,
    closeness,
    feedback,
    grade_function,
    is_placeholder,
    matches,
    not_answered,
)

__all__ = [
    "REPLICA_JACOBIANS",
    "SINGLE_GPU_RUN",
    "check_replica_direction",
    "check_scaled_run",
    "check_replica_direction_function",
    "replica_direction",
    "expected_replica_direction",
]

#: Exercise ch13-ex-direction: the local Jacobians (rows: task 1, task 2) of two replicas.
REPLICA_JACOBIANS = (
    np.array([[3.0, 0.0], [0.0, 1.0]]),
    np.array([[1.0, 0.0], [0.0, 1.0]]),
)

#: Exercise ch13-ex-scaling: a run tuned on one GPU, moved to four with the same per-GPU batch.
SINGLE_GPU_RUN = {"batch_size": 64, "lr": 0.01, "gpus_after": 4}


def expected_replica_direction() -> np.ndarray:
    """The answer of exercise ch13-ex-direction: MGDA of the averaged Jacobian."""
    return average_then_aggregate(REPLICA_JACOBIANS, mgda_weights)


def check_replica_direction(answer: object) -> bool:
    """Exercise ch13-ex-direction: the MGDA direction that both replicas of
    :data:`REPLICA_JACOBIANS` must apply, as two numbers."""
    if is_placeholder(answer):
        return not_answered()
    value = as_vector(answer, (2,))
    if value is None:
        return feedback(False, f"give the direction as two finite numbers, e.g. [0.1, 0.2], got {answer!r}.")
    target = expected_replica_direction()
    verdict = closeness(value, target)
    if verdict == "right":
        return feedback(True, "all-reduce the Jacobians, then aggregate once: every replica computes the same d.")
    if matches(value, aggregate_then_average(REPLICA_JACOBIANS, mgda_weights)):
        return feedback(False, "that is the mean of each replica's own MGDA direction. MGDA is not linear: "
                               "all-reduce (average) the Jacobians first, then aggregate once.")
    if matches(value, average_then_aggregate(REPLICA_JACOBIANS, mean_weights)):
        return feedback(False, "that is the mean gradient; MGDA takes the min-norm point of the segment "
                               "between the two averaged task gradients.")
    if verdict == "close":
        return feedback(False, CLOSE_MESSAGE)
    return feedback(False, "average the two Jacobians row by row, then find the point of the segment "
                           "between the two rows that is closest to the origin.")


def check_scaled_run(global_batch: object, lr: object) -> bool:
    """Exercise ch13-ex-scaling: the global batch and the learning rate (linear scaling rule)
    of :data:`SINGLE_GPU_RUN` moved to four GPUs."""
    if is_placeholder(global_batch) or is_placeholder(lr):
        return not_answered()
    values = {"global_batch": as_number(global_batch), "lr": as_number(lr)}
    for name, value in values.items():
        if value is None or value <= 0:
            return feedback(False, f"`{name}` should be a positive number, got {locals()[name]!r}.")
    run = SINGLE_GPU_RUN
    target_batch = run["batch_size"] * run["gpus_after"]
    target_lr = run["lr"] * target_batch / run["batch_size"]
    if closeness(values["global_batch"], target_batch, rtol=0.0) != "right":
        if values["global_batch"] == run["batch_size"]:
            return feedback(False, "`global_batch`: each of the 4 GPUs takes its own 64 examples, so the global "
                                   "batch grows.")
        return feedback(False, "`global_batch` is the per-GPU batch times the number of GPUs.")
    verdict = closeness(values["lr"], target_lr)
    if verdict != "right":
        if matches(values["lr"], run["lr"]):
            return feedback(False, "`lr`: with the gradient averaged over a 4x larger batch, each step is as long "
                                   "as before but there are 4x fewer steps per epoch: scale the rate up.")
        if verdict == "close":
            return feedback(False, "`lr`: " + CLOSE_MESSAGE)
        return feedback(False, "`lr`: the linear scaling rule multiplies the rate by the factor the batch grew.")
    return feedback(True, "the linear scaling rule is a starting point that usually needs a warm-up and a "
                          "check on the validation set.")


# ---------------------------------------------------------------- graded function (exercise ch13-ex-direction-code)


def replica_direction(jacobians: list[np.ndarray]) -> np.ndarray:
    """The reference: MGDA of the replicas' averaged Jacobian (what every replica applies)."""
    return average_then_aggregate([np.asarray(J, dtype=np.float64) for J in jacobians], mgda_weights)


def _replica_cases(seed: int = 1313) -> list[tuple[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    cases = [([J.copy() for J in REPLICA_JACOBIANS],)]
    for replicas, tasks, size in ((2, 2, 3), (4, 2, 5), (3, 3, 4), (8, 2, 2)):
        base = rng.normal(size=(tasks, size))
        cases.append(([base + rng.normal(scale=0.8, size=(tasks, size)) for _ in range(replicas)],))
    return cases


def check_replica_direction_function(fn: object, framework: str = "numpy") -> bool:
    """Exercise ch13-ex-direction-code: ``fn(jacobians)`` returns the MGDA direction that every replica
    must apply, from the list of the replicas' local Jacobians (each ``(T, P)``). Use
    ``mtl_course.core.aggregation.mgda_weights`` (it takes the Gram matrix ``J J^T``) for MGDA itself.
    Graded on hidden sets of 2 to 8 replicas."""
    return grade_function(
        fn, replica_direction, _replica_cases(), ("jacobians",), framework=framework,
        what="your `replica_direction`",
        mistakes=[(lambda Js: aggregate_then_average([np.asarray(J) for J in Js], mgda_weights),
                   "That averages the replicas' own MGDA directions; average the Jacobians first (the all-reduce), "
                   "then aggregate once."),
                  (lambda Js: average_then_aggregate([np.asarray(J) for J in Js], mean_weights),
                   "That is the mean gradient; apply MGDA to the averaged Jacobian.")],
        success="one all-reduce of the Jacobian, then the same aggregation on every replica.",
    )
