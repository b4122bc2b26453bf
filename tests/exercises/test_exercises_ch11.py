"""Tests of chapter 11's exercise checkers (mtl_course.exercises.ch11)."""

from __future__ import annotations

import pytest

from mtl_course.exercises import ch11


def test_reptile_exercise_reference_by_hand(capsys):
    # phi_1 = (0, 0) - 0.25 * 2 * (0 - 2) * (1, 1) = (1, 1); phi_2 = (-0.5, -0.5);
    # theta = 0 + 0.4 * mean = 0.4 * (0.25, 0.25) = (0.1, 0.1).
    assert ch11.expected_reptile_step() == pytest.approx((0.1, 0.1))
    assert ch11.check_reptile_step((0.1, 0.1)) is True
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")


@pytest.mark.parametrize("answer, hint", [
    ((0.25, 0.25), "fraction eps"),
    ((0.2, 0.2), "summed"),
    ((-0.2, -0.2), "starts again from theta"),
    ((-0.1, -0.1), "against the gradient"),
    ((1.0, 0.0), "adapt each task"),
    ("0.1, 0.1", "pair of finite numbers"),
    ((0.1,), "pair of finite numbers"),
    ((0.1, float("nan")), "pair of finite numbers"),
])
def test_reptile_exercise_explains_wrong_answers(answer, hint, capsys):
    assert ch11.check_reptile_step(answer) is False
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Not yet") and hint in out
