"""The TensorFlow layer-wise Gramian, its parity with the torch twin, and TF fit's Gramian path."""

from __future__ import annotations

import mtl_course.tf  # noqa: F401  (quiets TensorFlow: import it before tensorflow)

# isort: split
import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

from mtl_course.parity import copy_torch_to_tf
from mtl_course.tf import aggregators as tf_agg
from mtl_course.tf.gradients import jacobian
from mtl_course.tf.gramian import LayerGramian, gramian_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


class Net(keras.Model):
    """Conv2D, Dense (Gram trick and per-task gradients), LayerNormalization (fallback),
    a Dense called twice (fallback), then three linear heads."""

    def __init__(self, dtype: str) -> None:
        super().__init__(dtype=dtype)
        self.conv = keras.layers.Conv2D(4, 3, padding="same", activation="tanh", dtype=dtype)
        self.conv2 = keras.layers.Conv2D(3, 3, strides=2, use_bias=False, dtype=dtype)
        self.wide = keras.layers.Dense(40, activation="tanh", dtype=dtype)
        self.norm = keras.layers.LayerNormalization(dtype=dtype)
        self.twice = keras.layers.Dense(40, activation="tanh", dtype=dtype)
        self.narrow = keras.layers.Dense(2, use_bias=False, activation="tanh", dtype=dtype)
        self.heads = [keras.layers.Dense(1, dtype=dtype) for _ in range(3)]

    def call(self, x):
        z = keras.ops.tanh(self.conv2(self.conv(x)))
        z = self.norm(self.wide(keras.ops.reshape(z, (z.shape[0], -1))))
        z = self.narrow(self.twice(self.twice(z)))
        return [head(z)[:, 0] for head in self.heads]

    def shared_parameters(self):
        heads = {id(v) for h in self.heads for v in h.trainable_weights}
        return [v for v in self.trainable_weights if id(v) not in heads]


def _losses(net, x, y):
    return [tf.reduce_mean((out - y[:, t]) ** 2) for t, out in enumerate(net(x))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("compiled", [False, True])
def test_layer_gramian_equals_explicit_jacobian_gram(dtype, compiled):
    keras.utils.set_random_seed(0)
    net = Net(dtype)
    rng = np.random.default_rng(0)
    x, y = tf.constant(rng.normal(size=(6, 7, 7, 2)), dtype), tf.constant(rng.normal(size=(6, 3)), dtype)
    net(x)
    recorder = LayerGramian(net)
    assert sorted(type(layer).__name__ for layer in recorder.layers) == ["Conv2D", "Conv2D", "Dense", "Dense", "Dense"]

    def both(x, y):
        with tf.GradientTape(persistent=True) as tape:
            with recorder:
                losses = _losses(net, x, y)
        G = recorder.gramian(tape, losses)
        J = jacobian(tape, losses, net.shared_parameters())
        return G, tf.matmul(J, J, transpose_b=True)

    G, expected = (tf.function(both) if compiled else both)(x, y)
    assert G.dtype == expected.dtype and G.shape == (3, 3)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(G.numpy(), expected.numpy(), rtol=tol, atol=tol * float(np.max(np.diag(expected))))
    assert "call" not in net.wide.__dict__  # the wrappers are gone after the context


@pytest.mark.parametrize("rows", [2, 300])
def test_dense_branches_and_parity_with_torch(rows):
    import mtl_course.tf as mtl_tf
    import mtl_course.torch as mtl_torch
    from mtl_course.torch.gramian import LayerGramian as TorchLayerGramian

    torch.manual_seed(1)
    torch_model = mtl_torch.HardSharing(mtl_torch.mlp([5, 8, 6]), {t: mtl_torch.mlp([6, 1]) for t in "abc"})
    tf_model = mtl_tf.HardSharing(mtl_tf.mlp([5, 8, 6]), {t: mtl_tf.mlp([6, 1]) for t in "abc"})
    tf_model(np.zeros((1, 5), np.float32))
    copy_torch_to_tf(torch_model, tf_model)
    rng = np.random.default_rng(rows)
    x, y = rng.normal(size=(rows, 5)).astype(np.float32), rng.normal(size=(rows, 3)).astype(np.float32)
    with TorchLayerGramian(torch_model) as recorder:
        out = torch_model(torch.from_numpy(x))
    G_torch = recorder.gramian([((out[t][:, 0] - torch.from_numpy(y[:, k])) ** 2).mean() for k, t in enumerate("abc")])
    recorder = LayerGramian(tf_model)
    with tf.GradientTape(persistent=True) as tape, recorder:
        out = tf_model(tf.constant(x))
        losses = [tf.reduce_mean((out[t][:, 0] - y[:, k]) ** 2) for k, t in enumerate("abc")]
    G_tf = recorder.gramian(tape, losses)
    np.testing.assert_allclose(G_tf.numpy(), G_torch.numpy(), rtol=2e-5, atol=1e-6 * float(G_torch.max()))
    J = jacobian(tape, losses, tf_model.shared_parameters())
    np.testing.assert_allclose(G_tf.numpy(), tf.matmul(J, J, transpose_b=True).numpy(), rtol=2e-5,
                               atol=1e-6 * float(G_torch.max()))


def test_gramian_weights_give_the_aggregators_direction_in_a_graph():
    J = tf.constant(np.random.default_rng(2).normal(size=(3, 20)), tf.float64)

    @tf.function
    def direction(J):
        w = gramian_weights(tf_agg.upgrad, tf.matmul(J, J, transpose_b=True))
        return tf.linalg.matvec(J, w, transpose_a=True)

    np.testing.assert_allclose(direction(J).numpy(), tf_agg.upgrad(J).numpy(), rtol=1e-10)
    assert gramian_weights(lambda J: J[0], tf.eye(2)) is None


def test_layer_gramian_rejects_bad_input():
    with pytest.raises(ValueError, match="shared_parameters"):
        LayerGramian(keras.layers.Dense(2))
    with pytest.raises(ValueError, match="empty"):
        LayerGramian(keras.layers.Dense(2), [])


def _fit_problem():
    from mtl_course.data.types import MultiTaskSplit

    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    return MultiTaskSplit(x, {"a": (x @ rng.normal(size=6)).astype(np.float32),
                              "b": (x[:, 0] > 0).astype(np.int64),
                              "c": np.tanh(x @ rng.normal(size=6)).astype(np.float32)})


def _tf_model(kind: str):
    import mtl_course.tf as mtl

    keras.utils.set_random_seed(0)
    if kind == "hard":
        model = mtl.HardSharing(mtl.mlp([6, 16, 8]), {"a": mtl.mlp([8, 1]), "b": mtl.mlp([8, 2]), "c": mtl.mlp([8, 1])})
    else:
        model = mtl.MMoE(6, 3, (8,), {"a": 1, "b": 2, "c": 1}, tower_hidden=(4,))
    model(np.zeros((1, 6), np.float32))
    return model


@pytest.mark.parametrize("kind", ["hard", "mmoe"])
@pytest.mark.parametrize("name", ["mgda", "pcgrad", "upgrad", "cagrad", "nash_mtl"])
def test_tf_fit_gramian_path_equals_the_jacobian_path(kind, name):
    import mtl_course.tf as mtl

    data = _fit_problem()
    tasks = {"a": "mse", "b": "cross_entropy", "c": "mse"}
    common = dict(epochs=3, batch_size=16, lr=0.01, seed=4, progress=False)
    gram_model = _tf_model(kind)
    h_gram = mtl.fit(gram_model, data, tasks, method=name, **common)  # compiled, Gramian path
    rng = np.random.default_rng(4)
    function = tf_agg.AGGREGATORS[name]
    wrapped = (lambda J: function(J, generator=rng)) if name == "pcgrad" else (lambda J: function(J))
    jac_model = _tf_model(kind)
    h_jac = mtl.fit(jac_model, data, tasks, method=wrapped, **common)  # eager, explicit J
    for task in tasks:
        np.testing.assert_allclose(h_gram.train_loss[task], h_jac.train_loss[task], rtol=2e-5)
    for p, q in zip(gram_model.trainable_variables, jac_model.trainable_variables):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-4, atol=1e-5)
