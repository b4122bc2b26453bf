"""Tests of the chapter 10 exercise checkers."""

from mtl_course.exercises import ch10


def test_check_affinity(capsys):
    # Z(0->1) = 1 - 0.84 / 0.80 = -0.05, Z(1->0) = 1 - 0.45 / 0.50 = 0.1, by hand
    assert ch10.check_affinity(-0.05, 0.1) is True
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")
    assert ch10.check_affinity(0.1, -0.05) is False
    assert "swapped" in " ".join(capsys.readouterr().out.split())
    assert ch10.check_affinity(0.2, 0.25) is False  # the diagonal
    assert " ".join(capsys.readouterr().out.split()).startswith("Not yet")
    assert ch10.check_affinity("x", 0.1) is False
    assert "two finite numbers" in " ".join(capsys.readouterr().out.split())
    assert ch10.check_affinity(float("nan"), 0.1) is False


def test_check_grouping(capsys):
    # {0,1}: 0.04 + 0.06, {2,3}: 0.03 + 0.05 -> 0.18, the best by hand
    assert ch10.check_grouping([[0, 1], [2, 3]]) is True
    assert "no other partition" in " ".join(capsys.readouterr().out.split())
    assert ch10.check_grouping([[3, 2], [1, 0]]) is True
    assert ch10.check_grouping([[0, 1, 2, 3]]) is False
    assert "0.020" in " ".join(capsys.readouterr().out.split()).splitlines()[-1]
    assert ch10.check_grouping([[0, 2], [1, 3]]) is False
    assert ch10.check_grouping([[0], [1], [2, 3]]) is False
    assert "at most two" in " ".join(capsys.readouterr().out.split()).splitlines()[-1]
    assert ch10.check_grouping([[0, 1], [1, 2, 3]]) is False
    assert "exactly one" in " ".join(capsys.readouterr().out.split()).splitlines()[-1]
    assert ch10.check_grouping(5) is False
    assert "lists of task indices" in " ".join(capsys.readouterr().out.split())
