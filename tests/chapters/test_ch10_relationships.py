"""Tests of mtl_course.chapters.ch10_relationships (auxiliary tasks and negative transfer, chapter 10)."""

import numpy as np
import pytest
import torch

from mtl_course.chapters.ch10_relationships import bottleneck_model, main_task_transfer
from mtl_course.data.groups import grouped_regression


def test_bottleneck_model_shapes():
    model = bottleneck_model(["a", "b"], dim=5, width=2)
    out = model(torch.zeros(3, 5))
    assert list(out) == ["a", "b"] and out["a"].shape == (3, 1)
    assert model.trunk[-1].out_features == 2


def test_main_task_transfer_is_deterministic_and_measures_the_main_task():
    data = grouped_regression(group_sizes=(2, 1), n_train=64, n_test=32, noise=[1.0, 0.1, 0.1])
    settings = {"alone": [], "+a1": ["a1"]}
    first = main_task_transfer(data.splits, "a0", settings, seeds=(0, 1), epochs=2)
    second = main_task_transfer(data.splits, "a0", settings, seeds=(0, 1), epochs=2)
    assert list(first) == ["alone", "+a1"] and first["alone"].shape == (2,)
    for label in settings:
        np.testing.assert_array_equal(first[label], second[label])
    # an error is at least the label noise it cannot predict, roughly: not a tiny number
    assert np.all(first["alone"] > 0.5)


def test_main_task_transfer_rejects_bad_settings():
    data = grouped_regression(group_sizes=(2,), n_train=16)
    with pytest.raises(ValueError, match="unknown main"):
        main_task_transfer(data.splits, "z", {"alone": []})
    with pytest.raises(ValueError, match="unknown or repeated"):
        main_task_transfer(data.splits, "a0", {"x": ["a0"]})
    with pytest.raises(ValueError, match="non-empty"):
        main_task_transfer(data.splits, "a0", {})
