"""Tests of mtl_course.chapters.ch08_toy (chapter 8's two-objective toy runs).

The two-task closed forms it uses are tested in tests/core/test_aggregation_two_task.py.
"""

import numpy as np
import pytest
import torch

from mtl_course.chapters import ch08_toy as tt
from mtl_course.core import aggregation as core
from mtl_course.data import toy_two_objective
from mtl_course.data.toy import LOWER


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
        W = core.two_task_weights("mgda", J @ J.transpose(0, 2, 1))
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
