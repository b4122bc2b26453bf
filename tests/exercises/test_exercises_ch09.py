"""Tests of chapter 9's exercise checkers (mtl_course.exercises.ch09)."""

from __future__ import annotations

import math

import pytest

from mtl_course.exercises import ch09


def test_delta_m_reference_value_by_hand():
    # (0.93 - 0.90) / 0.90 = +3.333 %, MSE (0.60 - 0.50) / 0.50 = +20 % worse -> (3.333 - 20) / 2
    assert ch09.expected_delta_m() == pytest.approx((100 * 0.03 / 0.90 - 20.0) / 2)


def test_check_delta_m_accepts_the_right_answer(capsys):
    assert ch09.check_delta_m(-8.333) is True
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")


@pytest.mark.parametrize("answer, hint", [
    (8.333, "sign is reversed"),
    (11.667, "lower-is-better"),
    (-0.08333, "percent"),
    (-16.667, "number of tasks"),
    (3.0, "relative change"),
    ("-8.3", "one finite number"),
    (float("nan"), "one finite number"),
    (True, "one finite number"),
])
def test_check_delta_m_explains_wrong_answers(answer, hint, capsys):
    assert ch09.check_delta_m(answer) is False
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Not yet") and hint in out


def test_paired_interval_reference_values_by_hand():
    # d = (1.1, 0.8, 0.6): mean 0.8333, sample std 0.2517, t_{2,0.975} = 4.3027
    mean, half = ch09.expected_paired_interval()
    assert mean == pytest.approx(2.5 / 3)
    assert half == pytest.approx(4.302653 * math.sqrt(0.19 / 3) / math.sqrt(3), rel=1e-5)


def test_check_paired_interval_accepts_the_right_answer(capsys):
    mean, half = ch09.expected_paired_interval()
    assert ch09.check_paired_interval(round(mean, 3), round(half, 3), False) is True
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")


@pytest.mark.parametrize("args, hint", [
    ((-0.833, 0.625, False), "A - B"),
    ((0.5, 0.625, False), "average of the three"),
    ((0.833, 0.285, False), "Student's t"),
    ((0.833, 0.510, False), "ddof=1"),
    ((0.833, 2.0, False), "`half_width`"),
    ((0.833, 0.625, True), "contain 0"),
    ((0.833, 0.625, "no"), "True or False"),
    ((None, 0.625, False), "finite number"),
])
def test_check_paired_interval_explains_wrong_answers(args, hint, capsys):
    assert ch09.check_paired_interval(*args) is False
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Not yet") and hint in out
