"""TensorFlow aggregators and Jacobians, and their parity with the PyTorch twins."""

from __future__ import annotations

import mtl_course.tf  # noqa: F401  (quiets TensorFlow: import it before tensorflow)

# isort: split
import numpy as np
import pytest
import tensorflow as tf
import torch

from mtl_course.tf import aggregators as tf_agg
from mtl_course.tf.gradients import jacobian, representation_jacobian, unflatten_gradients
from mtl_course.torch import aggregators as torch_agg
from mtl_course.torch.gradients import jacobian as torch_jacobian

NAMES = list(tf_agg.AGGREGATORS)


def test_same_names():
    assert list(tf_agg.AGGREGATORS) == list(torch_agg.AGGREGATORS)
    assert tf_agg.__all__ == torch_agg.__all__


def both(name: str, J: np.ndarray, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    if name == "pcgrad":
        kwargs.setdefault("generator", 5)
    ours_tf = tf_agg.AGGREGATORS[name](tf.constant(J), **kwargs)
    ours_torch = torch_agg.AGGREGATORS[name](torch.tensor(J), **kwargs)
    assert ours_tf.dtype.as_numpy_dtype == J.dtype and ours_torch.dtype == torch.from_numpy(J).dtype
    return ours_tf.numpy(), ours_torch.numpy()


# Float32 inputs: each framework computes J J^T with its own float32 matmul (a different
# summation order, so G differs by ~1e-7 relative); the float64 solve can amplify that by the
# condition number of G (below ~100 for these random J), and w @ J is again float32.
# Measured: within 1e-5 of the largest |d| (see also tests/twins/test_numerics.py on hard J). Float64 inputs agree to ~1e-12, except CAGrad:
# its SLSQP solve is accurate to ~1e-8 and stops at slightly different points when G differs
# in the last bit, so 1e-6 there.
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("T", [2, 3, 5])
def test_parity_on_random_jacobians(name, T):
    rng = np.random.default_rng(T)
    for _ in range(3):
        J = rng.normal(size=(T, 16))
        J[0] *= -2.0  # make conflicts likely
        d_tf, d_torch = both(name, J.astype(np.float32))
        np.testing.assert_allclose(d_tf, d_torch, rtol=0, atol=1e-5 * np.abs(d_torch).max())
        d_tf, d_torch = both(name, J)
        rtol = 1e-6 if name == "cagrad" else 1e-10
        np.testing.assert_allclose(d_tf, d_torch, rtol=rtol, atol=rtol * np.abs(d_torch).max())


@pytest.mark.parametrize("name", NAMES)
def test_parity_on_degenerate_jacobians(name):
    g = np.array([1.0, 2.0, -2.0], dtype=np.float32)
    cases = [g[None], np.stack([g, g]), np.stack([g, -g]), np.stack([g, 0 * g]), np.zeros((3, 3), np.float32)]
    for J in cases:
        d_tf, d_torch = both(name, J)
        np.testing.assert_allclose(d_tf, d_torch, atol=1e-5)


def test_pcgrad_generator_parity_with_several_tasks():
    J = np.random.default_rng(0).normal(size=(6, 10))
    for seed in range(5):
        d_tf, d_torch = both("pcgrad", J, generator=seed)
        np.testing.assert_allclose(d_tf, d_torch, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_bad_jacobians_raise(name):
    f = tf_agg.AGGREGATORS[name]
    with pytest.raises(ValueError, match="2-D"):
        f(tf.ones([3]))
    with pytest.raises(ValueError, match="no rows"):
        f(tf.ones([0, 3]))
    with pytest.raises(ValueError, match=r"NaN or inf in row\(s\) \[1\]"):
        f(tf.constant([[1.0, 2.0], [np.nan, 0.0]]))
    with pytest.raises(TypeError, match="floating"):
        f(tf.ones([2, 3], dtype=tf.int32))
    with pytest.raises(TypeError, match="tf.Tensor"):
        f(np.ones((2, 3)))


# ------------------------------------------------------------------ jacobian


def two_layer_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.normal(size=(4, 3)).astype(np.float32),
        "b1": rng.normal(size=4).astype(np.float32),
        "W2": rng.normal(size=(2, 4)).astype(np.float32),
        "b2": rng.normal(size=2).astype(np.float32),
        "x": rng.normal(size=(6, 3)).astype(np.float32),
        "y": rng.normal(size=(6, 2)).astype(np.float32),
    }


def tf_two_layer(w, persistent: bool = False):
    variables = [tf.Variable(w[k]) for k in ("W1", "b1", "W2", "b2")]
    W1, b1, W2, b2 = variables
    with tf.GradientTape(persistent=persistent) as tape:
        z = tf.tanh(tf.matmul(w["x"], W1, transpose_b=True) + b1)
        out = tf.matmul(z, W2, transpose_b=True) + b2
        losses = {
            "regression": tf.reduce_mean((out[:, 0] - w["y"][:, 0]) ** 2),
            "other": tf.reduce_mean(tf.abs(out[:, 1] - w["y"][:, 1])),
        }
    return tape, losses, variables, z


def test_jacobian_parity_with_torch_on_a_two_layer_model():
    w = two_layer_weights()
    tape, losses, variables, _ = tf_two_layer(w)
    J_tf = jacobian(tape, losses, variables).numpy()

    params = [torch.tensor(w[k], requires_grad=True) for k in ("W1", "b1", "W2", "b2")]
    W1, b1, W2, b2 = params
    z = torch.tanh(torch.from_numpy(w["x"]) @ W1.T + b1)
    out = z @ W2.T + b2
    y = torch.from_numpy(w["y"])
    torch_losses = {
        "regression": ((out[:, 0] - y[:, 0]) ** 2).mean(),
        "other": (out[:, 1] - y[:, 1]).abs().mean(),
    }
    J_torch = torch_jacobian(torch_losses, params).numpy()
    assert J_tf.shape == J_torch.shape == (2, 12 + 4 + 8 + 2)
    np.testing.assert_allclose(J_tf, J_torch, rtol=1e-5, atol=1e-6)  # float32 rounding
    # the second loss does not touch row 0 of W2 nor b2[0]: zero (unconnected) columns
    assert np.all(J_tf[1, 16:20] == 0) and J_tf[1, 24] == 0


def test_jacobian_equals_per_task_gradients():
    w = two_layer_weights(1)
    tape, losses, variables, _ = tf_two_layer(w, persistent=True)
    J = jacobian(tape, losses, variables).numpy()
    for t, loss in enumerate(losses.values()):
        grads = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        np.testing.assert_allclose(J[t], np.concatenate([g.numpy().ravel() for g in grads]), rtol=1e-6, atol=1e-7)


def test_eager_loop_equals_the_vectorised_jacobian():
    """Eager + persistent tape takes one tape.gradient per task; a
    non-persistent tape takes the pfor path. Both give the same matrix."""
    w = two_layer_weights(2)
    tape, losses, variables, _ = tf_two_layer(w, persistent=True)
    looped = jacobian(tape, losses, variables).numpy()
    tape, losses, variables, _ = tf_two_layer(w, persistent=False)
    vectorised = jacobian(tape, losses, variables).numpy()
    np.testing.assert_allclose(looped, vectorised, rtol=1e-6, atol=1e-7)


def test_fallback_without_pfor(monkeypatch):
    w = two_layer_weights(2)
    tape, losses, variables, _ = tf_two_layer(w, persistent=True)
    expected = jacobian(tape, losses, variables).numpy()
    original = tf.GradientTape.jacobian

    def no_pfor(self, target, sources, *args, experimental_use_pfor=True, **kwargs):
        if experimental_use_pfor:
            raise ValueError("simulated: could not vectorize this operation")
        return original(self, target, sources, *args, experimental_use_pfor=False, **kwargs)

    monkeypatch.setattr(tf.GradientTape, "jacobian", no_pfor)
    variables = [tf.Variable(w[k]) for k in ("W1", "b1", "W2", "b2")]

    @tf.function
    def graph_jacobian():  # in a graph the pfor path (and so its fallback) is taken
        W1, b1, W2, b2 = variables
        with tf.GradientTape(persistent=True) as tape:
            z = tf.tanh(tf.matmul(w["x"], W1, transpose_b=True) + b1)
            out = tf.matmul(z, W2, transpose_b=True) + b2
            graph_losses = {
                "regression": tf.reduce_mean((out[:, 0] - w["y"][:, 0]) ** 2),
                "other": tf.reduce_mean(tf.abs(out[:, 1] - w["y"][:, 1])),
            }
        return jacobian(tape, graph_losses, variables)

    with pytest.warns(UserWarning, match="experimental_use_pfor=False"):
        J = graph_jacobian().numpy()
    np.testing.assert_allclose(J, expected, rtol=1e-6, atol=1e-7)
    tape, losses, variables, _ = tf_two_layer(w, persistent=False)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="persistent=True"):
        jacobian(tape, losses, variables)


def test_representation_jacobian():
    w = two_layer_weights(3)
    tape, losses, variables, z = tf_two_layer(w, persistent=True)
    Jz = representation_jacobian(tape, losses, z)
    assert Jz.shape == (2, z.shape.num_elements())
    grad = tape.gradient(losses["other"], z)
    np.testing.assert_allclose(Jz[1].numpy(), grad.numpy().ravel(), rtol=1e-6, atol=1e-7)
    with pytest.raises(TypeError, match="tf.Tensor"):
        representation_jacobian(tape, losses, z.numpy())


def test_unflatten_gradients_feed_an_optimizer():
    import keras

    w = two_layer_weights(4)
    tape, losses, variables, _ = tf_two_layer(w)
    J = jacobian(tape, losses, variables)
    grads = unflatten_gradients(tf_agg.upgrad(J), variables)
    assert [g.shape for g in grads] == [v.shape for v in variables]
    before = [v.numpy().copy() for v in variables]
    keras.optimizers.SGD(learning_rate=0.1).apply_gradients(zip(grads, variables))
    np.testing.assert_allclose(variables[0].numpy(), before[0] - 0.1 * grads[0].numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="26 elements"):
        unflatten_gradients(tf.zeros([25]), variables)


def test_jacobian_bad_input():
    w = two_layer_weights(5)
    tape, losses, variables, _ = tf_two_layer(w, persistent=True)
    with pytest.raises(ValueError, match="empty"):
        jacobian(tape, [], variables)
    with pytest.raises(ValueError, match="empty"):
        jacobian(tape, losses, [])
    with pytest.raises(ValueError, match="scalar"):
        jacobian(tape, [tf.ones([2])], variables)
    with pytest.raises(ValueError, match="'other'.*NaN or inf"):
        jacobian(tape, {**losses, "other": losses["other"] * np.nan}, variables)


# Inside tf.function (a compiled Keras train_step, or fit's compiled step) the aggregators
# run in the graph: G and w^T J as TF ops, the T x T solve through tf.numpy_function.
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aggregators_run_inside_tf_function(name, dtype):
    J = np.random.default_rng(3).standard_normal((4, 12)).astype(dtype)
    kwargs = {"generator": 7} if name == "pcgrad" else {}
    eager = tf_agg.AGGREGATORS[name](tf.constant(J), **kwargs).numpy()
    compiled = tf.function(lambda J: tf_agg.AGGREGATORS[name](J, **kwargs))
    graph = compiled(tf.constant(J))
    assert graph.shape == (12,) and graph.dtype.as_numpy_dtype == dtype
    np.testing.assert_allclose(graph.numpy(), eager, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    # the reproduction: this raised OperatorNotAllowedInGraphError before
    np.testing.assert_allclose(tf.function(lambda J: tf_agg.upgrad(J))(tf.ones((3, 10))).numpy(), np.ones(10),
                               rtol=1e-6)


def test_pcgrad_draws_new_orders_at_every_graph_call():
    """The numpy solve is stateful: a traced PCGrad does not freeze its first random draw."""
    J = tf.constant([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, -1.0, 1.0], [1.0, 1.0, -2.0]], tf.float64)
    rng_graph, rng_eager = np.random.default_rng(0), np.random.default_rng(0)
    compiled = tf.function(lambda J: tf_agg.pcgrad(J, generator=rng_graph))
    graph = [compiled(J).numpy() for _ in range(6)]
    eager = [tf_agg.pcgrad(J, generator=rng_eager).numpy() for _ in range(6)]
    np.testing.assert_allclose(graph, eager, rtol=1e-12)
    assert len({tuple(np.round(g, 9)) for g in graph}) > 1  # the orders did change


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_jacobian_stops_a_graph_with_a_clear_message(name):
    J = np.ones((3, 5), np.float32)
    J[1, 2] = np.nan
    compiled = tf.function(lambda J: tf_agg.AGGREGATORS[name](J))
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or inf"):
        compiled(tf.constant(J))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mean_in_a_graph_checks_every_entry_when_the_sum_overflows(dtype):
    """In a graph the sum of the result is checked first and every entry only when that sum
    is not finite: a finite mean near the dtype's largest number passes, one inf stops it."""
    J = np.full((3, 6), np.finfo(dtype).max / 2, dtype)
    J[:, 1:4:2] *= np.asarray(-0.75, dtype)  # a row sums to 1.125 times the largest number: inf
    with np.errstate(over="ignore"):
        assert np.isinf(np.add.reduce(J[0], dtype=dtype))
    compiled = tf.function(tf_agg.mean)
    np.testing.assert_allclose(compiled(tf.constant(J)).numpy(), J[0], rtol=4 * np.finfo(dtype).eps, atol=0)
    J[2, 0] = np.inf
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or inf"):
        compiled(tf.constant(J))
