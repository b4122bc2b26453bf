"""Tests of the chapter 8 exercise checkers."""

import numpy as np

from mtl_course.exercises import ch08


def test_check_conflict(capsys):
    cosine = -4.0 / np.sqrt(16.0 * 5.0)  # g1 . g2 = -4, |g1|^2 = 16, |g2|^2 = 5
    assert ch08.check_conflict(cosine, True) is True
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")
    assert ch08.check_conflict(cosine, False) is False
    assert "negative" in " ".join(capsys.readouterr().out.split())
    assert ch08.check_conflict(0.5, True) is False
    assert ch08.check_conflict("large", True) is False
    assert "finite number" in " ".join(capsys.readouterr().out.split()).splitlines()[-1]
    assert ch08.check_conflict(cosine, "yes") is False


def test_check_mgda_direction(capsys):
    # gamma = (g2 - g1) . g2 / |g1 - g2|^2 = 9 / 29, d = (16, 40) / 29 by hand
    assert ch08.check_mgda_direction([16 / 29, 40 / 29]) is True
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Correct") and "equal" in out
    assert ch08.check_mgda_direction([1.5, 1.0]) is False  # the mean gradient
    assert "mean gradient" in " ".join(capsys.readouterr().out.split())
    assert ch08.check_mgda_direction([1.0, 1.0]) is False
    assert " ".join(capsys.readouterr().out.split()).startswith("Not yet")
    assert ch08.check_mgda_direction([1.0]) is False
    assert "two finite numbers" in " ".join(capsys.readouterr().out.split())
    assert ch08.check_mgda_direction(["a", "b"]) is False
    assert ch08.check_mgda_direction([np.nan, 1.0]) is False
