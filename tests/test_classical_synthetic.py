"""Planted-structure generators of mtl_course.classical.synthetic."""

import numpy as np
import pytest

from mtl_course.classical.synthetic import (
    correlated_tasks,
    low_rank_tasks,
    shared_mean_tasks,
    shared_support_tasks,
    signed_group_correlation,
    to_labels,
)


def test_shapes_noise_and_sampling():
    planted = shared_mean_tasks(3, 7, 4, spread=0.0, noise=0.0, seed=1)
    assert [X.shape for X in planted.X] == [(7, 4)] * 3 and [y.shape for y in planted.y] == [(7,)] * 3
    np.testing.assert_allclose(planted.weights, np.tile(planted.truth["shared"], (3, 1)))  # spread 0: one task
    for X, y, w in zip(planted.X, planted.y, planted.weights):
        np.testing.assert_allclose(y, X @ w)  # noise 0
    X_new, y_new = planted.sample(5, seed=2)
    assert X_new[0].shape == (5, 4) and not np.allclose(X_new[0][:5], planted.X[0][:5])


def test_generators_are_deterministic():
    a, b = low_rank_tasks(4, 5, 6, rank=2, seed=3), low_rank_tasks(4, 5, 6, rank=2, seed=3)
    assert np.array_equal(a.weights, b.weights) and all(np.array_equal(x, z) for x, z in zip(a.X, b.X))


def test_planted_support_and_rank_are_exact():
    support = shared_support_tasks(5, 3, 10, support_size=3, seed=0)
    off = np.setdiff1d(np.arange(10), support.truth["support"])
    assert len(support.truth["support"]) == 3 and np.all(support.weights[:, off] == 0)
    assert np.all(support.weights[:, support.truth["support"]] != 0)
    assert np.linalg.matrix_rank(low_rank_tasks(6, 3, 8, rank=2, seed=0).weights) == 2


def test_correlated_tasks_have_the_planted_correlation():
    truth = signed_group_correlation(np.array([1, 1, -1]), 0.8)
    np.testing.assert_allclose(truth, [[1, 0.8, -0.8], [0.8, 1, -0.8], [-0.8, -0.8, 1]])
    planted = correlated_tasks(3, 2, 20_000, correlation=truth, seed=0)
    np.testing.assert_allclose(np.corrcoef(planted.weights), truth, atol=0.03)


def test_to_labels():
    np.testing.assert_array_equal(to_labels([np.array([-0.5, 0.0, 2.0])])[0], [-1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: shared_support_tasks(2, 3, 4, support_size=5), "support_size"),
        (lambda: low_rank_tasks(2, 3, 4, rank=3), "rank"),
        (lambda: correlated_tasks(2, 3, 4, correlation=np.eye(3)), "correlation"),
        (lambda: correlated_tasks(2, 3, 4, correlation=np.array([[1.0, 2.0], [2.0, 1.0]])), "semi-definite"),
        (lambda: signed_group_correlation(np.ones(2), 1.0), "rho"),
        (lambda: shared_mean_tasks(2, 0, 3), "n_per_task"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
