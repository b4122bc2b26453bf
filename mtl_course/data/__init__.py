"""Multi-task data sets as numpy arrays: synthetic generators with a known
ground truth, and offline real data built from scikit-learn's bundled sets.

Two containers, one per layout: :class:`MultiTaskSplit` (one input array,
labelled for every task, NaN where a label is missing: ``fit`` of the
deep-learning twins) and :class:`TaskData` (each task with its own examples:
the classical estimators, and the generators with a known truth, which extend
it). ``TaskData.to_split`` and ``TaskData.from_split`` convert.

The planted-structure generators of chapter 3's classical methods are in
:mod:`mtl_course.data.planted`.

Nothing here imports a deep-learning framework, and nothing downloads.
"""

from mtl_course.data.diabetes import diabetes_tasks
from mtl_course.data.digits import multi_digits
from mtl_course.data.families import SineFamily, SineTask
from mtl_course.data.groups import GroupedRegression, grouped_regression
from mtl_course.data.recsys import ClickConversion, ClickConversionTruth, click_conversion
from mtl_course.data.synthetic import (
    RelatedRegression,
    gradnorm_toy,
    mmoe_synthetic,
    related_regression,
    shared_subspace_regression,
)
from mtl_course.data.toy import TwoObjectiveToy, toy_two_objective
from mtl_course.data.types import MultiTaskSplit, Splits, TaskData

__all__ = [
    "ClickConversion",
    "ClickConversionTruth",
    "GroupedRegression",
    "MultiTaskSplit",
    "RelatedRegression",
    "SineFamily",
    "SineTask",
    "Splits",
    "TaskData",
    "TwoObjectiveToy",
    "click_conversion",
    "diabetes_tasks",
    "grouped_regression",
    "gradnorm_toy",
    "mmoe_synthetic",
    "multi_digits",
    "related_regression",
    "shared_subspace_regression",
    "toy_two_objective",
]
