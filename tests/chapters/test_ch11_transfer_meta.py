"""Tests of the sine task family and of chapter 11's comparison (mtl_course.data.families, .transfer_meta)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from mtl_course.chapters.ch11_transfer_meta import (
    ADAPTATIONS,
    APPROACHES,
    LinearHeadLearner,
    compare_few_shot,
    few_shot_errors,
    learners,
    mean_linear,
    prepare_networks,
    train_learners,
)
from mtl_course.data.families import SineFamily, SineTask
from mtl_course.torch.models import mlp
from mtl_course.torch.runtime import seed_everything

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def test_sine_task_by_hand():
    task = SineTask(amplitude=2.0, phase=np.pi / 2)
    np.testing.assert_allclose(task(np.array([0.0, np.pi / 2, np.pi])), [-2.0, 0.0, 2.0], atol=1e-6)
    assert task(np.zeros((3, 1))).dtype == np.float32


def test_tasks_and_inputs_lie_in_the_family_ranges_and_are_reproducible():
    family = SineFamily()
    tasks = family.sample_tasks(500, 0)
    amplitudes = np.array([t.amplitude for t in tasks])
    phases = np.array([t.phase for t in tasks])
    assert amplitudes.min() >= 0.1 and amplitudes.max() <= 5.0 and phases.min() >= 0 and phases.max() <= np.pi
    assert abs(amplitudes.mean() - 2.55) < 0.2 and abs(phases.mean() - np.pi / 2) < 0.15
    assert tasks == family.sample_tasks(500, np.random.default_rng(0))
    x, y = family.sample(tasks[0], 200, 1)
    assert x.shape == y.shape == (200, 1) and x.dtype == y.dtype == np.float32
    assert x.min() >= -5 and x.max() <= 5
    np.testing.assert_array_equal(y, tasks[0](x))  # no noise by default
    grid = family.grid(11)
    np.testing.assert_allclose(grid[:, 0], np.arange(-5, 6))


def test_noise_has_the_requested_scale():
    family = SineFamily(noise=0.5)
    task = SineTask(1.0, 0.0)
    x, y = family.sample(task, 4000, 0)
    assert np.std(y - task(x)) == pytest.approx(0.5, rel=0.05)


def test_multitask_split_shares_inputs_and_names_the_tasks():
    family = SineFamily()
    tasks = family.sample_tasks(12, 0)
    split = family.multitask_split(tasks, 30, 1)
    assert split.task_names[0] == "task_00" and split.task_names[-1] == "task_11" and len(split) == 30
    for name, task in zip(split.task_names, tasks):
        np.testing.assert_array_equal(split.y[name], task(split.x))
    with pytest.raises(ValueError, match="at least one task"):
        family.multitask_split([], 5)


def test_bad_family_arguments_are_refused():
    with pytest.raises(ValueError, match="amplitude"):
        SineFamily(amplitude=(5.0, 0.1))
    with pytest.raises(ValueError, match="noise"):
        SineFamily(noise=-1.0)
    with pytest.raises(ValueError, match="n_tasks"):
        SineFamily().sample_tasks(0)
    with pytest.raises(TypeError, match="rng"):
        SineFamily().sample_x(3, rng="seed")


def test_linear_head_is_sklearn_ridge_with_an_unpenalised_intercept():
    seed_everything(0)
    trunk = mlp([1, 6], output_activation=True)
    learner = LinearHeadLearner(trunk, ridge=0.3)
    rng = np.random.default_rng(0)
    x = rng.uniform(-5, 5, size=(9, 1)).astype(np.float32)
    y = rng.normal(size=(9, 1))
    x_query = np.linspace(-5, 5, 7, dtype=np.float32)[:, None]
    with torch.no_grad():
        h, h_query = trunk(torch.as_tensor(x)).numpy(), trunk(torch.as_tensor(x_query)).numpy()
    reference = Ridge(alpha=0.3).fit(h.astype(np.float64), y).predict(h_query.astype(np.float64))
    np.testing.assert_allclose(learner.predict(x, y, x_query)[:, 0], reference.ravel(), rtol=1e-4, atol=1e-5)


SMALL = dict(hidden=16, epochs=40, meta_steps=40, adapt_steps=8)


def test_comparison_rows_are_complete_finite_and_reproducible():
    kwargs = dict(seeds=(0,), shots=(2, 5), n_train_tasks=4, n_per_task=12, n_test_tasks=3, **SMALL)
    rows = compare_few_shot(**kwargs)
    assert [(r["approach"], r["adaptation"], r["shots"]) for r in rows] == [
        (a, m, k) for a in APPROACHES for m in ADAPTATIONS for k in (2, 5)]
    assert all(np.isfinite(r["mse"]) and r["mse"] >= 0 for r in rows)
    assert rows == compare_few_shot(**kwargs)


def test_few_shot_errors_give_every_learner_the_same_tasks():
    family = SineFamily()
    train = family.multitask_split(family.sample_tasks(3, 0), 10, 0)
    learners = train_learners(train, seed=0, **SMALL, inner_shots=5)
    twice = few_shot_errors({"a": learners["random", "fine-tune"], "b": learners["random", "fine-tune"]},
                            family, (3,), 2, seed=5)
    assert twice["a"] == twice["b"]
    with pytest.raises(ValueError, match="inner_shots"):
        train_learners(train, inner_shots=11)


def test_every_network_gets_both_adaptations_on_the_same_float64_representation():
    family = SineFamily()
    train = family.multitask_split(family.sample_tasks(3, 0), 10, 0)
    nets = prepare_networks(train, seed=0, hidden=8, epochs=5, meta_steps=3, inner_shots=5)
    assert list(nets) == list(APPROACHES)
    built = learners(nets, adapt_steps=0, ridge=0.5)
    assert set(built) == {(a, m) for a in APPROACHES for m in ADAPTATIONS}
    x = np.linspace(-4, 4, 6, dtype=np.float32)[:, None]
    for a, net in nets.items():
        assert all(p.dtype == torch.float64 for p in net.parameters())
        head, tune = built[a, "ridge head"], built[a, "fine-tune"]
        assert head.trunk is not None and list(head.trunk) == list(net)[:-1]  # the network without its output layer
        with torch.no_grad():  # zero fine-tuning steps: the network's own prediction
            np.testing.assert_array_equal(tune.predict(x, x, x), net(torch.as_tensor(x, dtype=torch.float64)).numpy())
    assert nets["multi-task"][-1].weight.shape == (1, 8)


def test_mean_linear_by_hand():
    a, b = torch.nn.Linear(2, 1).double(), torch.nn.Linear(2, 1).double()
    with torch.no_grad():
        a.weight.copy_(torch.tensor([[1.0, 2.0]])), a.bias.fill_(3.0)
        b.weight.copy_(torch.tensor([[3.0, -2.0]])), b.bias.fill_(-1.0)
    mean = mean_linear([a, b])
    assert mean.weight.tolist() == [[2.0, 0.0]] and mean.bias.tolist() == [1.0]
    assert mean.weight.dtype == torch.float64 and mean is not a and mean is not b
    with pytest.raises(ValueError, match="empty"):
        mean_linear([])


def test_prepare_networks_refuses_too_many_inner_shots():
    family = SineFamily()
    train = family.multitask_split(family.sample_tasks(2, 0), 4, 0)
    with pytest.raises(ValueError, match="inner_shots"):
        prepare_networks(train, inner_shots=5)
