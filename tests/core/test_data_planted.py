"""Planted-structure generators of mtl_course.data.planted."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_course.data.planted import (
    correlated_tasks,
    low_rank_tasks,
    shared_mean_tasks,
    shared_support_tasks,
    signed_group_correlation,
    symmetric_root,
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


def test_correlated_weights_do_not_depend_on_the_eigenbasis():
    """Chapter 3's default correlation has a 9-fold repeated eigenvalue: any basis of that
    eigenspace is a valid `eigh` answer, and BLAS kernels differ in which one they return.
    The weights must be C^(1/2) Z, the one factor every basis gives."""
    T, d, seed = 10, 6, 4
    C = signed_group_correlation(np.where(np.arange(T) < 5, 1.0, -1.0), 0.8)
    assert np.sum(np.isclose(np.linalg.eigvalsh(C), 0.2)) == 9
    Z = np.random.default_rng(seed).standard_normal((T, d))  # the generator's first draw
    expected = np.real(scipy.linalg.sqrtm(C)) @ Z
    np.testing.assert_allclose(correlated_tasks(T, 3, d, seed=seed).weights, expected, rtol=1e-10, atol=1e-12)
    # Another basis of the repeated eigenspace (a rotation inside it) gives the same root.
    eigenvalues, V = np.linalg.eigh(C)
    inside = np.isclose(eigenvalues, 0.2)
    Q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((9, 9)))
    V_other = V.copy()
    V_other[:, inside] = V[:, inside] @ Q
    other_root = (V_other * np.sqrt(eigenvalues)) @ V_other.T
    np.testing.assert_allclose(symmetric_root(C), other_root, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**16), st.sampled_from([np.float32, np.float64]),
       st.sampled_from([1e-6, 1.0, 1e6]))
def test_symmetric_root_squares_to_c_and_is_symmetric_psd(n, seed, dtype, scale):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, max(n - 1, 1)))  # rank-deficient for n >= 2: nearly degenerate
    C = (scale * (A @ A.T)).astype(dtype)
    C = (C + C.T) / 2
    root = symmetric_root(C)
    assert root.dtype == np.float64
    np.testing.assert_allclose(root, root.T, atol=0)
    assert np.linalg.eigvalsh(root).min() >= -1e-6 * np.sqrt(scale) * max(1.0, np.abs(root).max() / np.sqrt(scale))
    np.testing.assert_allclose(root @ root, C.astype(np.float64), atol=1e-6 * scale * n)


def test_symmetric_root_of_a_diagonal_matrix_by_hand():
    np.testing.assert_allclose(symmetric_root(np.diag([4.0, 9.0, 0.0])), np.diag([2.0, 3.0, 0.0]))
    np.testing.assert_allclose(symmetric_root([[2.0, 2.0], [2.0, 2.0]]), [[1.0, 1.0], [1.0, 1.0]])


def test_to_labels():
    np.testing.assert_array_equal(to_labels([np.array([-0.5, 0.0, 2.0])])[0], [-1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: shared_support_tasks(2, 3, 4, support_size=5), "support_size"),
        (lambda: low_rank_tasks(2, 3, 4, rank=3), "rank"),
        (lambda: correlated_tasks(2, 3, 4, correlation=np.eye(3)), "correlation"),
        (lambda: correlated_tasks(2, 3, 4, correlation=np.array([[1.0, 2.0], [2.0, 1.0]])), "semi-definite"),
        (lambda: correlated_tasks(2, 3, 4, correlation=np.array([[1.0, 0.5], [-0.5, 1.0]])), "symmetric"),
        (lambda: symmetric_root(np.array([[1.0, np.nan], [np.nan, 1.0]])), "finite"),
        (lambda: signed_group_correlation(np.ones(2), 1.0), "rho"),
        (lambda: shared_mean_tasks(2, 0, 3), "n_per_task"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("n", [0, 2.5, True])
def test_sample_needs_a_whole_positive_count(n):
    # 2.5 used to be truncated to 2 without a word
    tasks = shared_mean_tasks(2, 3, 4, seed=0)
    with pytest.raises(ValueError, match="n_per_task must be an int >= 1"):
        tasks.sample(n, seed=1)
