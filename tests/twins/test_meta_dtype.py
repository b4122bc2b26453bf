"""Both meta-learning twins work in the model's dtype: float64 in, float64 out (float32 too).

Before, the TensorFlow twin always made float32 examples, so a float64 Keras model
raised a TypeError inside its compiled SGD loop, while the PyTorch twin followed the
model's dtype. Each public function of :mod:`mtl_course.tf.meta` (``reptile_step``,
``reptile``, ``adapt``) is checked against its PyTorch twin from identical weights, in
float64 (to 1e-12: the same arithmetic in a different order) and float32, and against
an independent float64 numpy computation.
"""

from __future__ import annotations

import mtl_course.tf  # noqa: F401  (before tensorflow: quiets its start-up logs)

# isort: split
import keras
import numpy as np
import pytest
import torch

from mtl_course import parity
from mtl_course.core.meta import check_examples
from mtl_course.tf import meta as tf_meta
from mtl_course.torch import meta as torch_meta
from mtl_course.torch.models import mlp
from mtl_course.torch.runtime import seed_everything

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)

DTYPES = {"float64": (torch.float64, 1e-12), "float32": (torch.float32, 1e-5)}


def _keras_mlp(sizes, dtype: str) -> keras.Sequential:
    """``mtl_course.tf.models.mlp`` in ``dtype`` (built with explicit layer dtypes, not the global floatx)."""
    layers = [keras.Input(shape=(sizes[0],), dtype=dtype)]
    for i, d_out in enumerate(sizes[1:]):
        layers.append(keras.layers.Dense(d_out, activation="relu" if i < len(sizes) - 2 else None, dtype=dtype))
    return keras.Sequential(layers)


def _twins(dtype: str, seed: int = 0, sizes=(1, 8, 8, 1)):
    seed_everything(seed)
    torch_model = mlp(list(sizes)).to(DTYPES[dtype][0])
    tf_model = _keras_mlp(sizes, dtype)
    parity.copy_mlp(torch_model, tf_model)
    return torch_model, tf_model


def _assert_twins(torch_model, tf_model, dtype: str) -> None:
    """Same weights to the dtype's tolerance, and both still in ``dtype``."""
    rtol = DTYPES[dtype][1]
    for p, v in zip(torch_model.parameters(), tf_model.trainable_variables):
        assert p.dtype == DTYPES[dtype][0] and keras.backend.standardize_dtype(v.dtype) == dtype
        w = p.detach().numpy()
        np.testing.assert_allclose(w.T if w.ndim == 2 else w, v.numpy(), rtol=rtol, atol=rtol)


def _tasks(seed: int, n_tasks: int = 3, n: int = 6):
    """float64 examples whose values float32 cannot hold exactly."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n, 1)), rng.normal(size=(n, 1))) for _ in range(n_tasks)]


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_reptile_step_twins_agree_in_the_models_dtype(dtype):
    torch_model, tf_model = _twins(dtype)
    tasks = _tasks(0)
    loss_t = torch_meta.reptile_step(torch_model, tasks, inner_steps=3, inner_lr=0.05, outer_lr=0.5)
    loss_k = tf_meta.reptile_step(tf_model, tasks, inner_steps=3, inner_lr=0.05, outer_lr=0.5)
    assert loss_k == pytest.approx(loss_t, rel=DTYPES[dtype][1])
    _assert_twins(torch_model, tf_model, dtype)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_reptile_and_adapt_twins_agree_in_the_models_dtype(dtype):
    torch_model, tf_model = _twins(dtype, seed=1)

    def sample_task(rng):
        x = rng.uniform(-1, 1, size=(5, 1))
        return x, np.sin(3 * x + rng.uniform(0, 3))

    lt = torch_meta.reptile(torch_model, sample_task, meta_steps=3, meta_batch_size=2, inner_steps=2, seed=7,
                            progress=False)
    lk = tf_meta.reptile(tf_model, sample_task, meta_steps=3, meta_batch_size=2, inner_steps=2, seed=7,
                         progress=False)
    np.testing.assert_allclose(lk, lt, rtol=DTYPES[dtype][1])
    _assert_twins(torch_model, tf_model, dtype)
    x, y = sample_task(np.random.default_rng(9))
    for steps in (0, 5):
        adapted_t, adapted_k = torch_meta.adapt(torch_model, x, y, steps, 0.1), tf_meta.adapt(tf_model, x, y, steps, 0.1)
        _assert_twins(adapted_t, adapted_k, dtype)
        prediction = adapted_k(x).numpy()
        assert prediction.dtype == np.dtype(dtype)
        np.testing.assert_allclose(prediction, adapted_t(torch.as_tensor(x, dtype=DTYPES[dtype][0])).detach().numpy(),
                                   rtol=DTYPES[dtype][1], atol=DTYPES[dtype][1])
    _assert_twins(torch_model, tf_model, dtype)  # the originals are unchanged in both


def _numpy_sgd(w, b, x, y, steps, lr):
    """Independent reference: SGD on mean((w x + b - y)^2) for a scalar linear model, in float64."""
    for _ in range(steps):
        r = w * x + b - y
        w, b = w - lr * 2 * np.mean(r * x), b - lr * 2 * np.mean(r)
    return np.array([w, b])


def test_a_float64_keras_model_adapts_and_meta_trains_in_float64():
    """The examples are not rounded to float32 on the way: 0.1 and 0.7 are not float32 numbers,
    and the result matches float64 numpy to 1e-13 (float32 examples would move it by ~1e-8)."""
    model = _keras_mlp((1, 1), "float64")
    model.set_weights([np.zeros((1, 1)), np.zeros(1)])
    loss = tf_meta.reptile_step(model, [(np.ones((1, 1)), np.ones((1, 1)))], inner_steps=1, inner_lr=0.5,
                                outer_lr=0.5)
    assert loss == 1.0 and [w.tolist() for w in model.get_weights()] == [[[0.5]], [0.5]]
    x = np.array([[0.1], [0.7]])
    model.set_weights([np.zeros((1, 1)), np.zeros(1)])
    tuned = tf_meta.adapt(model, x, 3 * x, steps=3, lr=0.3)
    kernel, bias = tuned.get_weights()
    assert kernel.dtype == bias.dtype == np.float64
    np.testing.assert_allclose([kernel.item(), bias.item()], _numpy_sgd(0.0, 0.0, x[:, 0], 3 * x[:, 0], 3, 0.3),
                               rtol=1e-13)
    assert [w.item() for w in model.get_weights()] == [0.0, 0.0]  # adapt leaves the model alone


def test_check_examples_keeps_float64_when_asked():
    x, y = check_examples(np.array([[0.1], [0.7]]), np.array([[1], [2]]), float64=True)
    assert x.dtype == y.dtype == np.float64 and x[0, 0] == 0.1 and y[1, 0] == 2.0
    x32, _ = check_examples(np.array([[0.1], [0.7]]), np.array([[1], [2]]))
    assert x32.dtype == np.float32 and float(x32[0, 0]) != 0.1  # the default rounds to float32
