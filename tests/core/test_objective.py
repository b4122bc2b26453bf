"""Tests of mtl_course.objective: the scalarized objective and Pareto geometry of chapter 2."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import approx_fprime, minimize

from mtl_course.objective import (
    FonsecaFleming,
    LeastSquaresTasks,
    dominates,
    linear_scalarization_reach,
    non_dominated_mask,
    normalize_by_initial,
    pareto_front,
    scalarized_gradient_descent,
    weight_grid,
    weighted_sum,
)

SETTINGS = settings(max_examples=40, deadline=None)


def two_regressions(seed: int = 0, n: int = 40) -> LeastSquaresTasks:
    rng = np.random.default_rng(seed)
    X = [rng.normal(size=(n, 3)) for _ in range(2)]
    y = [X[0] @ np.array([1.0, 0.0, 0.5]) + 0.1 * rng.normal(size=n),
         X[1] @ np.array([-1.0, 1.0, 0.0]) + 0.1 * rng.normal(size=n)]
    return LeastSquaresTasks(X, y)


# ---------------------------------------------------------------- weighted_sum


def test_weighted_sum_hand_computed():
    assert weighted_sum([1.0, 2.0, 4.0], [0.5, 0.25, 0.25]) == pytest.approx(0.5 + 0.5 + 1.0)
    assert weighted_sum([3.0, 1.0], [1.0, 2.0], regularizer=0.5) == pytest.approx(5.5)


@pytest.mark.parametrize(
    "losses, weights, message",
    [
        ([1.0, 2.0], [1.0], "2 tasks"),
        ([], [], "empty"),
        ([1.0, np.nan], [1.0, 1.0], "NaN or inf"),
        ([1.0, np.inf], [1.0, 1.0], "NaN or inf"),
        ([1.0, 2.0], [-1.0, 2.0], "non-negative"),
        ([1.0, 2.0], [0.0, 0.0], "all weights are zero"),
        ([[1.0, 2.0]], [1.0, 1.0], "1-D"),
    ],
)
def test_weighted_sum_rejects_bad_input(losses, weights, message):
    with pytest.raises(ValueError, match=message):
        weighted_sum(losses, weights)


def test_weighted_sum_rejects_nonfinite_regularizer():
    with pytest.raises(ValueError, match="regularizer"):
        weighted_sum([1.0], [1.0], regularizer=float("nan"))


# ---------------------------------------------------------------- dominance


def test_dominates_hand_cases():
    assert dominates([1, 2], [2, 2])
    assert not dominates([2, 2], [1, 2])
    assert not dominates([1, 2], [1, 2])  # never itself
    assert not dominates([1, 3], [2, 2])  # a trade-off: neither dominates
    assert not dominates([2, 2], [1, 3])
    with pytest.raises(ValueError, match="tasks"):
        dominates([1, 2], [1, 2, 3])


def test_non_dominated_mask_hand_case():
    points = [[1, 4], [2, 2], [3, 3], [4, 1], [2, 2], [5, 5]]
    # [3, 3] is dominated by [2, 2], [5, 5] by everything; both copies of [2, 2] stay.
    assert non_dominated_mask(points).tolist() == [True, True, False, True, True, False]


def test_pareto_front_sorted_by_first_loss():
    front = pareto_front([[4, 1], [3, 3], [1, 4], [2, 2]])
    np.testing.assert_array_equal(front, [[1, 4], [2, 2], [4, 1]])


@SETTINGS
@given(arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 3)),
              elements=st.integers(0, 4).map(float)))
def test_non_dominated_mask_matches_pairwise_definition(points):
    mask = non_dominated_mask(points)
    for i, p in enumerate(points):
        dominated = any(dominates(q, p) for j, q in enumerate(points) if j != i)
        assert mask[i] == (not dominated)
    # every dominated point is dominated by some kept point (dominance is transitive)
    kept = points[mask]
    assert mask.any()
    for p in points[~mask]:
        assert any(dominates(q, p) for q in kept)


@pytest.mark.parametrize("points", [np.zeros((0, 2)), np.zeros(3), [[1.0, np.nan]]])
def test_non_dominated_mask_rejects_bad_points(points):
    with pytest.raises(ValueError):
        non_dominated_mask(points)


# ---------------------------------------------------------------- scalarization sweep


def test_two_task_weights():
    np.testing.assert_allclose(weight_grid(3), [[0, 1], [0.5, 0.5], [1, 0]])
    with pytest.raises(ValueError):
        weight_grid(1)
    with pytest.raises(TypeError):
        weight_grid(2.5)


def test_linear_scalarization_reach_hand_case():
    # a non-convex set: the middle point (0.6, 0.6) lies above the segment joining the ends
    points = np.array([[0.0, 1.0], [0.6, 0.6], [1.0, 0.0]])
    reached = set(linear_scalarization_reach(points, weight_grid(101)).tolist())
    assert reached == {0, 2}
    # a convex set: the middle point (0.4, 0.4) lies below it and is reached at alpha = 0.5
    points[1] = [0.4, 0.4]
    assert linear_scalarization_reach(points, [[0.5, 0.5]]).tolist() == [1]


def test_linear_scalarization_reach_rejects_bad_weights():
    with pytest.raises(ValueError, match="shape"):
        linear_scalarization_reach([[0.0, 1.0]], [[1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="non-negative"):
        linear_scalarization_reach([[0.0, 1.0]], [[-1.0, 2.0]])


# ---------------------------------------------------------------- least squares tasks


def test_least_squares_losses_and_quadratic_form_agree():
    problem = two_regressions()
    theta = np.array([0.3, -0.2, 0.7])
    quadratic = 0.5 * np.einsum("i,tij,j->t", theta, problem.A, theta) - problem.b @ theta + problem.c
    np.testing.assert_allclose(problem.losses(theta), quadratic, rtol=1e-12)


def test_least_squares_jacobian_matches_finite_differences():
    problem = two_regressions()
    theta = np.array([0.3, -0.2, 0.7])
    for t in range(2):
        numeric = approx_fprime(theta, lambda v, t=t: problem.losses(v)[t], 1e-7)
        np.testing.assert_allclose(problem.jacobian(theta)[t], numeric, atol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_scalarized_minimizer_matches_weighted_least_squares(alpha):
    """Cross-check with numpy's least squares on rows scaled by sqrt(w_t / n_t)."""
    problem = two_regressions()
    w = np.array([alpha, 1 - alpha])
    scale = [np.sqrt(w_t / len(x)) for w_t, x in zip(w, problem.X)]
    X = np.vstack([s * x for s, x in zip(scale, problem.X)])
    y = np.concatenate([s * v for s, v in zip(scale, problem.y)])
    expected = np.linalg.lstsq(X, y, rcond=None)[0]
    np.testing.assert_allclose(problem.scalarized_minimizer(w), expected, atol=1e-10)


def test_gradient_descent_converges_to_closed_form():
    problem = two_regressions()
    theta = scalarized_gradient_descent(problem, [0.7, 0.3], np.zeros(3), lr=0.3, steps=500)
    np.testing.assert_allclose(theta, problem.scalarized_minimizer([0.7, 0.3]), atol=1e-8)


def test_least_squares_front_is_convex_decreasing_and_non_dominated():
    front = two_regressions().front(41)
    assert non_dominated_mask(front).all()
    # from the task-2 end to the task-1 end: L1 falls, L2 rises
    assert np.all(np.diff(front[:, 0]) < 0) and np.all(np.diff(front[:, 1]) > 0)
    # every front point is reached by some weight (convex front)
    reached = linear_scalarization_reach(front, weight_grid(2001))
    assert set(reached.tolist()) == set(range(41))


def test_least_squares_rejects_bad_data():
    with pytest.raises(ValueError, match="at least one task"):
        LeastSquaresTasks([], [])
    with pytest.raises(ValueError, match="2 input matrices but 1"):
        LeastSquaresTasks([np.ones((2, 1))] * 2, [np.ones(2)])
    with pytest.raises(ValueError, match="task 0"):
        LeastSquaresTasks([np.ones((3, 2))], [np.ones(2)])
    with pytest.raises(ValueError, match="NaN or inf"):
        LeastSquaresTasks([np.array([[np.nan]])], [np.ones(1)])
    with pytest.raises(ValueError, match="same number of input features"):
        LeastSquaresTasks([np.ones((2, 1)), np.ones((2, 2))], [np.ones(2), np.ones(2)])
    with pytest.raises(ValueError, match="theta must have shape"):
        two_regressions().losses(np.zeros(2))


def test_singular_weighted_hessian_is_reported():
    X = [np.array([[1.0, 0.0]] * 3), np.array([[0.0, 1.0]] * 3)]
    problem = LeastSquaresTasks(X, [np.ones(3), np.ones(3)])
    np.testing.assert_allclose(problem.scalarized_minimizer([0.5, 0.5]), [1.0, 1.0])
    with pytest.raises(ValueError, match="singular"):
        problem.scalarized_minimizer([1.0, 0.0])


# ---------------------------------------------------------------- Fonseca-Fleming


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_fonseca_fleming_jacobian_matches_finite_differences(dim):
    problem = FonsecaFleming(dim)
    theta = np.linspace(-0.4, 0.6, dim)
    for t in range(2):
        numeric = approx_fprime(theta, lambda v, t=t: problem.losses(v)[t], 1e-7)
        np.testing.assert_allclose(problem.jacobian(theta)[t], numeric, atol=1e-6)


def test_fonseca_fleming_front_matches_losses_on_pareto_set_and_is_concave():
    problem = FonsecaFleming(3)
    front = problem.front(101)
    np.testing.assert_allclose(np.stack([problem.losses(p) for p in problem.pareto_set(101)]), front)
    np.testing.assert_allclose(front[0], [1 - np.exp(-4.0), 0.0])
    np.testing.assert_allclose(front[50], [1 - np.exp(-1.0)] * 2)
    assert non_dominated_mask(front).all()
    # concave: the middle point lies above the chord between the two ends
    assert front[50].sum() > front[0].sum()


def test_fonseca_fleming_scalarization_reaches_only_the_ends():
    front = FonsecaFleming(2).front(201)
    reached = linear_scalarization_reach(front, weight_grid(1001))
    assert np.all((reached <= 10) | (reached >= 190))


def test_fonseca_fleming_minimizer_of_weighted_sum_found_by_scipy_is_near_an_end():
    problem = FonsecaFleming(2)
    for alpha in (0.3, 0.5, 0.7):
        objective = lambda v, alpha=alpha: np.array([alpha, 1 - alpha]) @ problem.losses(v)  # noqa: E731
        best = min((minimize(objective, x0) for x0 in ([0.5, 0.5], [-0.5, -0.5])), key=lambda r: r.fun)
        losses = problem.losses(best.x)
        assert min(losses) < 0.05 and max(losses) > 0.9


def test_gradient_descent_matches_scipy_local_minimum():
    problem = FonsecaFleming(2)
    theta0 = np.array([0.3, -0.1])
    w = np.array([0.6, 0.4])
    ours = scalarized_gradient_descent(problem, w, theta0, lr=0.5, steps=2000)
    ref = minimize(lambda v: w @ problem.losses(v), theta0, jac=lambda v: w @ problem.jacobian(v),
                   method="BFGS", options={"gtol": 1e-12})
    np.testing.assert_allclose(ours, ref.x, atol=1e-6)


def test_fonseca_fleming_rejects_bad_dim():
    with pytest.raises(ValueError, match="dim"):
        FonsecaFleming(0)


def test_gradient_descent_rejects_bad_arguments():
    problem = FonsecaFleming(2)
    with pytest.raises(ValueError, match="lr"):
        scalarized_gradient_descent(problem, [0.5, 0.5], [0.0, 0.0], lr=0.0, steps=1)
    with pytest.raises(ValueError, match="steps"):
        scalarized_gradient_descent(problem, [0.5, 0.5], [0.0, 0.0], lr=0.1, steps=-1)
    with pytest.raises(ValueError, match="2 tasks"):
        scalarized_gradient_descent(problem, [1.0], [0.0, 0.0], lr=0.1, steps=1)
    with pytest.raises(ValueError, match="diverged"):
        scalarized_gradient_descent(two_regressions(), [0.5, 0.5], np.zeros(3), lr=1e3, steps=2000)


# ---------------------------------------------------------------- loss scales


def test_normalize_by_initial_hand_case():
    np.testing.assert_allclose(normalize_by_initial([1.0, 30.0], [2.0, 60.0]), [0.5, 0.5])


@SETTINGS
@given(st.floats(1e-3, 1e3), st.floats(0.05, 0.95))
def test_normalized_minimizer_is_invariant_to_loss_scale(c, alpha):
    """Scaling task 2's loss by c moves the weighted minimizer; normalizing undoes it."""
    problem = two_regressions()
    theta0 = np.zeros(3)
    w = np.array([alpha, 1 - alpha])
    scales = np.array([1.0, c])
    initial = problem.losses(theta0) * scales
    # sum_t w_t (c_t L_t) / (c_t L_t(theta0)) is the weighted sum with weights w_t / L_t(theta0)
    normalized = problem.scalarized_minimizer(w / problem.losses(theta0))
    rescaled = problem.scalarized_minimizer(w * scales / initial)
    np.testing.assert_allclose(rescaled, normalized, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(normalize_by_initial(problem.losses(theta0) * scales, initial), [1.0, 1.0])


def test_loss_scale_moves_the_unnormalized_minimizer():
    problem = two_regressions()
    plain = problem.scalarized_minimizer([0.5, 0.5])
    scaled = problem.scalarized_minimizer([0.5, 0.5 * 100.0])
    task2 = problem.scalarized_minimizer([0.0, 1.0])
    assert np.linalg.norm(scaled - task2) < 0.1 * np.linalg.norm(plain - task2)


@pytest.mark.parametrize(
    "losses, initial, message",
    [([1.0], [1.0, 2.0], "1 losses but 2"), ([1.0], [0.0], "> 0"), ([np.nan], [1.0], "NaN")],
)
def test_normalize_by_initial_rejects_bad_input(losses, initial, message):
    with pytest.raises(ValueError, match=message):
        normalize_by_initial(losses, initial)
