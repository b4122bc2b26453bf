"""Tests of mtl_course.chapters.ch08_conflict (measuring gradient conflict, chapter 8)."""

import numpy as np
import pytest
import torch

from mtl_course import torch as mtl
from mtl_course.chapters.ch08_conflict import conflict_during_training, cosine_matrix
from mtl_course.data import MultiTaskSplit


def test_cosine_matrix_by_hand():
    J = np.array([[3.0, 4.0], [-4.0, 3.0], [0.0, 0.0], [6.0, 8.0]])
    C = cosine_matrix(J @ J.T)
    expected = np.array([
        [1.0, 0.0, 0.0, 1.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],  # a zero gradient has no direction
        [1.0, 0.0, 0.0, 1.0],
    ])
    np.testing.assert_allclose(C, expected, atol=1e-15)
    assert cosine_matrix(np.array([[1.0, -2.0], [-2.0, 4.0]]))[0, 1] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="square"):
        cosine_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        cosine_matrix(np.full((2, 2), np.nan))


def _setup(sign):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x[:, 0]
    data = MultiTaskSplit(x, {"a": y, "b": sign * y})
    mtl.seed_everything(0)
    model = mtl.HardSharing(mtl.mlp([3, 8], output_activation=False),
                            {"a": mtl.mlp([8, 1]), "b": mtl.mlp([8, 1])})
    return model, data


def test_identical_tasks_never_conflict_and_opposite_tasks_do():
    model, data = _setup(1.0)
    with torch.no_grad():  # identical heads: identical task gradients
        model.heads["b"][0].weight.copy_(model.heads["a"][0].weight)
        model.heads["b"][0].bias.copy_(model.heads["a"][0].bias)
    trace = conflict_during_training(model, data, epochs=2, batch_size=16)
    assert trace.cosines.shape == (8, 2, 2) and trace.norms.shape == (8, 2)
    np.testing.assert_allclose(trace.pair_cosine(), 1.0, atol=1e-5)
    assert trace.conflict_rate() == 0.0
    model, data = _setup(-1.0)
    with torch.no_grad():  # head b = head a, but target b = -target a
        model.heads["b"][0].weight.copy_(model.heads["a"][0].weight)
        model.heads["b"][0].bias.copy_(model.heads["a"][0].bias)
    first = conflict_during_training(model, data, epochs=1, batch_size=64)
    # at the first step predictions are equal, so the residuals (p - y) and (p + y) differ
    # only in the sign of y: the cosine is below 1, and both norms are recorded
    assert first.pair_cosine()[0] < 1.0 and np.all(first.norms > 0)


def test_trace_is_deterministic_and_losses_fall():
    runs = []
    for _ in range(2):
        model, data = _setup(1.0)
        runs.append(conflict_during_training(model, data, epochs=20, batch_size=32, lr=1e-2))
    np.testing.assert_array_equal(runs[0].cosines, runs[1].cosines)
    assert np.all(runs[0].losses[-2:].mean(axis=0) < runs[0].losses[:2].mean(axis=0))


def test_bad_input():
    model, data = _setup(1.0)
    with pytest.raises(ValueError, match="no targets"):
        conflict_during_training(model, MultiTaskSplit(data.x, {"a": data.y["a"]}))
    with pytest.raises(ValueError, match="epochs"):
        conflict_during_training(model, data, epochs=0)
