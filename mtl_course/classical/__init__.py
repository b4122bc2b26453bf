"""Classical multi-task learning with convex linear models (numpy / scipy only).

Every estimator takes one input matrix and one target vector per task,
``fit(X_list, y_list) -> self`` and ``predict(X_list) -> list of arrays``, and
stores the task weights as the rows of ``coef_`` (shape ``(T, d)``). The
objectives and their papers are in each class's docstring and in chapter 3.

=================================  ==========================================
baselines                          :class:`IndependentRidge`, :class:`PooledRidge`
shared mean                        :class:`RegularizedMTL`, :class:`MeanRegularizedMTL`,
                                   :class:`MultiTaskSVM`
shared support (L2,1)              :class:`MultiTaskFeatureLearning`
shared subspace (low rank)         :class:`TraceNormMTL`, :class:`SharedRepresentationMTL`
learned task relationship          :class:`MultiTaskRelationshipLearning`
=================================  ==========================================

Planted-structure data: :mod:`mtl_course.data.planted`; a real data set: :func:`mtl_course.data.diabetes_tasks`.
"""

from mtl_course.classical.base import ConvergenceWarning, MultiTaskLinearModel
from mtl_course.classical.feature_learning import MultiTaskFeatureLearning, TraceNormMTL
from mtl_course.classical.proximal import fista, prox_l21, prox_trace_norm
from mtl_course.classical.regularized import (
    MeanRegularizedMTL,
    MultiTaskSVM,
    RegularizedMTL,
    regularized_to_mean_regularized,
)
from mtl_course.classical.relationship import MultiTaskRelationshipLearning, covariance_to_correlation
from mtl_course.classical.ridge import IndependentRidge, PooledRidge
from mtl_course.classical.shared_representation import SharedRepresentationMTL

__all__ = [
    "ConvergenceWarning",
    "IndependentRidge",
    "MeanRegularizedMTL",
    "MultiTaskFeatureLearning",
    "MultiTaskLinearModel",
    "MultiTaskRelationshipLearning",
    "MultiTaskSVM",
    "PooledRidge",
    "RegularizedMTL",
    "SharedRepresentationMTL",
    "TraceNormMTL",
    "covariance_to_correlation",
    "fista",
    "prox_l21",
    "prox_trace_norm",
    "regularized_to_mean_regularized",
]
