"""Tests of mtl_course.chapters.ch08_toy (chapter 8's two-objective toy runs)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_course.core import aggregation as core
from mtl_course.data import toy_two_objective
from mtl_course.data.toy import LOWER
from mtl_course.chapters import ch08_toy as tt

SETTINGS = settings(max_examples=30, deadline=None)


def _package(method, G, c=0.5):
    if method == "cagrad":
        return core.cagrad_weights(G, c=c)
    if method == "pcgrad":
        return core.pcgrad_weights(G, generator=0)
    return getattr(core, f"{method}_weights")(G)


def _direction_gap(W, R, G):
    """|| (W - R) @ J || / sqrt(mean ||g||^2), computed from the Gram matrices."""
    D = W - R
    return np.sqrt(np.einsum("si,sij,sj->s", D, G, D) / (np.einsum("sii->s", G) / 2))


@st.composite
def jacobians(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((8, 2, 3)) * rng.uniform(0.01, 10.0, (8, 2, 1))
    return J


@pytest.mark.parametrize("method", tt.METHODS)
@SETTINGS
@given(J=jacobians())
def test_two_task_weights_match_the_package(method, J):
    G = J @ J.transpose(0, 2, 1)
    W = tt.two_task_weights(method, G)
    R = np.stack([_package(method, g) for g in G])
    tol = 1e-6 if method == "cagrad" else 1e-9  # SLSQP in the package is accurate to ~1e-8
    assert np.all(_direction_gap(W, R, G) < tol)


@pytest.mark.parametrize("c", [0.1, 0.5, 0.9])
def test_cagrad_closed_form_matches_package_for_several_radii(c):
    rng = np.random.default_rng(1)
    J = rng.standard_normal((40, 2, 4))
    G = J @ J.transpose(0, 2, 1)
    W = tt.two_task_weights("cagrad", G, c)
    R = np.stack([core.cagrad_weights(g, c=c) for g in G])
    assert np.all(_direction_gap(W, R, G) < 1e-6)


def test_cagrad_closed_form_is_optimal_for_nearly_opposite_gradients():
    # Certificate of optimality: d = g0 + r g_w / |g_w| is in the ball, and its worst
    # improvement min_t g_t . d equals the dual objective g_w . g0 + r |g_w| at the same
    # w (weak duality makes every dual value an upper bound, so both are optimal).
    # Also for c > 1, where the package's solvers return a worse direction.
    rng = np.random.default_rng(2)
    g1 = rng.standard_normal((30, 5))
    g2 = -g1 * rng.uniform(0.2, 3.0, (30, 1)) + 1e-3 * rng.standard_normal((30, 5))
    J = np.stack([g1, g2], axis=1)
    G = J @ J.transpose(0, 2, 1)
    for c in (0.5, 2.0):
        W = tt.two_task_weights("cagrad", G, c)
        d = np.einsum("st,stp->sp", W, J)
        g0 = J.mean(axis=1)
        radius = c * np.linalg.norm(g0, axis=1)
        assert np.all(np.linalg.norm(d - g0, axis=1) <= radius * (1 + 1e-6))
        w = (W - 0.5) / (W - 0.5).sum(axis=1, keepdims=True)  # the dual variable on the simplex
        assert np.all(w >= -1e-12)
        gw = np.einsum("st,stp->sp", w, J)
        dual = np.einsum("sp,sp->s", gw, g0) + radius * np.linalg.norm(gw, axis=1)
        worst = np.min(np.einsum("stp,sp->st", J, d), axis=1)
        # zero gap up to rounding, in units of the squared gradient norms (as the package's 1e-7)
        assert np.all(np.abs(worst - dual) <= 1e-7 * np.einsum("sii->s", G))
        # and the package, for c < 1, finds the same direction
        if c < 1:
            R = np.stack([core.cagrad_weights(g, c=c) for g in G])
            assert np.all(_direction_gap(W, R, G) < 1e-6)


def test_hand_computed_two_task_weights():
    # g1 = (1, 0), g2 = (-1, 1): cos = -1/sqrt(2)
    G = np.array([[[1.0, -1.0], [-1.0, 2.0]]])
    np.testing.assert_allclose(tt.two_task_weights("mean", G), [[0.5, 0.5]])
    # MGDA: gamma = (2 - (-1)) / (1 + 2 + 2) = 3/5
    np.testing.assert_allclose(tt.two_task_weights("mgda", G), [[0.6, 0.4]])
    # PCGrad: g1 loses -1/2 g2, g2 loses -1 g1 -> weights (1 + 1, 1 + 1/2)
    np.testing.assert_allclose(tt.two_task_weights("pcgrad", G), [[2.0, 1.5]])
    np.testing.assert_allclose(tt.two_task_weights("upgrad", G), [[1.0, 0.75]])
    # IMTL-G: (n2, n1) / (n1 + n2) with n1 = 1, n2 = sqrt(2)
    s = np.sqrt(2.0)
    np.testing.assert_allclose(tt.two_task_weights("imtl_g", G), [[s / (1 + s), 1 / (1 + s)]])
    # Nash-MTL: alpha_t = 1 / (n_t sqrt(1 + cos)), and G alpha = 1 / alpha
    alpha = tt.two_task_weights("nash_mtl", G)[0]
    np.testing.assert_allclose(G[0] @ alpha, 1.0 / alpha)
    np.testing.assert_allclose(alpha, [1 / np.sqrt(1 - 1 / s), 1 / (s * np.sqrt(1 - 1 / s))])


def test_nash_mtl_direction_has_norm_sqrt2_even_for_nearly_opposite_gradients():
    # 1 + cos = 2.9e-10: the package's Newton solver stops after 100 iterations here.
    G = np.array([[[7.325083290841097, -0.24979356223145685],
                   [-0.24979356223145685, 0.008518240856864713]]])
    alpha = tt.two_task_weights("nash_mtl", G)[0]
    assert np.isclose(alpha @ G[0] @ alpha, 2.0)
    np.testing.assert_allclose(G[0] @ alpha * alpha, [1.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("method", tt.METHODS)
def test_degenerate_rows_fall_back_to_the_package(method):
    G = np.array([
        [[0.0, 0.0], [0.0, 0.0]],  # both zero
        [[1.0, 0.0], [0.0, 0.0]],  # one zero gradient
        [[1.0, 2.0], [2.0, 4.0]],  # parallel, same direction
        [[1.0, -1.0], [-1.0, 1.0]],  # exactly opposite
    ])
    W = tt.two_task_weights(method, G)
    R = np.stack([_package(method, g) for g in G])
    assert np.all(np.isfinite(W))
    assert np.all(_direction_gap(W[1:], R[1:], G[1:]) < 1e-9)


def test_two_task_weights_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown method"):
        tt.two_task_weights("sgd", np.eye(2)[None])
    with pytest.raises(ValueError, match="shape"):
        tt.two_task_weights("mgda", np.eye(3)[None])
    with pytest.raises(ValueError, match="NaN"):
        tt.two_task_weights("mgda", np.full((1, 2, 2), np.nan))
    with pytest.raises(ValueError, match="c must be"):
        tt.two_task_weights("cagrad", np.eye(2)[None], c=-1.0)


def _papers_toy(x, scale):
    """The toy written with torch operations, as in the papers' public code."""
    x1, x2 = x[0], x[1]
    g1 = torch.clamp((-0.5 * x1 - 3.5 + torch.tanh(x2)).abs(), LOWER).log() + 6
    g2 = torch.clamp((-0.5 * x1 + 3.5 - torch.tanh(x2)).abs(), LOWER).log() + 6
    q1 = ((x1 - 7) ** 2 + 0.1 * (x2 + 8) ** 2) / 10 - 20
    q2 = ((x1 + 7) ** 2 + 0.1 * (x2 + 8) ** 2) / 10 - 20
    c1 = torch.clamp(torch.tanh(0.5 * x2), 0)
    c2 = torch.clamp(torch.tanh(-0.5 * x2), 0)
    return torch.stack([scale * (c1 * g1 + c2 * q1), c1 * g2 + c2 * q2])


@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_toy_jacobian_matches_torch_autograd_including_the_gate_boundary(scale):
    toy = toy_two_objective(scale)
    points = np.array([[0.0, 0.0], [3.0, 0.0], [-8.5, 7.5], [9.0, -1.0], [1.0, -2.0]])
    J = tt.toy_jacobian(toy, points)
    for point, J_point in zip(points, J):
        x = torch.tensor(point, dtype=torch.float64)
        expected = torch.autograd.functional.jacobian(lambda y: _papers_toy(y, scale), x)
        np.testing.assert_allclose(J_point, expected.numpy(), rtol=1e-12, atol=1e-12)


def test_adam_matches_torch_adam():
    toy = toy_two_objective(1.0)
    starts = toy.cagrad_starts
    ours = tt.adam_trajectories(toy, starts, "mgda", steps=50, lr=1e-2)
    x = torch.tensor(starts, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([x], lr=1e-2)
    expected = [x.detach().numpy().copy()]
    for _ in range(50):
        J = tt.toy_jacobian(toy, x.detach().numpy())
        W = tt.two_task_weights("mgda", J @ J.transpose(0, 2, 1))
        x.grad = torch.from_numpy(np.einsum("st,stp->sp", W, J))
        optimizer.step()
        expected.append(x.detach().numpy().copy())
    np.testing.assert_allclose(ours, np.stack(expected, axis=1), rtol=1e-12, atol=1e-12)


def test_run_methods_equals_one_method_at_a_time_and_is_deterministic():
    toy = toy_two_objective(0.1)
    run = tt.run_methods(toy, toy.nashmtl_starts, methods=("mean", "nash_mtl"), steps=40,
                         lr=1e-2, record_every=7)
    single = tt.adam_trajectories(toy, toy.nashmtl_starts, "nash_mtl", 40, 1e-2, record_every=7)
    assert run.trajectories["nash_mtl"].shape == (5, 40 // 7 + 2, 2)
    np.testing.assert_array_equal(run.trajectories["nash_mtl"], single)
    again = tt.run_methods(toy, toy.nashmtl_starts, methods=("mean", "nash_mtl"), steps=40,
                           lr=1e-2, record_every=7)
    np.testing.assert_array_equal(run.trajectories["mean"], again.trajectories["mean"])
    # the start (0, 0) moves: the gate derivative at x2 = 0 is not dropped
    assert not np.allclose(run.final("mean")[1], [0.0, 0.0])


def test_nash_mtl_reaches_the_pareto_set_from_every_start():
    # Nash-MTL's direction has norm sqrt(2) until the front, so a short run suffices.
    toy = toy_two_objective(0.1)
    run = tt.run_methods(toy, toy.nashmtl_starts, methods=("nash_mtl",), steps=2500, lr=1e-2)
    assert np.all(tt.reaches_pareto_set(toy, run.final("nash_mtl")))
    table = tt.outcome_table(run)
    assert [row["reached"] for row in table] == [True] * 5
    # ... at spread-out points of the front
    assert np.ptp(run.final("nash_mtl")[:, 0]) > 5.0


def test_distance_to_pareto_set():
    toy = toy_two_objective()
    front = toy.pareto_set(7)
    # points of the set lie on the 141-point polyline up to its chord error
    np.testing.assert_allclose(tt.distance_to_pareto_set(toy, front), 0.0, atol=1e-5)
    # straight above the middle of the set, and beyond its end at x1 = 7
    middle = front[3] + np.array([0.0, 2.0])
    assert np.isclose(tt.distance_to_pareto_set(toy, middle), 2.0, atol=1e-3)
    beyond = front[-1] + np.array([3.0, 0.0])
    assert np.isclose(tt.distance_to_pareto_set(toy, beyond), 3.0)
    assert tt.reaches_pareto_set(toy, front[:1] + 0.05).tolist() == [True]
    assert tt.reaches_pareto_set(toy, np.array([[0.0, 0.0]])).tolist() == [False]
    with pytest.raises(ValueError, match="tol"):
        tt.reaches_pareto_set(toy, front, tol=0.0)


def test_run_arguments_are_checked():
    toy = toy_two_objective()
    with pytest.raises(ValueError, match="starts"):
        tt.run_methods(toy, np.zeros(2))
    with pytest.raises(ValueError, match="methods is empty"):
        tt.run_methods(toy, toy.cagrad_starts, methods=())
    with pytest.raises(ValueError, match="unknown method"):
        tt.run_methods(toy, toy.cagrad_starts, methods=("adam",))
    with pytest.raises(ValueError, match="steps"):
        tt.adam_trajectories(toy, toy.cagrad_starts, "mean", steps=0, lr=1e-3)
    with pytest.raises(ValueError, match="lr"):
        tt.adam_trajectories(toy, toy.cagrad_starts, "mean", steps=1, lr=float("nan"))


def test_plot_toy_run_draws_one_panel_per_method():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    toy = toy_two_objective()
    run = tt.run_methods(toy, toy.cagrad_starts, methods=("mean", "mgda", "upgrad"), steps=5)
    fig = tt.plot_toy_run(run, ncols=2, grid_points=20, title="t")
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in panels] == ["mean", "mgda", "upgrad"]
    # the Pareto set plus, per start, the path and two markers
    assert len(panels[0].lines) == 1 + 3 * 3
    plt.close(fig)
