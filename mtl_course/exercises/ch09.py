"""Checkers for the exercises of chapter 9, "Does it help? Honest evaluation".

Each checker prints one message (``Correct``, ``Not yet`` with a hint, or
``Not answered yet`` for the placeholder ``...``) and returns ``True`` or
``False``; reading and comparing answers is :mod:`mtl_course.exercises.grading`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from mtl_course.exercises.grading import (
    CLOSE_MESSAGE,
    as_number,
    closeness,
    feedback,
    grade_function,
    is_placeholder,
    matches,
    not_answered,
)
from mtl_course.metrics import delta_m

__all__ = [
    "DELTA_M_SCORES",
    "PAIRED_SCORES",
    "check_delta_m",
    "check_paired_interval",
    "check_paired_interval_function",
    "paired_interval",
]

#: Exercise ch9-ex-deltam: test scores of a single-task baseline and of a multi-task model.
DELTA_M_SCORES = {
    "single_task": {"digit": 0.90, "depth": 0.50},
    "multi_task": {"digit": 0.93, "depth": 0.60},
    "higher_is_better": {"digit": True, "depth": False},  # digit: accuracy, depth: MSE
}

#: Exercise ch9-ex-paired: Delta_m (percent) of two methods on the same three seeds.
PAIRED_SCORES = {
    "A": (-3.0, -1.4, -2.3),
    "B": (-4.1, -2.2, -2.9),
}


def expected_delta_m() -> float:
    """The answer of exercise ch9-ex-deltam, computed by :func:`mtl_course.metrics.delta_m`."""
    s = DELTA_M_SCORES
    return delta_m(s["multi_task"], s["single_task"], s["higher_is_better"])


def check_delta_m(answer: object) -> bool:
    """Exercise ch9-ex-deltam: Delta_m, in percent, of the model in :data:`DELTA_M_SCORES`."""
    if is_placeholder(answer):
        return not_answered()
    value = as_number(answer)
    if value is None:
        return feedback(False, f"give Delta_m as one finite number in percent (e.g. -1.5), got {answer!r}.")
    target = expected_delta_m()
    verdict = closeness(value, target)
    if verdict == "right":
        return feedback(True, "the MSE is lower-is-better, so its relative change enters with a minus sign: "
                              "a model that gains on one task can lose on average.")
    s = DELTA_M_SCORES
    gains = [(s["multi_task"][t] - s["single_task"][t]) / s["single_task"][t] for t in s["single_task"]]
    if matches(value, -target):
        return feedback(False, "the sign is reversed: Delta_m is positive when the multi-task model is better.")
    if matches(value, 100 * float(np.mean(gains))):
        return feedback(False, "the MSE is lower-is-better: its relative change enters with a minus sign.")
    if matches(value, target / 100):
        return feedback(False, "that is a fraction; Delta_m is reported in percent (multiply by 100).")
    if matches(value, 2 * target):
        return feedback(False, "Delta_m averages over the tasks: divide the sum by the number of tasks.")
    if verdict == "close":
        return feedback(False, CLOSE_MESSAGE)
    return feedback(False, "compute each task's relative change (M_model - M_single) / M_single, flip the "
                           "sign for lower-is-better metrics, average over tasks, and multiply by 100.")


def paired_interval(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> np.ndarray:
    """The reference: ``[mean, half_width]`` of the paired t interval of ``a - b`` (seed by seed)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    half = stats.t.ppf((1 + confidence) / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return np.array([d.mean(), half])


def expected_paired_interval(confidence: float = 0.95) -> tuple[float, float]:
    """The mean difference A - B and the half width of its t interval (exercise ch9-ex-paired)."""
    mean, half = paired_interval(np.array(PAIRED_SCORES["A"]), np.array(PAIRED_SCORES["B"]), confidence)
    return float(mean), float(half)


def _z_interval(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.asarray(a) - np.asarray(b)
    return np.array([d.mean(), 1.959964 * d.std(ddof=1) / math.sqrt(len(d))])


def _ddof0_interval(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.asarray(a) - np.asarray(b)
    return np.array([d.mean(), stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=0) / math.sqrt(len(d))])


def _unpaired_interval(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    n = len(a)
    half = stats.t.ppf(0.975, 2 * n - 2) * math.sqrt(a.var(ddof=1) / n + b.var(ddof=1) / n)
    return np.array([a.mean() - b.mean(), half])


def check_paired_interval(mean: object, half_width: object, within_noise: object) -> bool:
    """Exercise ch9-ex-paired: the seed-paired 95 % interval of Delta_m(A) - Delta_m(B) in
    :data:`PAIRED_SCORES` (its mean and half width, in percentage points) and whether the
    difference is within noise (the interval contains 0)."""
    if any(is_placeholder(v) for v in (mean, half_width, within_noise)):
        return not_answered("every `...`")
    values = {"mean": as_number(mean), "half_width": as_number(half_width)}
    for name, value in values.items():
        if value is None:
            return feedback(False, f"`{name}` should be one finite number (percentage points).")
    if not isinstance(within_noise, (bool, np.bool_)):
        return feedback(False, f"`within_noise` should be True or False, got {within_noise!r}.")
    a, b = np.array(PAIRED_SCORES["A"]), np.array(PAIRED_SCORES["B"])
    target_mean, target_half = expected_paired_interval()
    verdict = closeness(values["mean"], target_mean)
    if verdict != "right":
        if matches(values["mean"], -target_mean):
            return feedback(False, "`mean`: the difference is A - B (A minus B).")
        if verdict == "close":
            return feedback(False, "`mean`: " + CLOSE_MESSAGE)
        return feedback(False, "`mean` is the average of the three seed-wise differences A_s - B_s.")
    verdict = closeness(values["half_width"], target_half)
    if verdict != "right":
        if matches(values["half_width"], _z_interval(a, b)[1]):
            return feedback(False, "`half_width`: with 3 seeds use Student's t with 2 degrees of freedom, "
                                   "not the normal quantile 1.96.")
        if matches(values["half_width"], _ddof0_interval(a, b)[1]):
            return feedback(False, "`half_width`: use the sample standard deviation (ddof=1, divide by n - 1).")
        if matches(values["half_width"], _unpaired_interval(a, b)[1]):
            return feedback(False, "`half_width`: that is the unpaired interval; take the standard deviation of "
                                   "the seed-wise differences.")
        if verdict == "close":
            return feedback(False, "`half_width`: " + CLOSE_MESSAGE)
        return feedback(False, "`half_width` = t_{n-1, 0.975} * std(d, ddof=1) / sqrt(n) for the n = 3 "
                               "differences d.")
    expected_within = target_mean - target_half <= 0.0 <= target_mean + target_half
    if bool(within_noise) != expected_within:
        return feedback(False, "`within_noise` does not match your interval: does mean +- half_width contain 0?")
    return feedback(True, "pairing by seed removes the variation both methods share, so a difference hidden "
                          "by overlapping means +- stds can still be established.")


# ---------------------------------------------------------------- graded function (exercise ch9-ex-paired-code)


def _paired_cases(seed: int = 909) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    cases = [(np.array(PAIRED_SCORES["A"]), np.array(PAIRED_SCORES["B"]))]
    for n in (3, 5, 10, 4):
        shared = rng.normal(0, 2, size=n)  # the seed effect both methods share
        cases.append((shared + rng.normal(0.5, 0.3, size=n), shared + rng.normal(0, 0.3, size=n)))
    return cases


def check_paired_interval_function(fn: object) -> bool:
    """Exercise ch9-ex-paired-code: ``fn(a, b)`` returns ``(mean, half_width)`` of the paired 95 %
    t interval of ``a - b``, for the scores ``a`` and ``b`` of two methods on the same seeds.
    Graded on hidden score pairs of 3 to 10 seeds."""
    return grade_function(
        fn, paired_interval, _paired_cases(), ("a", "b"), what="your `paired_interval`",
        mistakes=[(_z_interval, "Use Student's t with n - 1 degrees of freedom, not 1.96."),
                  (_ddof0_interval, "Use the sample standard deviation (ddof=1)."),
                  (_unpaired_interval, "Pair by seed: take the differences a_s - b_s first.")],
        success="the paired t interval; a verdict needs it to exclude zero.",
    )
