"""Checkers for the exercises of chapter 6, "Mixture of experts".

Each checker prints a short message (``Correct`` or ``Not yet``, with a hint)
and returns ``True`` or ``False``. Malformed answers (text where a number is
expected, say) get a message that explains the expected form instead of an
exception.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

__all__ = [
    "EXPERT_OUTPUTS",
    "GATE_LOGITS",
    "PARAMETER_SETTING",
    "check_funnel_rates",
    "check_gate_mixture",
    "check_parameter_counts",
    "expected_parameter_counts",
]

#: The architecture of exercise ch6-ex-params (the chapter's sweep models).
PARAMETER_SETTING = {"input_dim": 16, "num_experts": 4, "expert_hidden": 8, "tower_hidden": 8, "num_tasks": 2}

#: Exercise ch6-ex-gate: the gate logits of one task and (rows) the outputs of two experts.
GATE_LOGITS = np.array([0.0, math.log(3.0)])
EXPERT_OUTPUTS = np.array([[2.0, 0.0], [0.0, 4.0]])  # row i = f_i(x)

# exercise ch6-ex-funnel: 1000 impressions, 200 clicks, 50 purchases (all after a click)
_IMPRESSIONS, _CLICKS, _PURCHASES = 1000, 200, 50


def _say(correct: bool, message: str) -> bool:
    print(("Correct: " if correct else "Not yet: ") + message)
    return correct


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _linear(d_in: int, d_out: int) -> int:
    return d_in * d_out + d_out  # weights and biases


def expected_parameter_counts(input_dim: int, num_experts: int, expert_hidden: int, tower_hidden: int,
                              num_tasks: int) -> dict[str, int]:
    """Parameter counts of the chapter's three models (one-layer experts and bottom, one-hidden-layer towers).

    - shared-bottom: one layer of ``num_experts * expert_hidden`` units, then a tower per task;
    - OMoE: the experts, one gate ``Linear(input_dim, num_experts)``, the towers;
    - MMoE: the experts, one gate per task, the towers.
    """
    width = num_experts * expert_hidden
    experts = num_experts * _linear(input_dim, expert_hidden)
    gate = _linear(input_dim, num_experts)
    tower = _linear(expert_hidden, tower_hidden) + _linear(tower_hidden, 1)
    wide_tower = _linear(width, tower_hidden) + _linear(tower_hidden, 1)
    return {
        "shared_bottom": _linear(input_dim, width) + num_tasks * wide_tower,
        "omoe": experts + gate + num_tasks * tower,
        "mmoe": experts + num_tasks * gate + num_tasks * tower,
    }


def check_parameter_counts(shared_bottom: object, omoe: object, mmoe: object) -> bool:
    """Exercise ch6-ex-params: the number of parameters (weights and biases) of the
    three models of the chapter's sweep, for :data:`PARAMETER_SETTING`."""
    answers = {"shared_bottom": shared_bottom, "omoe": omoe, "mmoe": mmoe}
    for name, value in answers.items():
        if not _is_number(value) or float(value) != int(value):
            return _say(False, f"`{name}` should be a whole number of parameters, got {value!r}.")
    expected = expected_parameter_counts(**PARAMETER_SETTING)
    wrong = [name for name in answers if int(answers[name]) != expected[name]]
    if not wrong:
        return _say(True, f"shared-bottom {expected['shared_bottom']}, OMoE {expected['omoe']}, "
                          f"MMoE {expected['mmoe']} parameters. The extra gate costs only "
                          f"{expected['mmoe'] - expected['omoe']} parameters.")
    hints = {
        "shared_bottom": "the bottom is one Linear(16, 32) layer and each tower reads all 32 units",
        "omoe": "four experts Linear(16, 8), ONE gate Linear(16, 4), two towers Linear(8, 8) + Linear(8, 1)",
        "mmoe": "like OMoE but with one gate per task",
    }
    details = "; ".join(f"{name}: {hints[name]}" for name in wrong)
    return _say(False, f"recount {', '.join(wrong)} (count every weight and every bias). Hint: {details}.")


def check_gate_mixture(answer: object) -> bool:
    """Exercise ch6-ex-gate: the mixture ``f^k(x) = sum_i g^k(x)_i f_i(x)`` for
    :data:`GATE_LOGITS` and :data:`EXPERT_OUTPUTS`, as a length-2 vector."""
    try:
        value = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return _say(False, f"give the mixture as two numbers, e.g. [0.1, 2.3]; got {answer!r}.")
    if value.shape != (2,) or not np.all(np.isfinite(value)):
        return _say(False, f"the mixture is a vector of 2 finite numbers (the experts' output size), got {answer!r}.")
    gate = np.exp(GATE_LOGITS) / np.exp(GATE_LOGITS).sum()
    expected = gate @ EXPERT_OUTPUTS
    if np.allclose(value, expected, atol=1e-3):
        mixture = [round(float(v), 6) for v in expected]
        return _say(True, f"the gate is softmax(0, ln 3) = (1/4, 3/4), so f(x) = {mixture}.")
    if np.allclose(value, GATE_LOGITS @ EXPERT_OUTPUTS, atol=1e-3):
        return _say(False, "you weighted the experts by the gate logits; apply the softmax first.")
    if np.allclose(value, EXPERT_OUTPUTS.mean(axis=0), atol=1e-3):
        return _say(False, "that is the plain average of the experts; the gate weights are not equal.")
    return _say(False, "compute the softmax of the logits, then the weighted sum of the two expert outputs.")


def check_funnel_rates(ctr: object, cvr: object, ctcvr: object) -> bool:
    """Exercise ch6-ex-funnel: CTR, post-click CVR and CTCVR of 1000 impressions
    with 200 clicks and 50 purchases (every purchase follows a click)."""
    answers = {"ctr": ctr, "cvr": cvr, "ctcvr": ctcvr}
    for name, value in answers.items():
        if not _is_number(value):
            return _say(False, f"`{name}` should be a rate between 0 and 1, got {value!r}.")
        if not 0 <= float(value) <= 1:
            return _say(False, f"`{name}` is a probability, so it lies in [0, 1]; got {value!r}.")
    expected = {"ctr": _CLICKS / _IMPRESSIONS, "cvr": _PURCHASES / _CLICKS, "ctcvr": _PURCHASES / _IMPRESSIONS}
    wrong = [name for name in answers if not math.isclose(float(answers[name]), expected[name], abs_tol=1e-6)]
    if not wrong:
        return _say(True, "CTR 0.2, CVR 0.25, CTCVR 0.05 = CTR x CVR: the identity ESMM is built on.")
    if "cvr" in wrong and math.isclose(float(cvr), expected["ctcvr"], abs_tol=1e-6):
        return _say(False, "50/1000 is the CTCVR; the post-click CVR divides by the clicks, not the impressions.")
    return _say(False, f"recheck {', '.join(wrong)}: CTR = clicks / impressions, CVR = purchases / clicks, "
                       "CTCVR = purchases / impressions.")
