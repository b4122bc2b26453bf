"""Checkers for the exercises of chapter 12, "Applications".

Each checker prints a short message (``Correct`` or ``Not yet``, with a hint)
and returns ``True`` or ``False``. Malformed answers get a message that
explains the expected form instead of an exception.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from mtl_course.experiments.dense import mean_iou

__all__ = ["IOU_MAPS", "check_mean_iou"]

#: Exercise ch12-ex-iou: a 3 x 4 true label map and a prediction, classes 0 (background), 1 and 2.
IOU_MAPS = {
    "true": np.array([[0, 0, 1, 1],
                      [0, 2, 1, 1],
                      [0, 2, 2, 0]]),
    "predicted": np.array([[0, 0, 0, 1],
                           [0, 2, 1, 1],
                           [2, 2, 2, 0]]),
    "num_classes": 3,
}


def _say(correct: bool, message: str) -> bool:
    print(("Correct: " if correct else "Not yet: ") + message)
    return correct


def expected_mean_iou() -> float:
    """The answer of exercise ch12-ex-iou, computed by :func:`mtl_course.experiments.dense.mean_iou`."""
    return mean_iou(IOU_MAPS["predicted"], IOU_MAPS["true"], IOU_MAPS["num_classes"])


def check_mean_iou(answer: object) -> bool:
    """Exercise ch12-ex-iou: the mean IoU (a number in [0, 1]) of the maps in :data:`IOU_MAPS`."""
    if isinstance(answer, bool) or not isinstance(answer, Real) or not math.isfinite(float(answer)):
        return _say(False, f"give the mean IoU as one number in [0, 1], got {answer!r}")
    value, target = float(answer), expected_mean_iou()
    if abs(value - target) <= 1e-3:
        return _say(True, f"mean IoU = {target:.4f}.")
    if abs(value - 100 * target) <= 0.1:
        return _say(False, "that looks like a percentage; give a fraction in [0, 1].")
    accuracy = float(np.mean(IOU_MAPS["predicted"] == IOU_MAPS["true"]))
    if abs(value - accuracy) <= 1e-3:
        return _say(False, "that is the pixel accuracy; IoU divides each class's overlap by the union "
                           "of its predicted and true pixels.")
    return _say(False, "for each class c count |predicted c AND true c| / |predicted c OR true c|, "
                       "then average over the three classes.")
