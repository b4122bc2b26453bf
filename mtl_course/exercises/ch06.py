"""Checkers for the exercises of chapter 6, "Mixture of experts".

Each checker prints one message (``Correct``, ``Not yet`` with a hint, or
``Not answered yet`` for the placeholder ``...``) and returns ``True`` or
``False``; reading and comparing answers is :mod:`mtl_course.exercises.grading`.
"""

from __future__ import annotations

import math

import numpy as np

from mtl_course.exercises.grading import (
    CLOSE_MESSAGE,
    as_count,
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
    "EXPERT_OUTPUTS",
    "GATE_LOGITS",
    "PARAMETER_SETTING",
    "check_funnel_rates",
    "check_gate_mixture",
    "check_mmoe_gate",
    "mmoe_gate",
    "check_parameter_counts",
    "expected_parameter_counts",
]

#: The architecture of exercise ch6-ex-params: the chapter's kind of models, smaller than the sweep's
#: (whose counts the chapter prints).
PARAMETER_SETTING = {"input_dim": 16, "num_experts": 3, "expert_hidden": 6, "tower_hidden": 4, "num_tasks": 2}

#: Exercise ch6-ex-gate: the gate logits of one task and (rows) the outputs of two experts.
GATE_LOGITS = np.array([0.0, math.log(3.0)])
EXPERT_OUTPUTS = np.array([[2.0, 0.0], [0.0, 4.0]])  # row i = f_i(x)

# exercise ch6-ex-funnel: 1000 impressions, 200 clicks, 50 purchases (all after a click)
_IMPRESSIONS, _CLICKS, _PURCHASES = 1000, 200, 50


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
    chapter's three kinds of model, for :data:`PARAMETER_SETTING`."""
    answers = {"shared_bottom": shared_bottom, "omoe": omoe, "mmoe": mmoe}
    if any(is_placeholder(v) for v in answers.values()):
        return not_answered()
    values = {name: as_count(v) for name, v in answers.items()}
    for name, value in values.items():
        if value is None:
            return feedback(False, f"`{name}` should be a whole number of parameters, got {answers[name]!r}.")
    expected = expected_parameter_counts(**PARAMETER_SETTING)
    wrong = [name for name in answers if values[name] != expected[name]]
    if not wrong:
        return feedback(True, "the gated models are not bigger than the shared-bottom baseline; a gate per "
                              "task is cheap.")
    s = PARAMETER_SETTING
    width, d, e, h, k = s["num_experts"] * s["expert_hidden"], s["input_dim"], s["num_experts"], s["expert_hidden"], \
        s["tower_hidden"]
    hints = {
        "shared_bottom": f"the bottom is one Linear({d}, {width}) layer and each tower reads all {width} units",
        "omoe": f"{e} experts Linear({d}, {h}), ONE gate Linear({d}, {e}), two towers Linear({h}, {k}) + "
                f"Linear({k}, 1)",
        "mmoe": "like OMoE but with one gate per task",
    }
    details = "; ".join(f"{name}: {hints[name]}" for name in wrong)
    return feedback(False, f"recount {', '.join(wrong)} (count every weight and every bias). Hint: {details}.")


def check_gate_mixture(answer: object) -> bool:
    """Exercise ch6-ex-gate: the mixture ``f^k(x) = sum_i g^k(x)_i f_i(x)`` for
    :data:`GATE_LOGITS` and :data:`EXPERT_OUTPUTS`, as a length-2 vector."""
    if is_placeholder(answer):
        return not_answered()
    value = as_vector(answer, (2,))
    if value is None:
        return feedback(False, f"the mixture is a vector of 2 finite numbers (the experts' output size), "
                               f"got {answer!r}.")
    gate = np.exp(GATE_LOGITS) / np.exp(GATE_LOGITS).sum()
    expected = gate @ EXPERT_OUTPUTS
    verdict = closeness(value, expected)
    if verdict == "right":
        return feedback(True, "the gate's softmax turns the logits into mixing weights that sum to one.")
    if matches(value, GATE_LOGITS @ EXPERT_OUTPUTS):
        return feedback(False, "you weighted the experts by the gate logits; apply the softmax first.")
    if matches(value, EXPERT_OUTPUTS.mean(axis=0)):
        return feedback(False, "that is the plain average of the experts; the gate weights are not equal.")
    if verdict == "close":
        return feedback(False, CLOSE_MESSAGE)
    return feedback(False, "compute the softmax of the logits, then the weighted sum of the two expert outputs.")


def check_funnel_rates(ctr: object, cvr: object, ctcvr: object) -> bool:
    """Exercise ch6-ex-funnel: CTR, post-click CVR and CTCVR of 1000 impressions
    with 200 clicks and 50 purchases (every purchase follows a click)."""
    answers = {"ctr": ctr, "cvr": cvr, "ctcvr": ctcvr}
    if any(is_placeholder(v) for v in answers.values()):
        return not_answered()
    values = {name: as_number(v) for name, v in answers.items()}
    for name, value in values.items():
        if value is None:
            return feedback(False, f"`{name}` should be a rate between 0 and 1, got {answers[name]!r}.")
        if not 0 <= value <= 1:
            return feedback(False, f"`{name}` is a probability, so it lies in [0, 1]; got {answers[name]!r}.")
    expected = {"ctr": _CLICKS / _IMPRESSIONS, "cvr": _PURCHASES / _CLICKS, "ctcvr": _PURCHASES / _IMPRESSIONS}
    verdicts = {name: closeness(values[name], expected[name]) for name in answers}
    wrong = [name for name, v in verdicts.items() if v != "right"]
    if not wrong:
        return feedback(True, "CTCVR = CTR x CVR: the identity ESMM is built on.")
    if "cvr" in wrong and matches(values["cvr"], expected["ctcvr"]):
        return feedback(False, "`cvr`: purchases / impressions is the CTCVR; the post-click CVR divides by "
                               "the clicks, not the impressions.")
    if all(verdicts[name] == "close" for name in wrong):
        return feedback(False, f"{', '.join(wrong)}: " + CLOSE_MESSAGE)
    return feedback(False, f"recheck {', '.join(wrong)}: CTR = clicks / impressions, CVR = purchases / clicks, "
                           "CTCVR = purchases / impressions.")


# ---------------------------------------------------------------- graded function (exercise ch6-ex-gate-code)


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def mmoe_gate(gate_logits: np.ndarray, expert_outputs: list[np.ndarray]) -> np.ndarray:
    """The reference: ``sum_i softmax(gate_logits)_i f_i(x)`` per example, shape ``(batch, d)``."""
    weights = _softmax(np.asarray(gate_logits, dtype=np.float64), axis=1)  # (batch, E)
    stacked = np.stack([np.asarray(f, dtype=np.float64) for f in expert_outputs], axis=1)  # (batch, E, d)
    return np.einsum("be,bed->bd", weights, stacked)


def _softmax_over_batch(gate_logits: np.ndarray, expert_outputs: list[np.ndarray]) -> np.ndarray:
    weights = _softmax(np.asarray(gate_logits, dtype=np.float64), axis=0)
    return np.einsum("be,bed->bd", weights, np.stack(expert_outputs, axis=1))


def _no_softmax(gate_logits: np.ndarray, expert_outputs: list[np.ndarray]) -> np.ndarray:
    return np.einsum("be,bed->bd", np.asarray(gate_logits, dtype=np.float64), np.stack(expert_outputs, axis=1))


def _gate_cases(seed: int = 606) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    cases = [(GATE_LOGITS[None, :].copy(), [row[None, :].copy() for row in EXPERT_OUTPUTS])]
    for batch, experts, dim in ((3, 2, 2), (4, 3, 5), (5, 4, 1), (2, 6, 3)):
        logits = rng.normal(scale=2.0, size=(batch, experts))
        cases.append((logits, [rng.normal(size=(batch, dim)) for _ in range(experts)]))
    return cases


def check_mmoe_gate(fn: object, framework: str = "torch") -> bool:
    """Exercise ch6-ex-gate-code: ``fn(gate_logits, expert_outputs)`` returns one task's mixture
    ``sum_i softmax(gate_logits)_i f_i(x)``, shape ``(batch, d)``, from the gate logits
    ``(batch, E)`` and a list of ``E`` expert outputs of shape ``(batch, d)``. Graded on hidden
    batches, as torch or TensorFlow float32 tensors (``framework``) or numpy arrays."""
    return grade_function(
        fn, mmoe_gate, _gate_cases(), ("gate_logits", "expert_outputs"), framework=framework,
        what="your `mmoe_gate`",
        mistakes=[(_softmax_over_batch, "The softmax runs over the experts of each example (the last axis), "
                                        "not over the batch."),
                  (_no_softmax, "Apply the softmax to the logits before mixing.")],
        success="one gate per task mixes the shared experts example by example: the MMoE layer.",
    )
