"""Checkers for the exercises of chapter 9, "Does it help? Honest evaluation".

Each checker prints a short message (``Correct`` or ``Not yet``, with a hint)
and returns ``True`` or ``False``. Malformed answers (text where a number is
expected, say) get a message that explains the expected form instead of an
exception.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
from scipy import stats

from mtl_course.metrics import delta_m

__all__ = [
    "DELTA_M_SCORES",
    "PAIRED_SCORES",
    "check_delta_m",
    "check_paired_interval",
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


def _say(correct: bool, message: str) -> bool:
    print(("Correct: " if correct else "Not yet: ") + message)
    return correct


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _close(value: float, target: float, tol: float) -> bool:
    return abs(value - target) <= tol


def expected_delta_m() -> float:
    """The answer of exercise ch9-ex-deltam, computed by :func:`mtl_course.metrics.delta_m`."""
    s = DELTA_M_SCORES
    return delta_m(s["multi_task"], s["single_task"], s["higher_is_better"])


def check_delta_m(answer: object) -> bool:
    """Exercise ch9-ex-deltam: Delta_m, in percent, of the model in :data:`DELTA_M_SCORES`."""
    if not _is_number(answer):
        return _say(False, f"give Delta_m as one finite number in percent (e.g. -1.5), got {answer!r}.")
    value, target = float(answer), expected_delta_m()
    tol = 0.01
    if _close(value, target, tol):
        return _say(True, f"Delta_m = {target:.2f} %: +3.33 % on the accuracy, -20 % on the MSE "
                          "(lower is better, so its sign flips), averaged over the two tasks. "
                          "A model that gains on one task can lose on average.")
    s = DELTA_M_SCORES
    gains = [(s["multi_task"][t] - s["single_task"][t]) / s["single_task"][t] for t in s["single_task"]]
    if _close(value, -target, tol):
        return _say(False, "the sign is reversed: Delta_m is positive when the multi-task model is better.")
    if _close(value, 100 * float(np.mean(gains)), tol):
        return _say(False, "the MSE is lower-is-better: its relative change enters with a minus sign.")
    if _close(value, target / 100, 1e-4):
        return _say(False, "that is a fraction; Delta_m is reported in percent (multiply by 100).")
    if _close(value, 2 * target, 2 * tol):
        return _say(False, "Delta_m averages over the tasks: divide the sum by the number of tasks.")
    return _say(False, "compute each task's relative change (M_model - M_single) / M_single, flip the "
                       "sign for lower-is-better metrics, average over tasks, and multiply by 100.")


def expected_paired_interval(confidence: float = 0.95) -> tuple[float, float]:
    """The mean difference A - B and the half width of its t interval (exercise ch9-ex-paired)."""
    d = np.subtract(PAIRED_SCORES["A"], PAIRED_SCORES["B"])
    half = stats.t.ppf((1 + confidence) / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return float(d.mean()), float(half)


def check_paired_interval(mean: object, half_width: object, within_noise: object) -> bool:
    """Exercise ch9-ex-paired: the seed-paired 95 % interval of Delta_m(A) - Delta_m(B) in
    :data:`PAIRED_SCORES` (its mean and half width, in percentage points) and whether the
    difference is within noise (the interval contains 0)."""
    for name, value in (("mean", mean), ("half_width", half_width)):
        if not _is_number(value):
            return _say(False, f"`{name}` should be a finite number (percentage points), got {value!r}.")
    if not isinstance(within_noise, (bool, np.bool_)):
        return _say(False, f"`within_noise` should be True or False, got {within_noise!r}.")
    target_mean, target_half = expected_paired_interval()
    tol = 0.01
    if not _close(float(mean), target_mean, tol):
        if _close(float(mean), -target_mean, tol):
            return _say(False, "the difference is A - B (A minus B), so its mean is positive here.")
        return _say(False, "the mean is the average of the three seed-wise differences A_s - B_s.")
    if not _close(float(half_width), target_half, tol):
        d = np.subtract(PAIRED_SCORES["A"], PAIRED_SCORES["B"])
        z_half = 1.959964 * d.std(ddof=1) / math.sqrt(len(d))
        if _close(float(half_width), z_half, tol):
            return _say(False, "with 3 seeds use Student's t with 2 degrees of freedom (4.303), not 1.96.")
        if _close(float(half_width), target_half * math.sqrt(2.0 / 3.0), tol):
            return _say(False, "use the sample standard deviation (ddof=1, divide by n - 1).")
        return _say(False, "half width = t_{2, 0.975} * std(d, ddof=1) / sqrt(3), with t_{2, 0.975} = 4.303.")
    expected_within = target_mean - target_half <= 0.0 <= target_mean + target_half
    if bool(within_noise) != expected_within:
        return _say(False, f"the interval [{target_mean - target_half:.2f}, {target_mean + target_half:.2f}] "
                           f"{'contains' if expected_within else 'does not contain'} 0.")
    return _say(True, f"A - B = {target_mean:.2f} ± {target_half:.2f} percentage points, an interval that "
                      "excludes 0: A beats B on every seed, although their unpaired means ± stds overlap. "
                      "Pairing by seed removes the variation both methods share.")
