"""Tests of mtl_course.metrics: hand-computed values, sklearn cross-checks, bad input."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_course.metrics import (
    HIGHER_IS_BETTER,
    METRICS,
    accuracy,
    binary_accuracy,
    delta_m,
    mae,
    mse,
    roc_auc,
)

# ---------------------------------------------------------------- delta_m


def test_delta_m_single_metric_by_hand():
    # seg: accuracy 0.55 vs 0.50 -> +10 %; depth: error 0.9 vs 1.0 (lower better) -> +10 %
    # normals: error 1.2 vs 1.0 -> -20 %; mean = 0 %
    scores = {"seg": 0.55, "depth": 0.9, "normal": 1.2}
    base = {"seg": 0.50, "depth": 1.0, "normal": 1.0}
    up = {"seg": True, "depth": False, "normal": False}
    assert delta_m(scores, base, up) == pytest.approx(0.0, abs=1e-12)
    assert delta_m({**scores, "normal": 1.0}, base, up) == pytest.approx(20.0 / 3)
    # one metric per task: both averages agree
    assert delta_m(scores, base, up, average="metrics") == pytest.approx(
        delta_m(scores, base, up, average="tasks")
    )


def test_delta_m_keeps_its_sign_for_negative_baselines():
    """Issue 14, item 15: before, -0.5 against a baseline of -1.0 (higher better) gave -50 %."""
    assert delta_m({"a": -0.5}, {"a": -1.0}, {"a": True}) == pytest.approx(50.0)
    assert delta_m({"a": -1.5}, {"a": -1.0}, {"a": True}) == pytest.approx(-50.0)
    # lower is better (e.g. a negative log-likelihood): -1.5 against -1.0 is a 50 % gain
    assert delta_m({"nll": -1.5}, {"nll": -1.0}, {"nll": False}) == pytest.approx(50.0)
    # an R^2 that goes from -0.2 to 0.1 improved, by 0.3 / 0.2 = 150 %
    assert delta_m({"r2": 0.1}, {"r2": -0.2}, {"r2": True}) == pytest.approx(150.0)


def test_delta_m_several_metrics_tasks_vs_metrics_by_hand():
    scores = {"seg": {"miou": 0.44, "pix": 0.66}, "depth": {"abs": 0.5}}
    base = {"seg": {"miou": 0.40, "pix": 0.60}, "depth": {"abs": 0.4}}
    up = {"seg": {"miou": True, "pix": True}, "depth": {"abs": False}}
    # gains: miou +0.1, pix +0.1, abs -0.25
    assert delta_m(scores, base, up, average="tasks") == pytest.approx(100 * (0.1 - 0.25) / 2)
    assert delta_m(scores, base, up, average="metrics") == pytest.approx(100 * (0.2 - 0.25) / 3)
    assert delta_m(scores, base, up) == delta_m(scores, base, up, average="tasks")


def test_delta_m_matches_nash_mtl_convention_up_to_sign():
    # The Nash-MTL code: mean over metrics of (-1)**[higher better] (a - b) / b * 100.
    base = np.array([0.3830, 0.6376, 0.6754, 0.2780, 25.01])
    model = np.array([0.40, 0.65, 0.55, 0.22, 25.5])
    up = np.array([True, True, False, False, False])
    drop = ((-1.0) ** up * (model - base) / base).mean() * 100
    names = [f"m{i}" for i in range(5)]
    as_dict = lambda v: {"all": dict(zip(names, map(float, v)))}  # noqa: E731
    ups = {"all": dict(zip(names, map(bool, up)))}
    assert delta_m(as_dict(model), as_dict(base), ups, average="metrics") == pytest.approx(-drop)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0.1, 10.0), min_size=1, max_size=5),
    st.floats(0.5, 2.0),
)
def test_delta_m_properties(base_values, factor):
    names = [f"t{i}" for i in range(len(base_values))]
    base = dict(zip(names, base_values))
    up = {n: True for n in names}
    # equal to baseline -> 0; every score scaled by `factor` -> 100 (factor - 1)
    assert delta_m(base, base, up) == 0.0
    scaled = {n: v * factor for n, v in base.items()}
    assert delta_m(scaled, base, up) == pytest.approx(100 * (factor - 1))
    down = {n: False for n in names}
    assert delta_m(scaled, base, down) == pytest.approx(-100 * (factor - 1))


@pytest.mark.parametrize(
    "scores, base, up, error, match",
    [
        ({"a": 1.0}, {"a": 1.0, "b": 1.0}, {"a": True, "b": True}, ValueError, "lacks"),
        ({"a": 1.0, "b": 1.0}, {"a": 1.0}, {"a": True}, ValueError, "absent"),
        ({"a": 1.0}, {"a": 1.0}, {}, ValueError, "higher_is_better lacks"),
        ({"a": 1.0}, {"a": 0.0}, {"a": True}, ValueError, "baseline of a is 0"),
        ({"a": math.nan}, {"a": 1.0}, {"a": True}, ValueError, "not a finite"),
        ({"a": 1.0}, {"a": math.inf}, {"a": True}, ValueError, "not a finite"),
        ({"a": 1.0}, {"a": 1.0}, {"a": "yes"}, TypeError, "bool"),
        ({"a": "1"}, {"a": 1.0}, {"a": True}, TypeError, "number"),
        ({}, {}, {}, ValueError, "no task"),
        ({"a": 1.0}, {"a": {"m": 1.0}}, {"a": {"m": True}}, TypeError, "dict of metrics"),
        ({"a": {"m": 1.0}}, {"a": {"m": 1.0, "k": 1.0}}, {"a": {"m": True, "k": True}},
         ValueError, "metrics differ"),
        ({"a": {}}, {"a": {}}, {"a": {}}, ValueError, "no metric"),
    ],
)
def test_delta_m_bad_input(scores, base, up, error, match):
    with pytest.raises(error, match=match):
        delta_m(scores, base, up)


def test_delta_m_unknown_average():
    with pytest.raises(ValueError, match="average"):
        delta_m({"a": 1.0}, {"a": 1.0}, {"a": True}, average="mean")


# ---------------------------------------------------------------- per-task metrics


def test_accuracy_from_logits_and_from_labels():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    labels = np.array([0, 1, 1, 2])
    assert accuracy(logits, labels) == 0.5
    assert accuracy(np.array([0, 1, 2, 0]), labels) == 0.5
    assert isinstance(accuracy(logits, labels), float)


def test_binary_accuracy_mse_mae_by_hand():
    assert binary_accuracy([0.9, 0.2, 0.5, 0.4], [1, 0, 0, 1]) == 0.5
    assert binary_accuracy([2.0, -1.0], [1, 0], threshold=0.0) == 1.0
    assert mse([1.0, 2.0, 4.0], [1.0, 0.0, 1.0]) == pytest.approx(13 / 3)
    assert mae([[1.0, 2.0], [4.0, 0.0]], [[1.0, 0.0], [1.0, 1.0]]) == pytest.approx(6 / 4)


def test_single_output_column_is_aligned_not_broadcast():
    # (n, 1) vs (n,) must not broadcast to (n, n)
    assert mse(np.array([[1.0], [3.0]]), np.array([1.0, 1.0])) == pytest.approx(2.0)
    assert mae(np.array([1.0, 3.0]), np.array([[1.0], [1.0]])) == pytest.approx(1.0)
    assert roc_auc(np.array([[0.9], [0.1]]), np.array([1, 0])) == 1.0
    assert binary_accuracy(np.array([[0.9], [0.1]]), np.array([1, 1])) == 0.5
    with pytest.raises(ValueError, match="shape"):
        mse(np.zeros((2, 2)), np.zeros(2))


def test_roc_auc_by_hand_and_ties():
    # positives score 0.8, 0.4; negatives 0.6, 0.1: 3 of 4 pairs ranked right
    assert roc_auc([0.8, 0.6, 0.4, 0.1], [1, 0, 1, 0]) == pytest.approx(0.75)
    assert roc_auc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)


def test_registry_is_consistent():
    assert set(METRICS) == set(HIGHER_IS_BETTER)
    assert {"accuracy", "mse", "mae", "auc"} <= set(METRICS)
    assert HIGHER_IS_BETTER["mse"] is False and HIGHER_IS_BETTER["auc"] is True


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: accuracy(np.zeros((3, 2)), [0, 1]), "shape"),
        (lambda: accuracy([0.3, 0.7], [0, 1]), "integer"),
        (lambda: accuracy(np.zeros((2, 2, 2)), [0, 1]), "shape"),
        (lambda: mse([1.0, math.nan], [1.0, 2.0]), "NaN"),
        (lambda: mae([1.0], [1.0, 2.0]), "shape"),
        (lambda: mse([], []), "empty"),
        (lambda: binary_accuracy([0.2, 0.8], [0, 2]), "0 or 1"),
        (lambda: roc_auc([0.2, 0.8], [1, 1]), "single class"),
    ],
)
def test_metrics_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
