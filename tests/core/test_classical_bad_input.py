"""Classical estimators and proximal operators on bad input (issue 14, item 16): a clear
error naming the problem instead of a LinAlgError or a NaN coefficient."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mtl_course.classical import (
    IndependentRidge,
    MeanRegularizedMTL,
    MultiTaskFeatureLearning,
    MultiTaskRelationshipLearning,
    PooledRidge,
    RegularizedMTL,
    SharedRepresentationMTL,
    TraceNormMTL,
)
from mtl_course.classical.proximal import prox_l21, prox_squared_trace_norm, prox_trace_norm

ESTIMATORS = [IndependentRidge, PooledRidge, MeanRegularizedMTL, RegularizedMTL, MultiTaskFeatureLearning,
              TraceNormMTL, MultiTaskRelationshipLearning, SharedRepresentationMTL]


def tasks(seed: int = 0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    X_list = [scale * rng.normal(size=(20, 4)) for _ in range(3)]
    w = rng.normal(size=4)
    return X_list, [X @ w / scale + 0.1 * rng.normal(size=20) for X in X_list]


@pytest.mark.parametrize("make", ESTIMATORS)
def test_inputs_whose_squares_overflow_are_rejected_by_name(make):
    """Before: X * 1e200 gave LinAlgError in the three FISTA estimators and a NaN coef_
    in SharedRepresentationMTL."""
    X_list, y_list = tasks(scale=1e200)
    with pytest.raises(ValueError, match=r"X_list\[0\] is too large \(largest \|entry\| .*e\+200\)"):
        make().fit(X_list, y_list)
    X_list, y_list = tasks()
    with pytest.raises(ValueError, match=r"y_list\[1\] is too large"):
        make().fit(X_list, [y_list[0], 1e200 * y_list[1], y_list[2]])


@pytest.mark.parametrize("make", ESTIMATORS)
def test_large_but_safe_inputs_still_fit(make):
    """1e100 is far from overflow: the estimators fit, with finite coefficients."""
    X_list, y_list = tasks(scale=1e100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a solver may stop at its iteration cap
        model = make().fit(X_list, y_list)
    assert np.all(np.isfinite(model.coef_))


@pytest.mark.parametrize("prox", [prox_l21, prox_trace_norm, prox_squared_trace_norm])
def test_proximal_operators_reject_a_negative_tau_and_nan(prox):
    """Before: prox_l21(ones((1, 2)), -1.0) returned 2 * V; prox_trace_norm on NaN raised LinAlgError."""
    with pytest.raises(ValueError, match="tau must be a finite number >= 0"):
        prox(np.ones((1, 2)), -1.0)
    with pytest.raises(ValueError, match="tau must be a finite number >= 0"):
        prox(np.ones((1, 2)), float("nan"))
    with pytest.raises(ValueError, match="V contains NaN or inf"):
        prox(np.array([[1.0, np.nan]]), 0.5)
    with pytest.raises(ValueError, match="2-D"):
        prox(np.ones(3), 0.5)
    np.testing.assert_array_equal(prox(np.zeros((2, 3)), 0.5), np.zeros((2, 3)))
