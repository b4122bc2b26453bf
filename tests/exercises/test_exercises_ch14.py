"""Tests of chapter 14's exercise checkers (mtl_course.exercises.ch14)."""

from __future__ import annotations

import math

import pytest

from mtl_course.exercises import ch14

RIGHT_CLAIMS = {"a": False, "b": True, "c": True, "d": False, "e": False}


def test_hard_sharing_delta_m_by_hand():
    # (0.902 - 0.918) / 0.918, (0.900 - 0.930) / 0.930, (0.757 - 0.794) / 0.794, averaged, in percent
    by_hand = 100 * (-0.016 / 0.918 - 0.030 / 0.930 - 0.037 / 0.794) / 3
    assert ch14.expected_hard_sharing_delta_m() == pytest.approx(by_hand)
    assert ch14.expected_hard_sharing_delta_m() == pytest.approx(-3.2096, abs=1e-4)


def test_check_hard_sharing_delta_m_accepts_the_right_answer(capsys):
    assert ch14.check_hard_sharing_delta_m(-3.21) is True
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")


@pytest.mark.parametrize("answer, hint", [
    (3.21, "sign is reversed"),
    (-0.0321, "percent"),
    (-9.629, "number of tasks"),
    (-3.19, "mean of the per-seed"),
    (-2.5, "(M_shared - M_separate)"),
    ("-3.2", "one finite number"),
    (float("inf"), "one finite number"),
    (False, "one finite number"),
])
def test_check_hard_sharing_delta_m_explains_wrong_answers(answer, hint, capsys):
    assert ch14.check_hard_sharing_delta_m(answer) is False
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Not yet") and hint in out


def test_check_claims_accepts_the_right_answer(capsys):
    assert set(RIGHT_CLAIMS) == set(ch14.CLAIMS)
    assert ch14.check_claims(dict(RIGHT_CLAIMS)) is True
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Correct") and "beat uncertainty weighting by 2 pp" in out


@pytest.mark.parametrize("key", sorted(RIGHT_CLAIMS))
def test_check_claims_rejects_one_flipped_claim(key, capsys):
    answer = dict(RIGHT_CLAIMS, **{key: not RIGHT_CLAIMS[key]})
    assert ch14.check_claims(answer) is False
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Not yet: 1 of 5 wrong") and repr(key) in out


@pytest.mark.parametrize("answer", [
    None,
    [True] * 5,
    {"a": False, "b": True, "c": True, "d": False},
    dict(RIGHT_CLAIMS, f=True),
    dict(RIGHT_CLAIMS, a=0),
    dict(RIGHT_CLAIMS, b="yes"),
])
def test_check_claims_explains_malformed_answers(answer, capsys):
    assert ch14.check_claims(answer) is False
    assert "keys 'a' to 'e'" in " ".join(capsys.readouterr().out.split())


def test_check_false_alarms(capsys):
    # binomial(24, 0.05): P(>= 3) = 1 - P(0) - P(1) - P(2), by hand
    p3 = 1 - sum(math.comb(24, k) * 0.05**k * 0.95 ** (24 - k) for k in range(3))
    assert ch14.check_false_alarms(1.2, p3) is True
    assert ch14.check_false_alarms(1.2, 0.12) is False  # two digits
    assert "give more digits" in " ".join(capsys.readouterr().out.split())
    assert ch14.check_false_alarms(1.2, 1 - sum(math.comb(24, k) * 0.05**k * 0.95 ** (24 - k) for k in range(4))) is False
    assert "includes exactly three" in " ".join(capsys.readouterr().out.split())
    assert ch14.check_false_alarms(1.2, 0.05**3) is False
    assert "binomial" in " ".join(capsys.readouterr().out.split())
    assert ch14.check_false_alarms(2.4, p3) is False
    assert "`expected`" in capsys.readouterr().out
