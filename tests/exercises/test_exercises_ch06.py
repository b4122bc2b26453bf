"""Tests of the chapter 6 exercise checkers: right answers pass, wrong ones get a clear message."""

from __future__ import annotations

import math

import pytest

import mtl_course.torch as mtl_torch
from mtl_course.chapters.ch06_experts import moe_model
from mtl_course.exercises import ch06


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_expected_counts_match_the_torch_models():
    s = ch06.PARAMETER_SETTING
    expected = ch06.expected_parameter_counts(**s)
    args = (s["input_dim"], s["num_experts"], s["expert_hidden"], s["tower_hidden"])
    assert expected == {
        "shared_bottom": n_params(moe_model(mtl_torch, "shared-bottom", *args)),
        "omoe": n_params(moe_model(mtl_torch, "OMoE", *args)),
        "mmoe": n_params(moe_model(mtl_torch, "MMoE", *args)),
    }
    # experts 3 (16 * 6 + 6) = 306, gate 16 * 3 + 3 = 51, tower (6 * 4 + 4) + 5 = 33, wide tower (18 * 4 + 4) + 5 = 81
    assert expected == {"shared_bottom": 306 + 2 * 81, "omoe": 306 + 51 + 2 * 33, "mmoe": 306 + 2 * 51 + 2 * 33}


def test_check_parameter_counts(capsys):
    assert ch06.check_parameter_counts(468, 423, 474)
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")
    assert not ch06.check_parameter_counts(468, 423, 423)  # forgot the second gate
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Not yet") and "mmoe" in out and "one gate per task" in out
    assert not ch06.check_parameter_counts("many", 423, 474)
    assert "whole number" in " ".join(capsys.readouterr().out.split())
    assert not ch06.check_parameter_counts(468.5, 423, 474)


def test_check_gate_mixture(capsys):
    assert ch06.check_gate_mixture([0.5, 3.0])
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")
    assert not ch06.check_gate_mixture([1.0, 2.0])  # plain average
    assert "plain average" in " ".join(capsys.readouterr().out.split())
    assert not ch06.check_gate_mixture([0.0, 4 * math.log(3)])  # logits used as weights
    assert "softmax" in " ".join(capsys.readouterr().out.split())
    assert not ch06.check_gate_mixture([0.5])
    assert "2 finite numbers" in " ".join(capsys.readouterr().out.split())
    assert not ch06.check_gate_mixture("half")
    assert not ch06.check_gate_mixture([float("nan"), 3.0])


def test_check_funnel_rates(capsys):
    assert ch06.check_funnel_rates(0.2, 0.25, 0.05)
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")
    assert not ch06.check_funnel_rates(0.2, 0.05, 0.05)
    assert "divides by the clicks" in " ".join(capsys.readouterr().out.split())
    assert not ch06.check_funnel_rates(0.2, 0.25, 0.25)
    assert "ctcvr" in " ".join(capsys.readouterr().out.split())
    assert not ch06.check_funnel_rates(20, 0.25, 0.05)
    assert "[0, 1]" in " ".join(capsys.readouterr().out.split())
    assert not ch06.check_funnel_rates(None, 0.25, 0.05)


@pytest.mark.parametrize("checker, args", [
    (ch06.check_parameter_counts, (True, 423, 474)),
    (ch06.check_gate_mixture, (None,)),
    (ch06.check_funnel_rates, (float("inf"), 0.25, 0.05)),
])
def test_malformed_answers_do_not_raise(checker, args, capsys):
    assert checker(*args) is False
    assert " ".join(capsys.readouterr().out.split()).startswith("Not yet")
