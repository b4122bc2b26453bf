"""Loss weightings in TensorFlow, and parity with the PyTorch twins.

Parity tolerance: the weights are computed by the same numpy code in both
frameworks, so they agree to float64 round-off (rtol 1e-6 covers the float32
losses and gradient norms fed in); totals are float32 sums, compared at rtol 1e-6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
import torch

import mtl_course.tf  # noqa: F401  (quiet TensorFlow before importing it)
import mtl_course.tf.weighting as tfw
import mtl_course.torch.weighting as tw
from mtl_course.core import weighting as core

VALUES = [(2.0, 3.0), (1.5, 2.5), (1.0, 2.2)]


def tf_losses(values, names="ab"):
    return {n: tf.constant(v, tf.float32) for n, v in zip(names, values)}


def torch_losses(values, names="ab"):
    return {n: torch.tensor(v, dtype=torch.float32) for n, v in zip(names, values)}


def test_tf_uncertainty_total_and_gradients_by_hand():
    weighting = tfw.UncertaintyWeighting(["a", "b"], kinds=("regression", "classification"))
    weighting.log_vars.assign([0.0, math.log(2.0)])
    with tf.GradientTape() as tape:
        total = weighting(tf_losses((2.0, 3.0)))
    assert float(total) == pytest.approx(1.0 + 1.5 + math.log(2.0) / 2, rel=1e-6)
    (grad,) = tape.gradient(total, weighting.trainable_variables)
    np.testing.assert_allclose(grad.numpy(), [-0.5, -1.0], rtol=1e-6)
    assert len(weighting.trainable_variables) == 1


def test_tf_rlw_weights_are_the_softmax_of_seeded_normal_draws():
    weighting = tfw.RLW(generator=11)
    row = np.random.default_rng(11).standard_normal(3)
    weighting(tf_losses((1.0, 2.0, 3.0), "abc"))
    np.testing.assert_allclose(weighting.weights, np.exp(row) / np.exp(row).sum(), rtol=1e-12)


def _one_update(framework: str, name: str):
    """Build the named weighting, run it on three steps of fixed losses, return (totals, weights)."""
    module = tw if framework == "torch" else tfw
    make = {
        "equal": lambda: module.EqualWeighting(),
        "static": lambda: module.StaticWeighting({"a": 0.3, "b": 2.0}),
        "uncertainty": lambda: module.UncertaintyWeighting(["a", "b"], kinds=("regression", "classification"),
                                                           init=0.2),
        "dwa": lambda: module.DWA(temperature=1.5),
        "rlw": lambda: module.RLW(generator=5),
    }[name]
    weighting = make()
    totals = []
    for values in VALUES:
        losses = torch_losses(values) if framework == "torch" else tf_losses(values)
        total = weighting(losses)
        totals.append(float(total.detach() if framework == "torch" else total))
        weighting.end_epoch()
    return np.array(totals), weighting.weights


@pytest.mark.parametrize("name", ["equal", "static", "uncertainty", "dwa", "rlw"])
def test_weightings_agree_between_torch_and_tf(name):
    torch_totals, torch_weights = _one_update("torch", name)
    tf_totals, tf_weights = _one_update("tf", name)
    np.testing.assert_allclose(tf_totals, torch_totals, rtol=1e-6)
    np.testing.assert_allclose(tf_weights, torch_weights, rtol=1e-6)
    if name == "dwa":  # two epochs of history: the weights have moved off 1
        assert not np.allclose(torch_weights, 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradnorm_agrees_between_torch_and_tf(dtype):
    """Same losses and shared kernel in both twins: the same Adam steps on the weights."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3)).astype(dtype)
    w_shared = rng.normal(size=(3, 4)).astype(dtype)
    heads = [rng.normal(size=(4, 1)).astype(dtype) for _ in range(2)]
    targets = [np.ones((5, 1), dtype), -np.ones((5, 1), dtype)]

    torch_weighting, tf_weighting = tw.GradNorm(alpha=1.0, lr=0.1), tfw.GradNorm(alpha=1.0, lr=0.1)
    for step in range(5):
        scale = dtype(1.0 - 0.2 * step)
        kernel_t = torch.tensor(w_shared * scale, requires_grad=True)
        z = torch.tensor(x) @ kernel_t
        losses_t = [((z @ torch.tensor(h) - torch.tensor(t)) ** 2).mean() for h, t in zip(heads, targets)]
        total_t = float(torch_weighting(losses_t).detach())
        torch_weighting.update(losses_t, [kernel_t])

        kernel_f = tf.Variable(w_shared * scale)
        with tf.GradientTape(persistent=True) as tape:
            zf = tf.constant(x) @ kernel_f
            losses_f = [tf.reduce_mean((zf @ h - t) ** 2) for h, t in zip(heads, targets)]
            total_f = float(tf_weighting(losses_f))
        tf_weighting.update(losses_f, [kernel_f], tape)
        assert total_f == pytest.approx(total_t, rel=1e-5)
        np.testing.assert_allclose(tf_weighting.weights, torch_weighting.weights, rtol=1e-5)
    assert not np.allclose(torch_weighting.weights, 1.0)


@pytest.mark.parametrize("name", ["uncertainty", "dwa", "rlw", "static", "gradnorm"])
def test_tf_state_dict_round_trip(name, tmp_path):
    make = {
        "gradnorm": lambda: tfw.GradNorm(),
        "uncertainty": lambda: tfw.UncertaintyWeighting(["a", "b"]),
        "dwa": lambda: tfw.DWA(),
        "rlw": lambda: tfw.RLW(generator=1),
        "static": lambda: tfw.StaticWeighting([1.0, 2.0]),
    }[name]
    weighting = make()
    for values in VALUES[:2]:
        weighting(tf_losses(values))
        weighting.end_epoch()
    if name == "uncertainty":
        weighting.log_vars.assign([0.25, -0.75])
    if name == "gradnorm":
        shared = tf.Variable([1.0, 2.0])
        with tf.GradientTape(persistent=True) as tape:
            task_losses = {"a": tf.reduce_sum(shared**2), "b": tf.reduce_sum(3.0 * shared)}
            weighting(task_losses)
        weighting.update(task_losses, [shared], tape)
        assert not np.allclose(weighting.weights, 1.0)
    path = tmp_path / "state.npz"
    np.savez(path, **weighting.state_dict())
    with np.load(path, allow_pickle=False) as data:
        state = {k: data[k] for k in data.files}
    fresh = make() if name != "rlw" else tfw.RLW(generator=123)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.weights, weighting.weights)
    assert float(fresh(tf_losses(VALUES[2]))) == float(weighting(tf_losses(VALUES[2])))
    np.testing.assert_array_equal(fresh.weights, weighting.weights)


@pytest.mark.parametrize("framework", ["torch", "tf"])
@pytest.mark.parametrize(
    "case, message",
    [
        ("wrong_count", "expected 2 task losses"),
        ("unknown_name", "unknown task"),
        ("nan", "'b'"),
        ("negative_static", "non-negative"),
        ("empty_tasks", "empty"),
    ],
)
def test_bad_input_raises_in_both_frameworks(framework, case, message):
    module = tw if framework == "torch" else tfw
    scalar = (lambda v: torch.tensor(v)) if framework == "torch" else (lambda v: tf.constant(v))
    with pytest.raises(ValueError, match=message):
        if case == "wrong_count":
            module.EqualWeighting(tasks=["a", "b"])([scalar(1.0)])
        elif case == "unknown_name":
            module.UncertaintyWeighting(["a", "b"])({"a": scalar(1.0), "c": scalar(1.0)})
        elif case == "nan":
            module.DWA(tasks=["a", "b"])({"a": scalar(1.0), "b": scalar(float("nan"))})
        elif case == "negative_static":
            module.StaticWeighting({"a": 1.0, "b": -1.0})
        else:
            module.RLW(tasks=[])


# ------------------------------------------------- issue 14, items 9 and 10

@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_gradnorm_rejects_a_loss_that_turned_negative(framework):
    """Before: the weights turned NaN (r_i ** alpha of a negative training rate)."""
    with pytest.raises(ValueError, match=r"GradNorm needs non-negative losses .*task\(s\) \[1\] have loss \[-0.5\]"):
        tw_or_tf_gradnorm_step(framework, [1.0, -0.5])


def tw_or_tf_gradnorm_step(framework: str, second_values: list[float]) -> np.ndarray:
    """GradNorm's first step at losses (1, 2), then a second step at ``second_values`` + the
    shared parameter's contribution (losses a * L_a(w) with L_a(w) = w . w)."""
    if framework == "torch":
        weighting = tw.GradNorm(tasks=["a", "b"])
        shared = torch.tensor([1.0, 2.0], requires_grad=True)
        for values in ([1.0, 2.0], second_values):
            task_losses = {n: (shared**2).sum() * 0 + v + 0 * shared.sum() for n, v in zip("ab", values)}
            weighting(task_losses)
            weighting.update(task_losses, [shared])
        return weighting.weights
    weighting = tfw.GradNorm(tasks=["a", "b"])
    shared = tf.Variable([1.0, 2.0])
    for values in ([1.0, 2.0], second_values):
        with tf.GradientTape(persistent=True) as tape:
            task_losses = {n: tf.reduce_sum(shared**2) * 0 + v for n, v in zip("ab", values)}
            weighting(task_losses)
        weighting.update(task_losses, [shared], tape)
    return weighting.weights


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_uncertainty_weighting_rejects_negative_losses_and_a_nan_init(framework):
    """Before: a negative loss drove log_vars to -inf silently, and init=nan was accepted."""
    module = tw if framework == "torch" else tfw
    scalar = (lambda v: torch.tensor(v)) if framework == "torch" else (lambda v: tf.constant(v))
    weighting = module.UncertaintyWeighting(["a", "b"])
    with pytest.raises(ValueError, match=r"UncertaintyWeighting needs non-negative losses .*'b' \(-0.25\)"):
        weighting({"a": scalar(1.0), "b": scalar(-0.25)})
    assert float(weighting({"a": scalar(1.0), "b": scalar(0.0)})) == pytest.approx(0.5)
    for init in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="init .* must be finite"):
            module.UncertaintyWeighting(["a", "b"], init=init)


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_dwa_state_before_binding_round_trips(framework, tmp_path):
    """Before: DWA().state_dict() raised a numpy reshape error, so saving before fit failed."""
    if framework == "torch":
        path = tmp_path / "dwa.pt"
        torch.save(tw.DWA().state_dict(), path)
        fresh = tw.DWA()
        fresh.load_state_dict(torch.load(path, weights_only=True))
        scalar = torch.tensor
    else:
        path = tmp_path / "dwa.npz"
        np.savez(path, **tfw.DWA().state_dict())
        with np.load(path, allow_pickle=False) as data:
            fresh = tfw.DWA()
            fresh.load_state_dict({k: data[k] for k in data.files})
        scalar = tf.constant
    assert fresh.num_tasks is None and fresh.weights is None
    for values in VALUES:  # the restored weighting then trains as a new one
        fresh({"a": scalar(values[0]), "b": scalar(values[1])})
        fresh.end_epoch()
    np.testing.assert_allclose(fresh.weights, 2 * _softmax(np.array(VALUES[2]) / VALUES[1] / 2.0))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


# ------------------------------------------------- issue 17: GradNorm's update in fit's graph

def _graph_gradnorm_steps(gradnorm: tfw.GradNorm, steps: list[tuple[list[float], list[float]]]) -> None:
    """Run ``(losses, norms)`` steps through the compiled update, as fit's step does."""
    update = tf.function(lambda losses, norms, weights, state: gradnorm._graph_update(losses, norms, weights, state))
    for losses, norms in steps:
        values = np.array(losses)
        state = tuple(tf.constant(a) for a in gradnorm._graph_state(True))
        new, _ = update(tf.constant(values), tf.constant(np.array(norms)), tf.constant(gradnorm.weights), state)
        gradnorm._record(values)
        gradnorm._keep_graph_state(values, [a.numpy() for a in new], True)


def test_gradnorm_graph_update_matches_the_numpy_update_over_many_steps():
    """Adam moments, step count, L_i(0) at the first call, the weight floor and the renormalisation:
    the graph's float64 arithmetic is the numpy update's, to float64 rounding (rtol 1e-13)."""
    rng = np.random.default_rng(0)
    # badly scaled tasks (losses 1e-4 .. 1e3, norms 1e-3 .. 1e4) and a zero-loss step
    steps = [((10.0 ** rng.uniform(-4, 3, 3)).tolist(), (10.0 ** rng.uniform(-3, 4, 3)).tolist()) for _ in range(40)]
    steps[7] = ([0.0, 0.0, 0.0], steps[7][1])
    eager, graph = tfw.GradNorm(alpha=0.7, lr=0.3, tasks=3), tfw.GradNorm(alpha=0.7, lr=0.3, tasks=3)
    init = np.array(steps[0][0])
    for losses, norms in steps:
        eager._keep_values(np.array(losses))
        eager._weights = core.gradnorm_update(eager.weights, np.array(norms), np.array(losses), init, 0.7, 0.3,
                                              optimizer=eager._adam)
    _graph_gradnorm_steps(graph, steps)
    assert np.min(eager.weights) < 0.1 and graph._adam.t == eager._adam.t == 40  # the floor or near it
    np.testing.assert_allclose(graph.weights, eager.weights, rtol=1e-13)
    np.testing.assert_allclose(graph._adam.m, eager._adam.m, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(graph._adam.v, eager._adam.v, rtol=1e-13)
    np.testing.assert_array_equal(graph._initial_losses, init)


def test_gradnorm_graph_update_rejects_a_loss_that_turned_negative():
    gradnorm = tfw.GradNorm(tasks=2)
    with pytest.raises(ValueError, match=r"GradNorm needs non-negative losses .*task\(s\) \[1\] have loss \[-0.5\]"):
        _graph_gradnorm_steps(gradnorm, [([1.0, 2.0], [1.0, 3.0]), ([1.0, -0.5], [1.0, 3.0])])
    np.testing.assert_allclose(gradnorm.weights, [1.025, 0.975])  # the first step's, kept
