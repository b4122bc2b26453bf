"""Baselines and regularized MTL (Evgeniou-Pontil): exact solutions, limits, recovery, errors."""

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import Ridge

from mtl_course.classical import (
    IndependentRidge,
    MeanRegularizedMTL,
    MultiTaskSVM,
    PooledRidge,
    RegularizedMTL,
    regularized_to_mean_regularized,
)
from mtl_course.data.planted import shared_mean_tasks, to_labels


@pytest.fixture
def tiny():
    return shared_mean_tasks(3, 8, 4, spread=0.5, noise=0.3, seed=3)


# ---------------------------------------------------------------- baselines
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_independent_ridge_equals_sklearn_ridge_per_task(tiny, fit_intercept):
    model = IndependentRidge(alpha=0.7, fit_intercept=fit_intercept).fit(tiny.X, tiny.y)
    for t, (X, y) in enumerate(zip(tiny.X, tiny.y)):
        reference = Ridge(alpha=0.7, fit_intercept=fit_intercept).fit(X, y)
        np.testing.assert_allclose(model.coef_[t], reference.coef_, atol=1e-10)
        np.testing.assert_allclose(model.intercept_[t], reference.intercept_, atol=1e-10)
        np.testing.assert_allclose(model.predict(tiny.X)[t], reference.predict(X), atol=1e-10)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_pooled_ridge_equals_sklearn_ridge_on_stacked_data(tiny, fit_intercept):
    model = PooledRidge(alpha=0.7, fit_intercept=fit_intercept).fit(tiny.X, tiny.y)
    reference = Ridge(alpha=0.7, fit_intercept=fit_intercept).fit(np.concatenate(tiny.X), np.concatenate(tiny.y))
    assert model.coef_.shape == (3, 4)
    for t in range(3):
        np.testing.assert_allclose(model.coef_[t], reference.coef_, atol=1e-10)
        np.testing.assert_allclose(model.intercept_[t], reference.intercept_, atol=1e-10)


def test_score_is_per_task_mean_squared_error_by_hand():
    X = [np.array([[1.0], [2.0]]), np.array([[1.0], [3.0]])]
    y = [np.array([1.0, 2.0]), np.array([0.0, 0.0])]
    model = IndependentRidge(alpha=0.0, fit_intercept=False).fit(X, y)
    np.testing.assert_allclose(model.coef_, [[1.0], [0.0]], atol=1e-12)
    # Task 1 evaluated on y = (2, 2): errors (1, 0) -> MSE 0.5; task 2 on y = (1, 1): errors (1, 1) -> 1.
    assert model.score(X, [np.array([2.0, 2.0]), np.array([1.0, 1.0])]) == pytest.approx([0.5, 1.0])


def test_least_squares_with_fewer_samples_than_features_is_min_norm():
    X = [np.array([[1.0, 1.0]])]
    model = IndependentRidge(alpha=0.0, fit_intercept=False).fit(X, [np.array([2.0])])
    np.testing.assert_allclose(model.coef_, [[1.0, 1.0]], atol=1e-10)


# ---------------------------------------------------------------- Evgeniou-Pontil
def _cvxpy_regularized_mtl(X_list, y_list, lam1, lam2):
    T, d = len(X_list), X_list[0].shape[1]
    w0, V, b = cp.Variable(d), cp.Variable((T, d)), cp.Variable(T)
    loss = sum(cp.sum_squares(y - X @ (w0 + V[t]) - b[t]) for t, (X, y) in enumerate(zip(X_list, y_list)))
    problem = cp.Problem(cp.Minimize(loss + lam1 / T * cp.sum_squares(V) + lam2 * cp.sum_squares(w0)))
    problem.solve(solver=cp.CLARABEL)
    return problem.value, w0.value, V.value


@pytest.mark.parametrize("lam1, lam2", [(1.0, 1.0), (5.0, 0.2), (0.3, 4.0)])
def test_regularized_mtl_matches_cvxpy(tiny, lam1, lam2):
    model = RegularizedMTL(lambda_task=lam1, lambda_shared=lam2).fit(tiny.X, tiny.y)
    value, w0, V = _cvxpy_regularized_mtl(tiny.X, tiny.y, lam1, lam2)
    assert model.objective(tiny.X, tiny.y) == pytest.approx(value, rel=1e-6)
    np.testing.assert_allclose(model.shared_coef_, w0, atol=1e-5)
    np.testing.assert_allclose(model.task_coef_, V, atol=1e-5)


def test_regularized_mtl_equals_mean_regularized_mtl(tiny):
    alpha_norm, alpha_mean = regularized_to_mean_regularized(2.0, 0.5, num_tasks=3)
    # Hand-computed from the formula: 2*0.5/(3*2.5) and 4/(3*2.5).
    assert (alpha_norm, alpha_mean) == pytest.approx((2 / 15, 8 / 15))
    ep = RegularizedMTL(2.0, 0.5).fit(tiny.X, tiny.y)
    mean_reg = MeanRegularizedMTL(alpha_norm, alpha_mean).fit(tiny.X, tiny.y)
    np.testing.assert_allclose(ep.coef_, mean_reg.coef_, atol=1e-10)
    assert ep.objective(tiny.X, tiny.y) == pytest.approx(mean_reg.objective(tiny.X, tiny.y), rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    lam1=st.floats(0.01, 100.0),
    lam2=st.floats(0.01, 100.0),
    num_tasks=st.integers(1, 5),
)
def test_eliminating_w0_gives_the_mean_regularized_penalty(seed, lam1, lam2, num_tasks):
    W = np.random.default_rng(seed).standard_normal((num_tasks, 3))
    # The best w_0 for fixed w_t minimizes lam1/T sum ||w_t - w0||^2 + lam2 ||w0||^2.
    w0 = lam1 / (lam1 + lam2) * W.mean(axis=0)
    ep_penalty = lam1 / num_tasks * np.sum((W - w0) ** 2) + lam2 * np.sum(w0**2)
    nudged = w0 + 1e-3 * np.random.default_rng(seed + 1).standard_normal(3)
    assert ep_penalty <= lam1 / num_tasks * np.sum((W - nudged) ** 2) + lam2 * np.sum(nudged**2)
    alpha_norm, alpha_mean = regularized_to_mean_regularized(lam1, lam2, num_tasks)
    mean_penalty = alpha_norm * np.sum(W**2) + alpha_mean * np.sum((W - W.mean(axis=0)) ** 2)
    assert mean_penalty == pytest.approx(ep_penalty, rel=1e-9, abs=1e-12)
    assert RegularizedMTL(lam1, lam2).penalty(W) == pytest.approx(ep_penalty, rel=1e-9, abs=1e-12)


def test_lambda_task_to_zero_gives_independent_least_squares(tiny):
    ep = RegularizedMTL(lambda_task=1e-9, lambda_shared=1.0).fit(tiny.X, tiny.y)
    ols = IndependentRidge(alpha=0.0).fit(tiny.X, tiny.y)
    np.testing.assert_allclose(ep.coef_, ols.coef_, atol=1e-6)
    exact = RegularizedMTL(lambda_task=0.0, lambda_shared=1.0).fit(tiny.X, tiny.y)
    np.testing.assert_allclose(exact.coef_, ols.coef_, atol=1e-10)


def test_lambda_task_to_infinity_gives_pooled_ridge(tiny):
    ep = RegularizedMTL(lambda_task=1e9, lambda_shared=0.8, fit_intercept=False).fit(tiny.X, tiny.y)
    pooled = PooledRidge(alpha=0.8, fit_intercept=False).fit(tiny.X, tiny.y)
    np.testing.assert_allclose(ep.coef_, pooled.coef_, atol=1e-6)
    np.testing.assert_allclose(ep.task_coef_, 0.0, atol=1e-6)
    # Moderate lambda_task sits strictly between the two.
    middle = RegularizedMTL(lambda_task=5.0, lambda_shared=0.8, fit_intercept=False).fit(tiny.X, tiny.y)
    assert np.abs(middle.coef_ - pooled.coef_).max() > 1e-3


def test_regularized_mtl_recovers_a_planted_shared_mean():
    planted = shared_mean_tasks(10, 6, 8, spread=0.1, noise=0.5, seed=0)
    X_test, y_test = planted.sample(200, seed=1)
    ep = RegularizedMTL(lambda_task=30.0, lambda_shared=0.01).fit(planted.X, planted.y)
    independent = IndependentRidge(alpha=1.0).fit(planted.X, planted.y)
    shared = planted.truth["shared"]
    assert np.linalg.norm(ep.shared_coef_ - shared) < 0.2 * np.linalg.norm(shared)
    assert np.mean(ep.score(X_test, y_test)) < 0.7 * np.mean(independent.score(X_test, y_test))


def test_fits_are_bit_identical_run_to_run(tiny):
    first = RegularizedMTL(1.0, 2.0).fit(tiny.X, tiny.y).coef_
    second = RegularizedMTL(1.0, 2.0).fit(tiny.X, tiny.y).coef_
    assert np.array_equal(first, second)


# ---------------------------------------------------------------- multi-task SVM
def test_multitask_svm_matches_cvxpy():
    planted = shared_mean_tasks(3, 10, 3, spread=0.5, noise=1.0, seed=5)
    labels = to_labels(planted.y)
    lam1, lam2 = 2.0, 0.5
    model = MultiTaskSVM(lam1, lam2, tol=1e-9).fit(planted.X, labels)
    T, d = 3, 3
    w0, V, b = cp.Variable(d), cp.Variable((T, d)), cp.Variable()
    hinge = sum(cp.sum(cp.pos(1 - cp.multiply(y, X @ (w0 + V[t]) + b))) for t, (X, y) in enumerate(zip(planted.X, labels)))
    problem = cp.Problem(cp.Minimize(hinge + lam1 / T * cp.sum_squares(V) + lam2 * cp.sum_squares(w0)))
    problem.solve(solver=cp.CLARABEL)
    assert model.objective(planted.X, labels) == pytest.approx(problem.value, rel=1e-5)
    np.testing.assert_allclose(model.coef_, w0.value + V.value, atol=1e-3)
    accuracy = model.score(planted.X, labels)
    assert len(accuracy) == 3 and min(accuracy) > 0.6


def test_multitask_svm_rejects_non_pm1_labels(tiny):
    with pytest.raises(ValueError, match="labels"):
        MultiTaskSVM().fit(tiny.X, [np.zeros(8), np.ones(8), np.ones(8)])
    with pytest.raises(ValueError, match="lambda_task"):
        MultiTaskSVM(lambda_task=0.0).fit(tiny.X, to_labels(tiny.y))


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("model", [IndependentRidge(), PooledRidge(), RegularizedMTL(), MeanRegularizedMTL()])
def test_bad_input_raises_clear_errors(model):
    rng = np.random.default_rng(0)
    X = [rng.standard_normal((5, 3)), rng.standard_normal((4, 3))]
    y = [rng.standard_normal(5), rng.standard_normal(4)]
    with pytest.raises(ValueError, match="same number of features"):
        model.fit([X[0], rng.standard_normal((4, 2))], y)
    with pytest.raises(ValueError, match="task 1 is empty"):
        model.fit([X[0], np.zeros((0, 3))], [y[0], np.zeros(0)])
    with pytest.raises(ValueError, match="empty: at least one task"):
        model.fit([], [])
    bad = X[1].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"X_list\[1\] contains NaN"):
        model.fit([X[0], bad], y)
    with pytest.raises(ValueError, match=r"y_list\[0\] contains NaN or inf"):
        model.fit(X, [np.full(5, np.inf), y[1]])
    with pytest.raises(ValueError, match="2 tasks but y_list has 1"):
        model.fit(X, y[:1])
    with pytest.raises(ValueError, match="4 rows but y_list"):
        model.fit(X, [y[0], y[0]])
    with pytest.raises(TypeError, match="list"):
        model.fit(np.stack([X[1], X[1]]), y)
    with pytest.raises(RuntimeError, match="not fitted"):
        type(model)().predict(X)
    model.fit(X, y)
    with pytest.raises(ValueError, match="fitted on 2 tasks"):
        model.predict(X[:1])
    with pytest.raises(ValueError, match="expected 3"):
        model.predict([X[0][:, :2], X[1][:, :2]])


@pytest.mark.parametrize("model", [IndependentRidge(alpha=-1.0), RegularizedMTL(lambda_task=-1.0), MeanRegularizedMTL(alpha_mean=np.nan)])
def test_negative_or_nan_strength_is_rejected(model, tiny):
    with pytest.raises(ValueError, match=">= 0"):
        model.fit(tiny.X, tiny.y)


def test_with_intercepts_the_infinite_limit_is_pooled_weights_with_task_intercepts():
    # Exercise ch3-ex-intercept: per-task intercepts survive lambda_task -> inf.
    tasks = shared_mean_tasks(3, 20, 4, seed=0)
    limit = RegularizedMTL(lambda_task=1e9, lambda_shared=1.0).fit(tasks.X, tasks.y)
    centered = PooledRidge(alpha=1.0, fit_intercept=False).fit(
        [X - X.mean(0) for X in tasks.X], [y - y.mean() for y in tasks.y]
    )
    np.testing.assert_allclose(limit.coef_, centered.coef_, atol=1e-6)
    shared_intercept = PooledRidge(alpha=1.0).fit(tasks.X, tasks.y)
    assert np.abs(limit.coef_ - shared_intercept.coef_).max() > 1e-3
