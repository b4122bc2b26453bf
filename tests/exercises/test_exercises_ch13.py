"""Tests of chapter 13's exercise checkers (mtl_course.exercises.ch13)."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_course.exercises import ch13


def test_replica_direction_reference_value_by_hand():
    # averaged rows g1 = (2, 0), g2 = (0, 1): the min-norm point a g1 + (1 - a) g2 has
    # a = (g2 - g1).g2 / |g1 - g2|^2 = 1 / 5, so d = (0.4, 0.8)
    np.testing.assert_allclose(ch13.expected_replica_direction(), [0.4, 0.8], atol=1e-12)


def test_check_replica_direction_accepts_the_right_answer(capsys):
    assert ch13.check_replica_direction([0.4, 0.8]) is True
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")


@pytest.mark.parametrize("answer, hint", [
    ([0.4, 0.7], "not linear"),  # replica 1: (0.3, 0.9), replica 2: (0.5, 0.5), their mean
    ([1.0, 0.5], "mean gradient"),
    ([0.0, 1.0], "closest to the origin"),
    ("0.4, 0.8", "two finite numbers"),
    ([0.4], "two finite numbers"),
    ([np.nan, 0.8], "two finite numbers"),
    (None, "two finite numbers"),
])
def test_check_replica_direction_explains_wrong_answers(answer, hint, capsys):
    assert ch13.check_replica_direction(answer) is False
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Not yet") and hint in out


def test_check_scaled_run(capsys):
    assert ch13.check_scaled_run(256, 0.04) is True
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")


@pytest.mark.parametrize("global_batch, lr, hint", [
    (64, 0.04, "global batch grows"),
    (128, 0.04, "times the number of GPUs"),
    (256, 0.01, "scale the rate up"),
    (256, 0.02, "linear scaling rule"),
    ("256", 0.04, "positive number"),
    (256, -1.0, "positive number"),
])
def test_check_scaled_run_explains_wrong_answers(global_batch, lr, hint, capsys):
    assert ch13.check_scaled_run(global_batch, lr) is False
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Not yet") and hint in out
