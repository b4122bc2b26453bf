"""Tests of the Keras multi-task models and of their parity with the PyTorch twins.

Parity tolerance: float32 MLPs of a few layers with O(1) activations; the two
frameworks sum the matrix products in different orders, so outputs differ by a
few float32 ulps (observed below 1e-6). ``atol=rtol=1e-5`` leaves room for
other CPUs while still catching any mis-mapped weight, which changes outputs
by O(0.1).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
from torch import nn

import mtl_course.tf  # noqa: F401  (quiet TensorFlow before importing it)
from mtl_course import parity
from mtl_course.core.model_config import cross_stitch_init
from mtl_course.tf import models as km
from mtl_course.torch import models as tm

D = 5
TOL = dict(atol=1e-5, rtol=1e-5)


def x_batch(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, D)).astype(np.float32)


def twins(kind: str):
    """The same architecture in both frameworks (torch seeded, Keras random)."""
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)
    if kind == "hard":
        return [
            fw.HardSharing(fw.mlp([D, 6], output_activation=True), {"a": fw.mlp([6, 3, 1]), "b": fw.mlp([6, 2])})
            for fw in (tm, km)
        ]
    if kind in ("soft_l2", "soft_trace", "soft_wd"):
        coupling = {"soft_l2": "l2", "soft_trace": "trace_norm", "soft_wd": "weight_decay"}[kind]
        return [fw.SoftSharing({n: fw.mlp([D, 4, 2]) for n in "abc"}, coupling, strength=0.3) for fw in (tm, km)]
    if kind == "cross_stitch":
        return [
            fw.CrossStitch(
                {
                    n: [fw.mlp([D, 4], output_activation=True), fw.mlp([4, 3], "tanh", output_activation=True)]
                    for n in "ab"
                },
                heads={n: fw.mlp([3, 1]) for n in "ab"},
                alpha_self=0.7,
            )
            for fw in (tm, km)
        ]
    if kind == "mmoe":
        return [fw.MMoE(D, 3, [6, 4], {"a": 1, "b": 2}, tower_hidden=[3]) for fw in (tm, km)]
    if kind == "omoe":
        return [fw.MMoE(D, 2, [4], ["a", "b"], num_gates=1, activation="gelu") for fw in (tm, km)]
    if kind == "ple":
        return [fw.PLE(D, ["a", "b", "c"], 2, 1, [4], num_levels=3, tower_hidden=[3]) for fw in (tm, km)]
    if kind == "esmm":
        return [fw.ESMM(D, [6], [3]) for fw in (tm, km)]
    raise KeyError(kind)


KINDS = ["hard", "soft_l2", "soft_trace", "cross_stitch", "mmoe", "omoe", "ple", "esmm"]


def copied(kind: str):
    torch_model, tf_model = twins(kind)
    x = x_batch()
    tf_model(x)  # build
    parity.copy_torch_to_tf(torch_model, tf_model)
    return torch_model, tf_model, x


# ---------------------------------------------------------------------- parity


@pytest.mark.parametrize("kind", KINDS)
def test_outputs_agree_after_copying_weights(kind):
    torch_model, tf_model, x = copied(kind)
    expected = torch_model(torch.from_numpy(x))
    got = tf_model(x)
    assert list(got) == list(expected)
    assert tf_model.task_names == torch_model.task_names
    for name in expected:
        np.testing.assert_allclose(got[name].numpy(), expected[name].detach().numpy(), **TOL)


@pytest.mark.parametrize("kind", ["soft_l2", "soft_trace", "soft_wd"])
def test_penalties_agree(kind):
    torch_model, tf_model, _ = copied(kind)
    assert float(tf_model.penalty()) == pytest.approx(torch_model.penalty().item(), rel=1e-5)


@pytest.mark.parametrize("kind", ["mmoe", "omoe", "ple"])
def test_gate_weights_agree(kind):
    torch_model, tf_model, x = copied(kind)
    expected, got = torch_model.gates(torch.from_numpy(x)), tf_model.gates(x)
    for name in expected:
        np.testing.assert_allclose(got[name].numpy(), expected[name].detach().numpy(), **TOL)


@pytest.mark.parametrize("kind", KINDS)
def test_parameter_split_agrees(kind):
    torch_model, tf_model, _ = copied(kind)

    def shapes(params):
        return sorted(tuple(p.shape) for p in params)

    def torch_shapes(params):  # a Linear weight is the Dense kernel transposed
        return sorted(tuple(p.shape)[::-1] if p.dim() == 2 else tuple(p.shape) for p in params)

    assert shapes(tf_model.shared_parameters()) == torch_shapes(torch_model.shared_parameters())
    for name in torch_model.task_names:
        assert shapes(tf_model.task_parameters(name)) == torch_shapes(torch_model.task_parameters(name))
    n_vars = len(tf_model.trainable_variables)
    assert n_vars == len(list(torch_model.parameters()))


def test_copy_mlp_maps_transposed_weights():
    torch_net, keras_net = tm.mlp([3, 2]), km.mlp([3, 2])
    parity.copy_mlp(torch_net, keras_net)
    np.testing.assert_array_equal(keras_net.layers[0].kernel.numpy(), torch_net[0].weight.detach().numpy().T)
    np.testing.assert_array_equal(keras_net.layers[0].bias.numpy(), torch_net[0].bias.detach().numpy())


def test_copy_refuses_mismatches():
    with pytest.raises(ValueError, match="2 Linear layers but the Keras layer has 1"):
        parity.copy_mlp(tm.mlp([3, 4, 2]), km.mlp([3, 2]))
    with pytest.raises(ValueError, match="does not match"):
        parity.copy_mlp(tm.mlp([3, 2]), km.mlp([2, 3]))
    with pytest.raises(TypeError, match="only torch.nn.Linear"):
        parity.copy_mlp(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), km.mlp([3, 3]))
    with pytest.raises(TypeError, match="cannot copy a torch MMoE into a Keras PLE"):
        parity.copy_torch_to_tf(twins("mmoe")[0], twins("ple")[1])
    with pytest.raises(RuntimeError, match="not built"):
        parity.copy_mlp(nn.Linear(3, 2), keras.layers.Dense(2))


def test_parity_of_gradients_on_shared_parameters():
    torch_model, tf_model, x = copied("mmoe")
    loss_t = torch_model(torch.from_numpy(x))["b"].pow(2).sum()
    grads_t = torch.autograd.grad(loss_t, torch_model.shared_parameters())
    with tf.GradientTape() as tape:
        loss_k = tf.reduce_sum(tf_model(x)["b"] ** 2)
    grads_k = tape.gradient(loss_k, tf_model.shared_parameters())
    for g_t, g_k in zip(grads_t, grads_k):
        g_t = g_t.numpy().T if g_t.dim() == 2 else g_t.numpy()
        np.testing.assert_allclose(g_k.numpy(), g_t, atol=1e-5, rtol=1e-4)


# -------------------------------------------------- Keras side on its own


def test_keras_mlp_layout_and_build():
    net = km.mlp([3, 4, 2], activation="tanh")
    assert net.built and [layer.units for layer in net.layers] == [4, 2]
    assert net.layers[0].activation is keras.activations.tanh
    assert net.layers[1].activation is keras.activations.linear


def test_keras_l2_penalty_hand_value():
    towers = {n: keras.layers.Dense(1) for n in "ab"}
    for n, (w, b) in zip("ab", [([[1.0], [2.0]], [0.5]), ([[0.0], [0.0]], [-0.5])]):
        towers[n].build((None, 2))
        towers[n].kernel.assign(w)
        towers[n].bias.assign(b)
    assert float(km.SoftSharing(towers, strength=0.1).penalty()) == pytest.approx(0.6, rel=1e-6)


def test_keras_trace_norm_gradient_is_finite_for_identical_towers():
    tower = km.mlp([D, 3, 1])
    twin = km.mlp([D, 3, 1])
    twin.set_weights(tower.get_weights())
    model = km.SoftSharing({"a": tower, "b": twin}, coupling="trace_norm", strength=1.0)
    with tf.GradientTape() as tape:
        penalty = model.penalty()
    grads = tape.gradient(penalty, model.trainable_variables)
    assert all(np.isfinite(g.numpy()).all() for g in grads)


def test_keras_cross_stitch_init_and_identity_alphas():
    _, model, x = copied("cross_stitch")
    np.testing.assert_allclose(model.units[0].alpha.numpy(), cross_stitch_init(2, 0.7))
    model.units[0].alpha.assign(np.eye(2, dtype=np.float32))
    out = model(x)
    for n in "ab":
        expected = model.heads[n](model.towers[n][1](model.towers[n][0](x)))
        np.testing.assert_allclose(out[n].numpy(), expected.numpy(), rtol=0, atol=0)


def test_keras_esmm_conversion_is_click_times_cvr():
    _, model, x = copied("esmm")
    out = model(x)
    np.testing.assert_allclose(
        tf.sigmoid(out["conversion"]).numpy(), (tf.sigmoid(out["click"]) * tf.sigmoid(out["cvr"])).numpy(), rtol=1e-6
    )
    extreme = km.ctcvr_logit(tf.constant([-200.0, 200.0, 200.0]), tf.constant([200.0, -200.0, 200.0]))
    assert np.isfinite(extreme.numpy()).all()
    np.testing.assert_allclose(float(km.ctcvr_logit(tf.constant(0.0), tf.constant(0.0))), np.log(1 / 3), rtol=1e-6)


@pytest.mark.parametrize("kind", ["hard", "cross_stitch", "mmoe", "omoe", "ple", "esmm"])
def test_keras_tasks_depend_on_shared_and_own_parameters_only(kind):
    _, model, x = copied(kind)
    for name in model.task_names:
        with tf.GradientTape() as tape:
            out = tf.reduce_sum(model(x)[name])
        variables = model.trainable_variables
        grads = dict(zip(map(id, variables), tape.gradient(out, variables)))
        for other in model.task_names:
            if other != name:
                for v in model.task_parameters(other):
                    g = grads[id(v)]
                    assert g is None or not np.any(g.numpy()), f"{name} depends on {other}'s parameter"
        for v in model.shared_parameters():
            assert grads[id(v)] is not None and np.any(grads[id(v)].numpy())


def test_keras_models_validate():
    with pytest.raises(ValueError, match="empty"):
        km.HardSharing(keras.layers.Dense(2), {})
    with pytest.raises(TypeError, match="keras Layer"):
        km.HardSharing(keras.layers.Dense(2), {"a": nn.Linear(2, 1)})
    with pytest.raises(ValueError, match="identical"):
        km.SoftSharing({"a": km.mlp([2, 1]), "b": km.mlp([2, 3])})
    with pytest.raises(ValueError, match=">= 0"):
        km.SoftSharing({"a": km.mlp([2, 1])}, strength=-0.1)
    with pytest.raises(ValueError, match="unknown coupling"):
        km.SoftSharing({"a": km.mlp([2, 1])}, coupling="l1")
    with pytest.raises(TypeError, match="list of Keras layers"):
        km.CrossStitch({"a": km.mlp([2, 2]), "b": km.mlp([2, 2])})
    with pytest.raises(ValueError, match="num_gates"):
        km.MMoE(D, 2, [4], ["a", "b", "c"], num_gates=2)
    with pytest.raises(ValueError, match=r"\(batch, 5\)"):
        km.MMoE(D, 2, [4], ["a"])(np.zeros((2, 4), np.float32))
    with pytest.raises(RuntimeError, match="no weights yet"):
        km.HardSharing(keras.layers.Dense(2), {"a": keras.layers.Dense(1)}).shared_parameters()


def test_keras_gates_are_distributions():
    _, model, x = copied("ple")
    for g in model.gates(x).values():
        assert g.shape == (4, 3)
        np.testing.assert_allclose(g.numpy().sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
@pytest.mark.parametrize("kind", ["cross_stitch", "ple", "esmm"])
def test_keras_seeded_models_are_bit_identical_and_weights_round_trip(kind, tmp_path):
    x = x_batch()
    first, second = twins(kind)[1], twins(kind)[1]
    out_first, out_second = first(x), second(x)
    for name in out_first:
        np.testing.assert_array_equal(out_first[name].numpy(), out_second[name].numpy())
    other = twins(kind)[1]
    other(x)
    other.set_weights([w + 1.0 for w in other.get_weights()])  # differ before loading
    assert not np.array_equal(other(x)[other.task_names[0]].numpy(), out_first[first.task_names[0]].numpy())
    path = str(tmp_path / "model.weights.h5")
    first.save_weights(path)
    other.load_weights(path)
    out_other = other(x)
    for name in out_first:
        np.testing.assert_array_equal(out_other[name].numpy(), out_first[name].numpy())
