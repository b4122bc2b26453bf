"""Checkers for the exercises of chapter 4, "Hard parameter sharing".

Each checker prints one message (``Correct``, ``Not yet`` with a hint, or
``Not answered yet`` for the placeholder ``...``) and returns ``True`` or
``False``; reading and comparing answers is :mod:`mtl_course.exercises.grading`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mtl_course.exercises.grading import (
    as_array,
    as_count,
    feedback,
    grade_function,
    is_placeholder,
    not_answered,
)
from mtl_course.metrics import hard_sharing_parameter_count, separate_parameter_count

__all__ = ["COUNT_SETTING", "check_parameter_counts", "check_accumulated_loop", "check_parameter_count_function",
           "check_multitask_loss", "multitask_loss"]

#: Exercise ch4-ex-params: 128 inputs, a trunk of one hidden layer of 48 units, and per task a head
#: with one hidden layer of 16 units; 10, 10 and 2 classes. (Not the chapter's own network, whose
#: counts the chapter prints.)
COUNT_SETTING = {"d_in": 128, "hidden": (48,), "head_hidden": (16,), "outputs": {"left": 10, "right": 10, "parity": 2}}

_LOOP_TASKS = 4  # exercise ch4-ex-loop


def check_parameter_counts(hard: object, separate: object) -> bool:
    """Exercise ch4-ex-params: the parameter counts of the hard-shared network and of the
    three single-task networks together, in the setting :data:`COUNT_SETTING`."""
    if is_placeholder(hard) or is_placeholder(separate):
        return not_answered()
    values = {"hard": as_count(hard), "separate": as_count(separate)}
    for name, value in values.items():
        if value is None:
            return feedback(False, f"`{name}` should be a whole number of parameters, got {locals()[name]!r}.")
    expected_hard = hard_sharing_parameter_count(**COUNT_SETTING)
    expected_separate = separate_parameter_count(**COUNT_SETTING)
    s = COUNT_SETTING
    trunk = (s["d_in"] + 1) * s["hidden"][0]
    if values["hard"] != expected_hard:
        if values["hard"] == _no_biases(s["d_in"], s["hidden"], s["outputs"], s["head_hidden"]):
            return feedback(False, "`hard` misses the biases: a Linear(a, b) layer has (a + 1) * b parameters.")
        if values["hard"] == expected_hard - trunk:
            return feedback(False, "`hard` misses the trunk.")
        return feedback(False, "`hard` is off: add one trunk and three heads, each Linear(a, b) with "
                               "(a + 1) * b parameters.")
    if values["separate"] != expected_separate:
        if values["separate"] == expected_hard:
            return feedback(False, "`hard` is right; the separate networks each have their own trunk.")
        return feedback(False, "`hard` is right, `separate` is not: three trunks and three heads.")
    return feedback(True, "sharing the trunk saves two trunks' worth of parameters.")


def check_accumulated_loop(multiples: object) -> bool:
    """Exercise ch4-ex-loop: how many times the buggy loop of the chapter applies each of
    four tasks' gradients, as a list ``[m_1, m_2, m_3, m_4]``."""
    if is_placeholder(multiples):
        return not_answered()
    array = as_array(multiples)
    values = None if array is None or array.shape != (_LOOP_TASKS,) else [as_count(v) for v in array]
    if values is None or any(v is None for v in values):
        return feedback(False, f"answer with a list of {_LOOP_TASKS} whole numbers, one per task, got {multiples!r}.")
    expected = list(range(_LOOP_TASKS, 0, -1))
    if values == expected:
        return feedback(True, "each backward call adds the gradient of the whole partial sum, so the early "
                              "tasks are counted again and again.")
    if values == expected[::-1]:
        return feedback(False, "reversed: the FIRST task's loss is in every partial sum.")
    if values == [1] * _LOOP_TASKS:
        return feedback(False, "that is what the correct code gives; in the loop, each backward call adds the "
                               "gradient of the whole partial sum.")
    wrong = [t + 1 for t, (v, e) in enumerate(zip(values, expected)) if v != e]
    return feedback(False, f"the count of task{'s' if len(wrong) > 1 else ''} {wrong} is off: write down the "
                           "partial sums L_1, L_1 + L_2, ... that backward is called on, and count.")


# ---------------------------------------------------------------- graded function (exercise ch4-ex-count-code)


def _no_biases(d_in: int, hidden: Sequence[int], outputs: Mapping[str, int], head_hidden: Sequence[int]) -> int:
    sizes = [d_in, *hidden]
    trunk = sum(a * b for a, b in zip(sizes, sizes[1:]))
    heads = 0
    for c in outputs.values():
        head = [hidden[-1], *head_hidden, c]
        heads += sum(a * b for a, b in zip(head, head[1:]))
    return trunk + heads


def _one_head(d_in: int, hidden: Sequence[int], outputs: Mapping[str, int], head_hidden: Sequence[int]) -> int:
    first = next(iter(outputs))
    return hard_sharing_parameter_count(d_in, hidden, {first: outputs[first]}, head_hidden)


def _count_cases() -> list[tuple]:
    return [
        (128, (64,), {"left": 10, "right": 10, "parity": 2}, (32,)),
        (16, (8, 8), {"a": 1, "b": 1}, ()),
        (30, (20,), {"x": 3, "y": 5, "z": 7, "w": 2}, (10, 6)),
        (5, (4, 3, 2), {"only": 4}, (2,)),
    ]


def check_parameter_count_function(fn: object) -> bool:
    """Exercise ch4-ex-count-code: ``fn(d_in, hidden, outputs, head_hidden)`` returns the number of
    parameters of a hard-shared MLP: a trunk with layer widths ``(d_in, *hidden)`` and, for every
    task ``name: classes`` in ``outputs``, a head ``(hidden[-1], *head_hidden, classes)``."""
    return grade_function(
        fn, hard_sharing_parameter_count, _count_cases(), ("d_in", "hidden", "outputs", "head_hidden"),
        what="your `hard_sharing_count`", rtol=0.0,
        mistakes=[(_no_biases, "Every Linear(a, b) layer also has b biases."),
                  (_one_head, "Count one head per task in `outputs`.")],
        success="the trunk is counted once, the heads once per task.",
    )


# ---------------------------------------------------------------- graded function (exercise ch4-ex-loss-code)


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy of integer labels, as ``F.cross_entropy`` and Keras's
    ``SparseCategoricalCrossentropy(from_logits=True)`` compute it."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.mean(log_p[np.arange(len(z)), np.asarray(labels, dtype=np.int64)]))


def multitask_loss(logits: dict, labels: dict, weights: dict) -> float:
    """The reference: ``sum_t w_t CE_t``, the mean cross-entropy of each task weighted and summed."""
    return float(sum(weights[t] * _cross_entropy(logits[t], labels[t]) for t in logits))


def _unweighted(logits: dict, labels: dict, weights: dict) -> float:
    return float(sum(_cross_entropy(logits[t], labels[t]) for t in logits))


def _summed_over_batch(logits: dict, labels: dict, weights: dict) -> float:
    return float(sum(weights[t] * _cross_entropy(logits[t], labels[t]) * len(labels[t]) for t in logits))


def _probabilities_as_logits(logits: dict, labels: dict, weights: dict) -> float:
    total = 0.0
    for t in logits:
        z = np.asarray(logits[t], dtype=np.float64)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        total += weights[t] * _cross_entropy(p, labels[t])
    return total


def _loss_cases(seed: int = 404) -> list[tuple[dict, dict, dict]]:
    rng = np.random.default_rng(seed)
    cases = []
    for batch, classes, w in ((4, {"left": 10, "right": 10, "parity": 2}, (1.0, 1.0, 1.0)),
                              (6, {"a": 3, "b": 5}, (0.3, 2.0)),
                              (5, {"x": 2, "y": 4, "z": 7}, (1.5, 0.5, 1.0))):
        logits = {t: rng.normal(scale=2.0, size=(batch, c)) for t, c in classes.items()}
        labels = {t: rng.integers(0, c, size=batch) for t, c in classes.items()}
        cases.append((logits, labels, dict(zip(classes, w))))
    return cases


def check_multitask_loss(fn: object, framework: str = "torch") -> bool:
    """Exercise ch4-ex-loss-code: ``fn(logits, labels, weights)`` returns the scalar training loss
    ``sum_t w_t CE_t`` of a hard-sharing network: for each task ``t`` the mean softmax
    cross-entropy of ``logits[t]`` (``(batch, C_t)``) against the integer ``labels[t]``, weighted by
    ``weights[t]`` (a float) and summed. Graded on hidden batches as torch or TensorFlow tensors
    (``framework``) or numpy arrays."""
    return grade_function(
        fn, multitask_loss, _loss_cases(), ("logits", "labels", "weights"), framework=framework,
        what="your `multitask_loss`",
        mistakes=[(_unweighted, "Multiply each task's loss by its weight."),
                  (_summed_over_batch, "Average each task's cross-entropy over the batch (the default "
                                       "reduction), then weight and sum over tasks."),
                  (_probabilities_as_logits, "The cross-entropy takes the logits; you applied a softmax "
                                             "first (in Keras: from_logits=True on the raw outputs).")],
        success="one scalar for one backward pass: the tasks' losses, each averaged over the batch, weighted "
                "and summed.",
    )
