"""Checkers of chapter 12's exercises."""

import pytest

from mtl_course.exercises.ch12 import check_mean_iou, expected_mean_iou


def test_expected_mean_iou_by_hand():
    # class 0: 4 / 6, class 1: 3 / 4, class 2: 3 / 4.
    assert expected_mean_iou() == pytest.approx((4 / 6 + 3 / 4 + 3 / 4) / 3) == pytest.approx(13 / 18)


def test_check_mean_iou_messages(capsys):
    assert check_mean_iou(13 / 18)
    assert "Correct" in " ".join(capsys.readouterr().out.split())
    assert not check_mean_iou(72.22)
    assert "percentage" in " ".join(capsys.readouterr().out.split())
    assert not check_mean_iou(10 / 12)
    assert "pixel accuracy" in " ".join(capsys.readouterr().out.split())
    assert not check_mean_iou(0.5)
    assert "average over the three classes" in " ".join(capsys.readouterr().out.split())
    for bad in ("0.72", None, True, float("nan")):
        assert not check_mean_iou(bad)
        assert "one number" in " ".join(capsys.readouterr().out.split())
