"""Checkers of chapter 3's exercises: right answers pass, wrong ones get a useful message."""

import numpy as np
import pytest

from mtl_course.exercises import ch03


def test_mean_regularization_checker(capsys):
    # lambda_1 = 6, lambda_2 = 2, T = 3: alpha_norm = 12 / 24, alpha_mean = 36 / 24.
    assert ch03.check_mean_regularization(0.5, 1.5)
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")
    assert not ch03.check_mean_regularization(1.5, 0.5)
    assert "swapped" in " ".join(capsys.readouterr().out.split())
    assert not ch03.check_mean_regularization(1.5, 4.5)  # forgot the 1/T
    assert "1/T" in " ".join(capsys.readouterr().out.split())
    assert not ch03.check_mean_regularization("0.5", 1.5)
    assert "finite number" in " ".join(capsys.readouterr().out.split())


def test_prox_l21_checker(capsys):
    # Column norms 5, 1, 2 with tau = 2: scales 3/5, 0, 0.
    assert ch03.check_prox_l21([[1.8, 0.0, 0.0], [2.4, 0.0, 0.0]])
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")
    assert not ch03.check_prox_l21(np.sign(ch03.PROX_MATRIX) * np.maximum(np.abs(ch03.PROX_MATRIX) - 2.0, 0.0))
    assert "entry-wise" in " ".join(capsys.readouterr().out.split())
    assert not ch03.check_prox_l21([[1.8, 0.0, 0.0], [2.4, 0.0, 1.0]])
    assert "column 2 is off" in " ".join(capsys.readouterr().out.split())
    assert not ch03.check_prox_l21([[1.0, 2.0]])
    assert "2 x 3 array" in " ".join(capsys.readouterr().out.split())
    assert not ch03.check_prox_l21("no idea")
    assert "2 x 3 array" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    "answer, correct, hint",
    [(56, True, "T d = 200"), (60, False, "redundant"), (200, False, "unrelated"), (57, False, "count"), (2.5, False, "whole")],
)
def test_low_rank_parameter_count_checker(capsys, answer, correct, hint):
    assert ch03.check_low_rank_parameter_count(answer) is correct
    assert hint in " ".join(capsys.readouterr().out.split())
