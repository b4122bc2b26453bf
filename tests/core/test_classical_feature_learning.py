"""L2,1 feature learning, trace norm, shared representation, MTRL: solvers, recovery, warnings."""

import warnings

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import MultiTaskLasso

from mtl_course.classical import (
    ConvergenceWarning,
    MultiTaskFeatureLearning,
    MultiTaskRelationshipLearning,
    SharedRepresentationMTL,
    TraceNormMTL,
    covariance_to_correlation,
    fista,
    prox_l21,
    prox_trace_norm,
)
from mtl_course.classical.proximal import prox_squared_trace_norm
from mtl_course.data.planted import (
    correlated_tasks,
    low_rank_tasks,
    shared_support_tasks,
    signed_group_correlation,
)


def _cvxpy_value(X_list, y_list, penalty):
    T, d = len(X_list), X_list[0].shape[1]
    W, b = cp.Variable((T, d)), cp.Variable(T)
    loss = sum(cp.sum_squares(y - X @ W[t] - b[t]) for t, (X, y) in enumerate(zip(X_list, y_list)))
    problem = cp.Problem(cp.Minimize(loss + penalty(W)))
    problem.solve(solver=cp.CLARABEL)
    return problem.value, W.value


# ---------------------------------------------------------------- proximal operators
def test_prox_l21_by_hand():
    V = np.array([[3.0, 0.3], [4.0, 0.4]])  # feature columns with norms 5 and 0.5
    np.testing.assert_allclose(prox_l21(V, 1.0), [[2.4, 0.0], [3.2, 0.0]])


def test_prox_trace_norm_by_hand():
    np.testing.assert_allclose(prox_trace_norm(np.diag([3.0, 1.0]), 2.0), np.diag([1.0, 0.0]), atol=1e-12)


def test_prox_squared_trace_norm_by_hand():
    # k = 2 would need sigma_2 = 1 > 2 tau S = 4/3: no. k = 1: S = 3 / 2, threshold 3/2.
    np.testing.assert_allclose(prox_squared_trace_norm(np.diag([3.0, 1.0]), 0.5), np.diag([1.5, 0.0]), atol=1e-12)
    # sigma = (2, 0): S = 2 / (1 + 2 tau) and s_1 = 2 - 2 tau S = 2 / 201 for tau = 100.
    np.testing.assert_allclose(prox_squared_trace_norm(np.ones((2, 2)), 100.0), np.ones((2, 2)) / 201)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), tau=st.floats(0.01, 3.0), which=st.sampled_from(["l21", "trace", "squared trace"]))
def test_prox_output_minimizes_its_objective(seed, tau, which):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((3, 4))
    prox, norm = {
        "l21": (prox_l21, lambda W: np.sum(np.linalg.norm(W, axis=0))),
        "trace": (prox_trace_norm, lambda W: np.sum(np.linalg.svd(W, compute_uv=False))),
        "squared trace": (prox_squared_trace_norm, lambda W: np.sum(np.linalg.svd(W, compute_uv=False)) ** 2),
    }[which]
    W = prox(V, tau)

    def h(Z):
        return tau * norm(Z) + 0.5 * np.sum((Z - V) ** 2)

    for _ in range(10):
        assert h(W) <= h(W + 1e-3 * rng.standard_normal(W.shape)) + 1e-12


def test_fista_on_a_hand_made_problem():
    # min (w - 3)^2 + |w|: the soft-threshold solution is w = 2.5 (derivative 2 (w - 3) + 1 = 0).
    def soft_threshold(v, step):
        return np.sign(v) * np.maximum(np.abs(v) - step, 0.0)

    result = fista(lambda w: 2.0 * (w - 3.0), soft_threshold, 2.0, np.zeros(1), tol=1e-12)
    np.testing.assert_allclose(result.W, [2.5])
    assert result.converged and result.n_iter <= 3
    with pytest.raises(ValueError, match="Lipschitz"):
        fista(lambda w: w, soft_threshold, 0.0, np.zeros(1))


# ---------------------------------------------------------------- L2,1
def test_l21_equals_sklearn_multitask_lasso_with_shared_inputs():
    planted = shared_support_tasks(4, 20, 10, support_size=3, seed=0)
    X = planted.X[0]
    Y = [X @ w + 0.3 * np.random.default_rng(t).standard_normal(20) for t, w in enumerate(planted.weights)]
    model = MultiTaskFeatureLearning(alpha=5.0, tol=1e-12).fit([X] * 4, Y)
    # sklearn: (1/2n) ||Y - X W'||_F^2 + a ||W||_21, i.e. ours divided by 2n.
    reference = MultiTaskLasso(alpha=5.0 / (2 * 20), tol=1e-12, max_iter=100_000).fit(X, np.stack(Y, axis=1))
    np.testing.assert_allclose(model.coef_, reference.coef_, atol=1e-6)
    np.testing.assert_allclose(model.intercept_, reference.intercept_, atol=1e-6)


def test_l21_matches_cvxpy_with_task_specific_inputs():
    planted = shared_support_tasks(3, 10, 5, support_size=2, seed=1)
    model = MultiTaskFeatureLearning(alpha=4.0).fit(planted.X, planted.y)
    value, W = _cvxpy_value(planted.X, planted.y, lambda W: 4.0 * cp.sum(cp.norm(W, 2, axis=0)))
    assert model.objective(planted.X, planted.y) == pytest.approx(value, rel=1e-6)
    np.testing.assert_allclose(model.coef_, W, atol=1e-4)
    assert model.converged_ and 0 < model.n_iter_ < model.max_iter


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_l21_recovers_a_planted_shared_support(seed):
    planted = shared_support_tasks(8, 30, 20, support_size=4, noise=0.5, seed=seed)
    model = MultiTaskFeatureLearning(alpha=40.0).fit(planted.X, planted.y)
    np.testing.assert_array_equal(model.selected_features_, planted.truth["support"])
    dropped = np.setdiff1d(np.arange(20), planted.truth["support"])
    assert np.all(model.coef_[:, dropped] == 0.0)


def test_l21_alpha_zero_is_least_squares_and_huge_alpha_is_zero():
    planted = shared_support_tasks(3, 12, 4, support_size=2, seed=2)
    least_squares = [np.linalg.lstsq(X - X.mean(0), y - y.mean(), rcond=None)[0] for X, y in zip(planted.X, planted.y)]
    model = MultiTaskFeatureLearning(alpha=0.0, tol=1e-12, max_iter=50_000).fit(planted.X, planted.y)
    np.testing.assert_allclose(model.coef_, least_squares, atol=1e-6)
    assert np.all(MultiTaskFeatureLearning(alpha=1e6).fit(planted.X, planted.y).coef_ == 0.0)


# ---------------------------------------------------------------- trace norm
def test_trace_norm_matches_cvxpy():
    planted = low_rank_tasks(4, 10, 5, rank=2, seed=0)
    model = TraceNormMTL(alpha=6.0).fit(planted.X, planted.y)
    value, W = _cvxpy_value(planted.X, planted.y, lambda W: 6.0 * cp.normNuc(W))
    assert model.objective(planted.X, planted.y) == pytest.approx(value, rel=1e-6)
    np.testing.assert_allclose(model.coef_, W, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trace_norm_recovers_a_planted_rank(seed):
    planted = low_rank_tasks(10, 30, 15, rank=2, noise=0.5, seed=seed)
    model = TraceNormMTL(alpha=60.0).fit(planted.X, planted.y)
    assert model.rank_ == 2
    assert np.linalg.matrix_rank(model.coef_, tol=1e-8) == 2


# ---------------------------------------------------------------- shared representation
def test_shared_representation_reaches_the_trace_norm_optimum():
    planted = low_rank_tasks(5, 15, 6, rank=2, seed=0)
    trace = TraceNormMTL(alpha=10.0, tol=1e-10).fit(planted.X, planted.y)
    factored = SharedRepresentationMTL(n_components=3, alpha=5.0).fit(planted.X, planted.y)
    assert factored.objective(planted.X, planted.y) == pytest.approx(trace.objective(planted.X, planted.y), rel=1e-7)
    np.testing.assert_allclose(factored.coef_, trace.coef_, atol=1e-4)
    # At a stationary point the factors are balanced: alpha (||A||^2 + ||C||^2) = 2 alpha ||W||_*.
    factor_penalty = 5.0 * (np.sum(factored.loadings_**2) + np.sum(factored.components_**2))
    assert factor_penalty == pytest.approx(factored.penalty(factored.coef_), rel=1e-6)
    np.testing.assert_allclose(factored.loadings_ @ factored.components_, factored.coef_)


def test_shared_representation_recovers_a_planted_subspace():
    planted = low_rank_tasks(10, 30, 15, rank=2, noise=0.5, seed=0)
    model = SharedRepresentationMTL(n_components=2, alpha=1.0).fit(planted.X, planted.y)
    true_basis = np.linalg.svd(planted.weights)[2][:2]
    learned_basis = np.linalg.qr(model.components_.T)[0]
    cosines = np.linalg.svd(true_basis @ learned_basis, compute_uv=False)  # cosines of principal angles
    assert cosines.min() > 0.99


def test_shared_representation_rejects_too_many_components():
    planted = low_rank_tasks(3, 10, 5, rank=1, seed=0)
    with pytest.raises(ValueError, match="n_components"):
        SharedRepresentationMTL(n_components=4).fit(planted.X, planted.y)


# ---------------------------------------------------------------- MTRL
@pytest.mark.parametrize("solver", ["proximal", "alternating"])
def test_mtrl_matches_cvxpy_on_its_eliminated_form(solver):
    planted = correlated_tasks(4, 12, 5, seed=0)
    model = MultiTaskRelationshipLearning(lambda_1=0.1, lambda_2=0.1, solver=solver).fit(planted.X, planted.y)
    value, W = _cvxpy_value(planted.X, planted.y, lambda W: 0.1 * cp.sum_squares(W) + 0.1 * cp.square(cp.normNuc(W)))
    assert model.objective(planted.X, planted.y) == pytest.approx(value, rel=1e-5)
    np.testing.assert_allclose(model.coef_, W, atol=1e-3)
    omega = model.task_covariance_
    assert np.trace(omega) == pytest.approx(1.0)
    assert np.linalg.eigvalsh(omega).min() > 0


@pytest.mark.parametrize("seed", [0, 1, 2, 4])
def test_mtrl_recovers_the_signs_of_planted_task_correlations(seed):
    truth = signed_group_correlation(np.array([1, 1, 1, -1, -1, -1]), 0.8)
    planted = correlated_tasks(6, 20, 10, correlation=truth, seed=seed)
    model = MultiTaskRelationshipLearning(lambda_1=0.1, lambda_2=0.5).fit(planted.X, planted.y)
    off_diagonal = ~np.eye(6, dtype=bool)
    np.testing.assert_array_equal(np.sign(model.task_correlation_[off_diagonal]), np.sign(truth[off_diagonal]))
    np.testing.assert_allclose(np.diag(model.task_correlation_), 1.0)


def test_covariance_to_correlation_by_hand():
    np.testing.assert_allclose(covariance_to_correlation(np.array([[4.0, -2.0], [-2.0, 9.0]])), [[1.0, -1 / 3], [-1 / 3, 1.0]])
    np.testing.assert_allclose(covariance_to_correlation(np.array([[1.0, 0.0], [0.0, 0.0]])), np.eye(2))


# ---------------------------------------------------------------- solver reports
@pytest.mark.parametrize(
    "model",
    [
        MultiTaskFeatureLearning(alpha=1.0, max_iter=2),
        TraceNormMTL(alpha=1.0, max_iter=2),
        SharedRepresentationMTL(n_components=2, alpha=1.0, max_iter=1),
        MultiTaskRelationshipLearning(max_iter=1),
        MultiTaskRelationshipLearning(solver="alternating", max_iter=1),
    ],
)
def test_unconverged_solvers_warn_and_report_iterations(model):
    planted = low_rank_tasks(3, 10, 5, rank=2, seed=0)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        model.fit(planted.X, planted.y)
    assert model.n_iter_ == model.max_iter and not model.converged_


def test_converged_solvers_do_not_warn():
    planted = low_rank_tasks(3, 10, 5, rank=2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for model in [MultiTaskFeatureLearning(), TraceNormMTL(), SharedRepresentationMTL(), MultiTaskRelationshipLearning()]:
            assert model.fit(planted.X, planted.y).converged_


@pytest.mark.parametrize(
    "model, match",
    [
        (MultiTaskFeatureLearning(alpha=-1.0), "alpha"),
        (TraceNormMTL(tol=0.0), "tol"),
        (SharedRepresentationMTL(max_iter=0), "max_iter"),
        (MultiTaskRelationshipLearning(lambda_2=0.0), "lambda_2"),
        (MultiTaskRelationshipLearning(solver="newton"), "solver"),
        (MultiTaskRelationshipLearning(solver="alternating", eps=0.0), "eps"),
    ],
)
def test_bad_options_raise(model, match):
    planted = low_rank_tasks(3, 10, 5, rank=2, seed=0)
    with pytest.raises(ValueError, match=match):
        model.fit(planted.X, planted.y)


def test_iterative_fits_reject_bad_data_and_are_deterministic():
    planted = low_rank_tasks(3, 10, 5, rank=2, seed=0)
    with pytest.raises(ValueError, match="same number of features"):
        TraceNormMTL().fit([planted.X[0], planted.X[1][:, :3], planted.X[2]], planted.y)
    first = MultiTaskRelationshipLearning().fit(planted.X, planted.y).coef_
    assert np.array_equal(first, MultiTaskRelationshipLearning().fit(planted.X, planted.y).coef_)
