"""Checkers for the exercises of chapter 7, "Loss weighting".

Each checker prints a short message (``Correct`` or ``Not yet``, with a hint)
and returns ``True`` or ``False``. Malformed answers (text where numbers are
expected, the wrong number of values) get a message that explains the expected
form instead of an exception. The reference answers are computed with the
package's own rules in :mod:`mtl_course.core.weighting`.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from mtl_course.core.weighting import dwa_weights, gradnorm_update, uncertainty_optimum

__all__ = [
    "DWA_SETTING",
    "GRADNORM_SETTING",
    "UNCERTAINTY_SETTING",
    "check_dwa_weights",
    "check_gradnorm_step",
    "check_uncertainty_optimum",
]

#: Exercise ch7-ex-uncertainty: a regression loss and a classification loss, held fixed.
UNCERTAINTY_SETTING = {"losses": (0.5, 2.0), "kinds": ("regression", "classification")}

#: Exercise ch7-ex-gradnorm: one GradNorm step for two tasks.
GRADNORM_SETTING = {"weights": (1.0, 1.0), "grad_norms": (2.0, 0.5), "losses": (0.5, 0.9),
                    "initial_losses": (1.0, 1.0), "alpha": 1.0, "lr": 0.1}

#: Exercise ch7-ex-dwa: epoch-average losses of two tasks, oldest first, and the temperature.
DWA_SETTING = {"loss_history": ((1.0, 2.0), (0.5, 1.8)), "temperature": 2.0}


def _say(correct: bool, message: str) -> bool:
    print(("Correct: " if correct else "Not yet: ") + message)
    return correct


def _numbers(value: object, count: int, what: str) -> np.ndarray | None:
    """``value`` as ``count`` finite floats, or None after printing what was expected."""
    try:
        items = list(value)  # type: ignore[call-overload]
    except TypeError:
        items = None
    if items is None or len(items) != count or not all(
            isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v)) for v in items):
        _say(False, f"`{what}` should be a list of {count} finite numbers, got {value!r}.")
        return None
    return np.array(items, dtype=np.float64)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.allclose(a, b, rtol=0, atol=5e-3))


def check_uncertainty_optimum(sigma_squared: object, weights: object) -> bool:
    """Exercise ch7-ex-uncertainty: the optimal ``sigma_i^2`` and the effective weights
    (the factors in front of ``L_i``) for the fixed losses of :data:`UNCERTAINTY_SETTING`."""
    s2 = _numbers(sigma_squared, 2, "sigma_squared")
    if s2 is None:
        return False
    w = _numbers(weights, 2, "weights")
    if w is None:
        return False
    losses = np.array(UNCERTAINTY_SETTING["losses"])
    expected_s2 = np.exp(uncertainty_optimum(losses, UNCERTAINTY_SETTING["kinds"]))
    expected_w = 1.0 / (2.0 * losses)
    if _close(s2, expected_s2) and _close(w, expected_w):
        return _say(True, f"sigma^2 = {expected_s2.round(3).tolist()}, weights = {expected_w.round(3).tolist()}: "
                          "at the optimum every task's loss is multiplied by 1 / (2 L_i).")
    if _close(s2, losses):
        return _say(False, "sigma^2 = L is right for the regression task only: the classification term is "
                           "L / sigma^2 + log sigma (no factor 1/2), so its optimum is sigma^2 = 2 L.")
    if not _close(s2, expected_s2):
        return _say(False, "set the derivative of c L / sigma^2 + log sigma with respect to sigma to zero "
                           "(c = 1/2 for regression, 1 for classification).")
    if _close(w, 1.0 / expected_s2):
        return _say(False, "the sigma^2 are right; the weight is c / sigma^2, not 1 / sigma^2 "
                           "(c = 1/2 for the regression task).")
    return _say(False, "the sigma^2 are right; the effective weight of task i is c_i / sigma_i^2.")


def check_gradnorm_step(new_weights: object) -> bool:
    """Exercise ch7-ex-gradnorm: the weights after one GradNorm step with :data:`GRADNORM_SETTING`
    (gradient step on ``L_grad``, then renormalisation to sum to the number of tasks)."""
    w = _numbers(new_weights, 2, "new_weights")
    if w is None:
        return False
    s = {k: np.array(v) if isinstance(v, tuple) else v for k, v in GRADNORM_SETTING.items()}
    expected = gradnorm_update(s["weights"], s["grad_norms"], s["losses"], s["initial_losses"], s["alpha"], s["lr"])
    if _close(w, expected):
        return _say(True, f"w = {expected.round(4).tolist()}: the task that trains slower (task 2) gains weight.")
    gaps = s["weights"] * s["grad_norms"] - _target(s)
    unnormalised = s["weights"] - s["lr"] * np.sign(gaps) * s["grad_norms"]
    if _close(w, unnormalised):
        return _say(False, "that is the step before the renormalisation: scale the weights so they sum to 2.")
    if abs(w.sum() - 2.0) > 5e-3:
        return _say(False, "GradNorm's weights sum to the number of tasks (2) after every step.")
    return _say(False, "compute r_i = (L_i / L_i(0)) / mean_j (L_j / L_j(0)), the targets mean(G) r_i^alpha "
                       "with G_i = w_i n_i, step w_i -= lr * sign(G_i - target_i) * n_i, then renormalise.")


def _target(s: dict) -> np.ndarray:
    """GradNorm's targets mean(G) r_i^alpha (the first step of :func:`gradnorm_update`)."""
    ratio = s["losses"] / s["initial_losses"]
    return (s["weights"] * s["grad_norms"]).mean() * (ratio / ratio.mean()) ** s["alpha"]


def check_dwa_weights(weights: object) -> bool:
    """Exercise ch7-ex-dwa: Dynamic Weight Average's weights for the next epoch from :data:`DWA_SETTING`."""
    w = _numbers(weights, 2, "weights")
    if w is None:
        return False
    expected = dwa_weights(np.array(DWA_SETTING["loss_history"]), DWA_SETTING["temperature"])
    if _close(w, expected):
        return _say(True, f"w = {expected.round(4).tolist()}: task 2's loss fell less, so it gets more weight.")
    if _close(w, expected / 2):
        return _say(False, "DWA's weights sum to the number of tasks K = 2: multiply the softmax by K.")
    flipped = dwa_weights(np.array(DWA_SETTING["loss_history"])[::-1], DWA_SETTING["temperature"])
    if _close(w, flipped):
        return _say(False, "the ratio is r_k = L_k(t-1) / L_k(t-2): the latest epoch over the one before.")
    return _say(False, "compute r_k = L_k(t-1) / L_k(t-2), then w_k = K exp(r_k / T) / sum_i exp(r_i / T).")
