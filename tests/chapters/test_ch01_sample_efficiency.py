"""Tests of mtl_course.chapters.ch01_sample_efficiency: the sample-efficiency experiment of chapter 1."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_course.chapters.ch01_sample_efficiency import sample_efficiency
from mtl_course.classical import IndependentRidge, PooledRidge
from mtl_course.classical.comparison import Method, tune_and_score
from mtl_course.data.synthetic import related_regression
from mtl_course.exercises.ch01 import pooled_floor

SMALL = dict(num_tasks=3, dim=4, noise=0.5, n_val=30, n_test=200)


def test_sample_efficiency_shapes_determinism_and_nested_training_sets():
    models = {"single": Method(lambda s: IndependentRidge(alpha=s), [0.1, 10.0])}
    first = sample_efficiency(models, [5, 20], relatedness=0.5, seeds=[0, 1], **SMALL)
    second = sample_efficiency(models, [5, 20], relatedness=0.5, seeds=[0, 1], **SMALL)
    assert first.test_mse["single"].shape == (2, 2)
    np.testing.assert_array_equal(first.test_mse["single"], second.test_mse["single"])
    np.testing.assert_array_equal(first.mean("single"), first.test_mse["single"].mean(axis=0))
    assert set(np.unique(first.strength["single"])) <= {0.1, 10.0}
    # the n = 20 entry is the same as a direct computation on the first 20 rows of the seed-1 draw
    tasks = related_regression(3, 20, 4, 0.5, 0.5, 1)
    _, direct = tune_and_score(models["single"], (tasks.X, tasks.y), tasks.sample(30, 1_000_001),
                               tasks.sample(200, 2_000_001))
    assert first.test_mse["single"][1, 1] == pytest.approx(direct)


def test_pooling_unrelated_tasks_stays_at_the_predicted_floor():
    """The measured pooled error matches sigma^2 + (1 - rho)(1 - 1/T) (eq. ch1-pooled-floor)."""
    models = {
        "single": Method(lambda s: IndependentRidge(alpha=s, fit_intercept=False), [0.01, 1.0]),
        "pooled": Method(lambda s: PooledRidge(alpha=s, fit_intercept=False), [0.01, 1.0]),
    }
    result = sample_efficiency(models, [200], relatedness=0.0, seeds=range(4), **SMALL)
    floor = pooled_floor(0.5, 0.0, 3)
    assert result.mean("pooled")[0] == pytest.approx(floor, rel=0.35)
    assert result.mean("single")[0] < 0.35 < result.mean("pooled")[0]  # negative transfer


def test_sample_efficiency_rejects_bad_arguments():
    models = {"single": Method(lambda s: IndependentRidge(alpha=s), [1.0])}
    with pytest.raises(ValueError, match="at least one model"):
        sample_efficiency({}, [5], relatedness=0.5)
    with pytest.raises(ValueError, match="non-empty"):
        sample_efficiency(models, [], relatedness=0.5)
    with pytest.raises(ValueError, match="positive integers"):
        sample_efficiency(models, [0, 5], relatedness=0.5)
    with pytest.raises(ValueError, match="positive integers"):
        sample_efficiency(models, [2.5], relatedness=0.5)
    with pytest.raises(ValueError, match="seed"):
        sample_efficiency(models, [5], relatedness=0.5, seeds=[])
