"""Checkers for the exercises of chapter 12, "Applications".

Each checker prints one message (``Correct``, ``Not yet`` with a hint, or
``Not answered yet`` for the placeholder ``...``) and returns ``True`` or
``False``; reading and comparing answers is :mod:`mtl_course.exercises.grading`.
"""

from __future__ import annotations

import numpy as np

from mtl_course.exercises.grading import (
    CLOSE_MESSAGE,
    as_number,
    closeness,
    feedback,
    grade_function,
    is_placeholder,
    matches,
    not_answered,
)
from mtl_course.metrics import mean_iou

__all__ = ["IOU_MAPS", "check_mean_iou", "check_mean_iou_function"]

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


def expected_mean_iou() -> float:
    """The answer of exercise ch12-ex-iou, computed by :func:`mtl_course.chapters.ch12_dense.mean_iou`."""
    return mean_iou(IOU_MAPS["predicted"], IOU_MAPS["true"], IOU_MAPS["num_classes"])


def check_mean_iou(answer: object) -> bool:
    """Exercise ch12-ex-iou: the mean IoU (a number in [0, 1]) of the maps in :data:`IOU_MAPS`."""
    if is_placeholder(answer):
        return not_answered()
    value = as_number(answer)
    if value is None:
        return feedback(False, f"give the mean IoU as one number in [0, 1], got {answer!r}.")
    target = expected_mean_iou()
    verdict = closeness(value, target)
    if verdict == "right":
        return feedback(True, "each class's errors are measured against that class's own size, so a few wrong "
                              "pixels cost IoU more than pixel accuracy.")
    if matches(value, 100 * target):
        return feedback(False, "that looks like a percentage; give a fraction in [0, 1].")
    accuracy = float(np.mean(IOU_MAPS["predicted"] == IOU_MAPS["true"]))
    if matches(value, accuracy):
        return feedback(False, "that is the pixel accuracy; IoU divides each class's overlap by the union "
                               "of its predicted and true pixels.")
    if verdict == "close":
        return feedback(False, CLOSE_MESSAGE)
    return feedback(False, "for each class c count |predicted c AND true c| / |predicted c OR true c|, "
                           "then average over the three classes.")


# ---------------------------------------------------------------- graded function (exercise ch12-ex-iou-code)


def _iou_cases(seed: int = 1212) -> list[tuple[np.ndarray, np.ndarray, int]]:
    rng = np.random.default_rng(seed)
    cases = [(IOU_MAPS["predicted"].copy(), IOU_MAPS["true"].copy(), IOU_MAPS["num_classes"])]
    for shape, classes in (((4, 4), 2), ((2, 5, 6), 3), ((3, 8, 8), 5)):
        true = rng.integers(0, classes, size=shape)
        predicted = np.where(rng.random(shape) < 0.7, true, rng.integers(0, classes, size=shape))
        cases.append((predicted, true, classes))
    cases.append((np.array([[0, 0], [1, 1]]), np.array([[0, 0], [1, 0]]), 4))  # classes 2 and 3 absent
    return cases


def _pixel_accuracy(predicted: np.ndarray, true: np.ndarray, num_classes: int) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(true)))


def _absent_as_zero(predicted: np.ndarray, true: np.ndarray, num_classes: int) -> float:
    p, t = np.asarray(predicted), np.asarray(true)
    return float(np.mean([np.sum((p == c) & (t == c)) / max(np.sum((p == c) | (t == c)), 1)
                          for c in range(num_classes)]))


def check_mean_iou_function(fn: object) -> bool:
    """Exercise ch12-ex-iou-code: ``fn(predicted, true, num_classes)`` returns the mean IoU of two
    integer label maps (any shape, e.g. a batch of images), over the classes that occur in either.
    Graded on hidden label maps, one of them with classes that occur in neither map."""
    return grade_function(
        fn, mean_iou, _iou_cases(), ("predicted", "true", "num_classes"), what="your `mean_iou`",
        mistakes=[(_pixel_accuracy, "That is the pixel accuracy."),
                  (_absent_as_zero, "Leave out a class that is neither predicted nor present; you counted it "
                                    "as IoU 0.")],
        success="intersection over union per class, over the whole set of pixels, averaged over the classes "
                "that occur.",
    )
