"""Tests of the sine task family and of chapter 11's comparison (mtl_course.data.families, .transfer_meta)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from mtl_course.chapters.ch11_transfer_meta import (
    ADAPTATIONS,
    APPROACHES,
    FineTuneLearner,
    LinearHeadLearner,
    _mse,
    _mse_grad,
    adaptation_errors,
    compare_few_shot,
    few_shot_errors,
    fit_stacked,
    init_mlp,
    load_params,
    reptile_stacked,
    sgd_stacked,
    stack_params,
    stacked_forward,
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


def _nets(sizes, n, seed=0):
    torch.manual_seed(seed)
    return [mlp(sizes).double() for _ in range(n)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stacked_forward_and_hand_written_gradient_match_the_networks_and_autograd(dtype):
    nets = [net.to(dtype) for net in _nets([2, 7, 5, 3], 4)]
    params = stack_params(nets)
    x = torch.randn(4, 6, 2, dtype=dtype)
    y = torch.randn(4, 6, 3, dtype=dtype) * 100  # badly scaled targets
    out = stacked_forward(params, x)
    for m, net in enumerate(nets):
        torch.testing.assert_close(out[m], net(x[m]).detach())
    torch.testing.assert_close(stacked_forward(params, x, 2)[1], nets[1][:-1](x[1]).detach())
    leaves = [p.clone().requires_grad_(True) for p in params]
    reference = torch.autograd.grad(_mse(leaves, x, y).sum(), leaves)
    for g, r in zip(_mse_grad(params, x, y), reference):
        torch.testing.assert_close(g, r)
    twin = load_params(mlp([2, 7, 5, 3]).to(dtype), params, 2)
    torch.testing.assert_close(twin(x[0]), nets[2](x[0]))
    with pytest.raises(ValueError, match="differ in shape"):
        stack_params([nets[0], mlp([2, 7, 3]).to(dtype)])


def test_stacked_sgd_is_meta_adapt_for_each_model_with_its_own_rate():
    nets = _nets([1, 8, 8, 1], 3)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-5, 5, size=(3, 5, 1)), rng.normal(size=(3, 5, 1))
    rates = np.array([0.003, 0.01, 0.03])
    tuned = sgd_stacked(stack_params(nets), torch.as_tensor(x), torch.as_tensor(y), 7, rates)
    grid = np.linspace(-5, 5, 9)[:, None]
    for m, net in enumerate(nets):
        expected = FineTuneLearner(net, 7, float(rates[m])).predict(x[m], y[m], grid)
        got = stacked_forward([p[m:m + 1] for p in tuned], torch.as_tensor(grid)[None])[0].numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_stacked_reptile_is_reptile_step_for_each_model_and_keeps_the_best_checkpoint():
    from mtl_course.torch.meta import reptile_step

    nets = _nets([1, 6, 6, 1], 2)
    data = np.random.default_rng(1).normal(size=(2, 4, 1))

    def sample(m, rng):
        return data[m], np.sin(data[m]) * (1 + rng.integers(3))

    calls = []

    def monitor(params):  # improves twice, then never again
        calls.append(len(calls))
        return np.array([[3.0, 2.0, 1.0, 5.0, 5.0][len(calls) - 1]] * 2)

    run = reptile_stacked(stack_params(nets), sample, seeds=(4, 5), outer_lr=np.array([0.5, 1.0]), monitor=monitor,
                          meta_steps=50, inner_steps=3, inner_lr=0.05, eval_every=2, patience=2)
    assert run.at.tolist() == [2, 4, 6, 8, 10] and run.best_at.tolist() == [6, 6]
    assert run.stopped_at.tolist() == [10, 10]  # patience 2: the second evaluation without improvement
    np.testing.assert_array_equal(run.best, [1.0, 1.0])
    for m, (net, eps) in enumerate(zip(nets, (0.5, 1.0))):  # replay 6 steps with the package's reptile_step
        rng = np.random.default_rng((4, 5)[m])
        for _ in range(6):
            reptile_step(net, [sample(m, rng)], inner_steps=3, inner_lr=0.05, outer_lr=eps)
        for p, q in zip(stack_params([net]), run.params):
            torch.testing.assert_close(q[m:m + 1], p, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("outer", ["sgd", "adam"])
def test_a_stopped_model_keeps_its_checkpoint_while_the_others_train_on(outer):
    nets = _nets([1, 4, 1], 2)
    data = np.random.default_rng(1).normal(size=(2, 4, 1))

    def sample(m, rng):
        return data[m], np.sin(data[m]) * (1 + rng.integers(3))

    values = iter([[3.0, 3.0], [2.0, 2.0], [5.0, 1.0], [5.0, 0.5], [1.0, 0.4], [1.0, 0.3]])
    rates = np.array([0.5, 0.05]) if outer == "sgd" else np.array([0.01, 0.02])
    run = reptile_stacked(stack_params(nets), sample, (0, 1), rates, lambda params: np.array(next(values)),
                          meta_steps=12, inner_steps=2, eval_every=2, patience=2, outer=outer)
    assert run.stopped_at.tolist() == [8, 0]  # model 0: two evaluations without improvement at step 8
    assert run.best.tolist() == [2.0, 0.3] and run.best_at.tolist() == [4, 12]  # model 0's later 1.0 is not taken
    assert run.at.tolist() == [2, 4, 6, 8, 10, 12]
    # model 1 trained on after model 0 stopped exactly as it does alone
    falling = iter(range(9, 0, -1))  # always improves: the last step's weights are kept
    alone = reptile_stacked(stack_params(nets[1:]), lambda m, rng: sample(1, rng), (1,), rates[1:],
                            lambda params: np.array([next(falling)], dtype=float), meta_steps=12,
                            inner_steps=2, eval_every=2, patience=2, outer=outer)
    for p, q in zip(run.params, alone.params):
        torch.testing.assert_close(p[1:], q, rtol=1e-12, atol=1e-12)


def test_stacked_reptile_with_minibatches_and_an_adam_outer_step_is_torch_adam_on_theta_minus_phi():
    from mtl_course.torch.meta import adapt

    nets = _nets([1, 6, 6, 1], 2, seed=3)
    data = np.random.default_rng(2).uniform(-5, 5, size=(2, 6, 1))

    def sample(m, rng):  # six examples; a random order and a random task scale
        order = rng.permutation(6)
        return data[m][order], np.sin(data[m][order]) * (1 + rng.integers(3))

    def monitor(params):  # always improves: the last step's weights are kept
        monitor.calls += 1
        return np.full(2, 10.0 - monitor.calls)

    monitor.calls = 0
    rates = np.array([0.01, 0.03])
    run = reptile_stacked(stack_params(nets), sample, seeds=(4, 5), outer_lr=rates, monitor=monitor, meta_steps=6,
                          inner_steps=4, inner_lr=0.05, eval_every=3, patience=2, minibatch=2, outer="adam")
    assert run.best_at.tolist() == [6, 6] and run.stopped_at.tolist() == [0, 0]  # the cap ended it
    for m, net in enumerate(nets):  # replay: SGD on the minibatches 0:2, 2:4, 4:6, 0:2, then torch.optim.Adam
        rng, opt = np.random.default_rng((4, 5)[m]), torch.optim.Adam(net.parameters(), lr=float(rates[m]))
        for _ in range(6):
            x, y = sample(m, rng)
            phi = net
            for rows in (slice(0, 2), slice(2, 4), slice(4, 6), slice(0, 2)):
                phi = adapt(phi, x[rows], y[rows], 1, 0.05)
            for p, q in zip(net.parameters(), phi.parameters()):
                p.grad = (p - q).detach()
            opt.step()
        for p, q in zip(stack_params([net]), run.params):
            torch.testing.assert_close(q[m:m + 1], p, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="multiple of minibatch"):
        reptile_stacked(stack_params(nets), sample, (4, 5), 0.1, monitor, 2, minibatch=4)
    with pytest.raises(ValueError, match="outer"):
        reptile_stacked(stack_params(nets), sample, (4, 5), 0.1, monitor, 2, outer="rmsprop")


def test_init_mlp_draws_torchs_default_distribution_reproducibly():
    a, b = init_mlp([1, 40, 40, 1], 0), init_mlp([1, 40, 40, 20], 0)
    for p, q in list(zip(a.parameters(), b.parameters()))[:4]:  # the same trunk
        assert torch.equal(p, q)
    assert all(p.dtype == torch.float64 for p in a.parameters())
    bounds = [1.0, 1 / np.sqrt(40), 1 / np.sqrt(40)]
    for layer, bound in zip([m for m in a if isinstance(m, torch.nn.Linear)], bounds):
        w = layer.weight.detach().numpy()
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound  # U(-bound, bound), not a smaller range
    assert not torch.equal(a[0].weight, init_mlp([1, 40, 40, 1], 1)[0].weight)


def test_stacked_training_gives_the_same_bits_under_other_cpu_kernels(tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "bits.py"
    script.write_text(
        "import hashlib, numpy as np, torch\n"
        "from mtl_course.chapters.ch11_transfer_meta import fit_stacked, init_mlp, reptile_stacked, sgd_stacked, stack_params\n"
        "P = stack_params([init_mlp([1, 16, 16, 3], s) for s in (0, 1)])\n"
        "rng = np.random.default_rng(0)\n"
        "x = torch.as_tensor(rng.uniform(-5, 5, size=(2, 30, 1))); y = torch.as_tensor(rng.normal(size=(2, 30, 3)))\n"
        "run = fit_stacked(P, x, y, x, y, lr=0.01, max_epochs=200, patience=50)\n"
        "out = run.params + sgd_stacked(P, x, y, 50, 0.01)\n"
        "def sample(m, rng):\n"
        "    i = rng.permutation(30)[:10]\n"
        "    return x[m, i].numpy(), y[m, i, :1].numpy() * (1 + rng.integers(3))\n"
        "R = stack_params([init_mlp([1, 16, 16, 1], s) for s in (0, 1)])\n"
        "out += reptile_stacked(R, sample, (0, 1), 0.01, lambda p: np.zeros(2) + 1, 40, 5, 0.02, 20, 2,\n"
        "                       minibatch=2, outer='adam').params\n"
        "print(hashlib.sha1(b''.join(t.numpy().tobytes() for t in out)).hexdigest())\n")
    digests = set()
    for capability in ("default", None):
        env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
        if capability:
            env["ATEN_CPU_CAPABILITY"] = capability
        done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, check=True)
        digests.add(done.stdout.strip())
    assert len(digests) == 1, "the stacked training's bits depend on the CPU kernels"


def test_fit_stacked_stops_early_and_returns_the_best_epochs_weights():
    nets = _nets([1, 16, 1], 2)
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.uniform(-2, 2, size=(2, 8, 1)))
    y = torch.sin(3 * x) + torch.as_tensor(rng.normal(scale=0.5, size=(2, 8, 1)))  # few noisy points: overfits
    xv = torch.as_tensor(rng.uniform(-2, 2, size=(2, 200, 1)))
    run = fit_stacked(stack_params(nets), x, y, xv, torch.sin(3 * xv), lr=0.03, max_epochs=3000, patience=50)
    assert run.at[-1] < 3000 and np.all(run.at[-1] - run.best_at >= 50 - 1)
    np.testing.assert_allclose(run.best, run.curve.min(axis=1))
    np.testing.assert_allclose(run.best, _mse(run.params, xv, torch.sin(3 * xv)).numpy(), rtol=1e-12)
    assert run.best_at.tolist() == (run.curve.argmin(axis=1) + 1).tolist()


def test_adaptation_errors_agree_with_the_learners_on_the_same_tasks():
    family = SineFamily()
    nets = _nets([1, 8, 8, 1], 2)
    rng = np.random.default_rng(3)
    tasks = [family.sample_tasks(2, rng) for _ in nets]
    support = [[family.sample(t, 5, rng) for t in row] for row in tasks]
    grid = family.grid(100).astype(np.float64)
    errors = adaptation_errors(stack_params(nets), tasks, support, (2, 5), grid, (0.1, 1.0), (0.01, 0.03), 6)
    assert errors["ridge head"].shape == errors["fine-tune"].shape == (2, 2, 2)
    for m, net in enumerate(nets):
        for j, k in enumerate((2, 5)):
            for r, ridge in enumerate((0.1, 1.0)):
                learner = LinearHeadLearner(net[:-1], ridge)
                mse = np.mean([np.mean((learner.predict(x[:k], y[:k], grid) - t(grid)) ** 2)
                               for t, (x, y) in zip(tasks[m], support[m])])
                assert errors["ridge head"][m, j, r] == pytest.approx(mse, rel=1e-9)
            for r, lr in enumerate((0.01, 0.03)):
                learner = FineTuneLearner(net, 6, lr)
                mse = np.mean([np.mean((learner.predict(x[:k], y[:k], grid) - t(grid)) ** 2)
                               for t, (x, y) in zip(tasks[m], support[m])])
                assert errors["fine-tune"][m, j, r] == pytest.approx(mse, rel=1e-9)
    diverging = adaptation_errors(stack_params(nets), tasks, support, (5,), grid, (), (1e6,), 20)
    assert np.all(diverging["fine-tune"] == np.inf)  # a diverging rate scores inf, never NaN


SMALL = dict(hidden=8, max_epochs=60, patience=10, meta_steps=20, eval_every=5, meta_patience=2, adapt_steps=4,
             n_train_tasks=4, n_per_task=12, n_val_per_task=6, n_val_tasks=2, n_test_tasks=2, inner_shots=5,
             inner_steps=2)


def test_comparison_is_complete_finite_reproducible_and_picks_settings_on_validation():
    result = compare_few_shot(seeds=(0, 1), shots=(2, 5), **SMALL)
    assert set(result.errors) == {0, 1}
    for seed in (0, 1):
        assert set(result.errors[seed]) == {(a, m) for a in APPROACHES for m in ADAPTATIONS}
        assert all(np.isfinite(v) and v >= 0 for e in result.errors[seed].values() for v in e.values())
        assert list(result.nets[seed]) == list(APPROACHES)
        assert all(p.dtype == torch.float64 for net in result.nets[seed].values() for p in net.parameters())
    for key, val in result.val_errors.items():
        best = val.argmin(axis=2)
        for i, seed in enumerate((0, 1)):
            for j, k in enumerate((2, 5)):
                assert result.errors[seed][key][k] == result.test_errors[key][i, j, best[i, j]]
                assert result.chosen[seed][key][k] == result.settings[key[1]][best[i, j]]
    for approach in ("pooled", "multi-task", "reptile"):
        info = result.pretraining[approach]
        assert len(info["runs"]) == 3 and all(c in info["grid"] for c in info["chosen"])
    # the chosen learners, rebuilt from the classes the chapter teaches, score the same on few_shot_errors' tasks
    net = result.nets[1]
    for (approach, adaptation), by_k in result.chosen[1].items():
        for k, setting in by_k.items():
            learner = (LinearHeadLearner(net[approach][:-1], setting) if adaptation == "ridge head"
                       else FineTuneLearner(net[approach], SMALL["adapt_steps"], setting))
            expected = few_shot_errors({"l": learner}, SineFamily(), (2, 5), SMALL["n_test_tasks"], seed=1)["l"][k]
            assert result.errors[1][approach, adaptation][k] == pytest.approx(expected, rel=1e-9)
    again = compare_few_shot(seeds=(0, 1), shots=(2, 5), **SMALL)
    assert again.errors == result.errors and again.chosen == result.chosen
    # the random network is the untrained initialisation, shared with pooled and Reptile's start
    for p, q in zip(init_mlp([1, 8, 8, 1], 1).parameters(), result.nets[1]["random"].parameters()):
        assert torch.equal(p, q)


def test_comparison_refuses_more_inner_examples_than_a_training_task_has():
    with pytest.raises(ValueError, match="inner_shots"):
        compare_few_shot(seeds=(0,), shots=(2,), **{**SMALL, "inner_shots": 13})
    with pytest.raises(ValueError, match="inner_steps=3 minibatches of inner_shots=5"):
        compare_few_shot(seeds=(0,), shots=(2,), **{**SMALL, "inner_steps": 3})
