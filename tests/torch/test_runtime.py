"""device() and seed_everything() in both frameworks."""

import numpy as np
import pytest

# ---------------------------------------------------------------- PyTorch

def _torch_training_run(seed: int) -> tuple[np.ndarray, list[float]]:
    import torch

    from mtl_course.torch import seed_everything

    seed_everything(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(16, 4)
    y = torch.randn(16, 2)
    losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model[0].weight.detach().numpy().copy(), losses


def test_torch_device_is_a_usable_device():
    import torch

    from mtl_course.torch import device

    dev = device()
    assert isinstance(dev, torch.device)
    assert dev.type in {"cuda", "mps", "cpu"}
    if torch.cuda.is_available():
        assert dev.type == "cuda"
    assert torch.ones(2, device=dev).sum().item() == 2.0


def test_torch_seed_everything_repeats_random_draws():
    import random

    import torch

    from mtl_course.torch import seed_everything

    def draws():
        assert seed_everything(123) is None
        return random.random(), np.random.rand(), torch.rand(3).tolist()

    first, second = draws(), draws()
    assert first == second
    seed_everything(124)
    assert torch.rand(3).tolist() != first[2]


def test_torch_seed_everything_repeats_a_training_run_bit_for_bit():
    weights_a, losses_a = _torch_training_run(7)
    weights_b, losses_b = _torch_training_run(7)
    np.testing.assert_array_equal(weights_a, weights_b)
    assert losses_a == losses_b
    assert losses_a[-1] < losses_a[0]  # it really trained
    weights_c, _ = _torch_training_run(8)
    assert not np.array_equal(weights_a, weights_c)


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "3", True])
def test_torch_seed_everything_rejects_bad_seeds(bad):
    from mtl_course.torch import seed_everything

    with pytest.raises((TypeError, ValueError), match="seed"):
        seed_everything(bad)


@pytest.mark.cuda
def test_torch_training_runs_on_cuda():
    import torch

    from mtl_course.torch import device

    assert device().type == "cuda"
    model = torch.nn.Linear(3, 1).to(device())
    loss = model(torch.ones(2, 3, device=device())).sum()
    loss.backward()
    assert model.weight.grad.device.type == "cuda"


# ------------------------------------------------------------- TensorFlow

def _tf_training_run(seed: int) -> tuple[np.ndarray, list[float]]:
    import keras
    import tensorflow as tf

    from mtl_course.tf import seed_everything

    seed_everything(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    x = tf.random.normal((16, 4))
    y = tf.random.normal((16, 2))
    losses = []
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        losses.append(float(loss))
    return model.layers[0].kernel.numpy().copy(), losses


def test_tf_device_is_a_device_string():
    import tensorflow as tf

    from mtl_course.tf import device

    dev = device()
    assert dev in {"/GPU:0", "/CPU:0"}
    assert (dev == "/GPU:0") == bool(tf.config.list_physical_devices("GPU"))
    with tf.device(dev):
        assert float(tf.reduce_sum(tf.ones(2))) == 2.0


def test_tf_seed_everything_repeats_random_draws():
    import random

    import tensorflow as tf

    from mtl_course.tf import seed_everything

    def draws():
        seed_everything(123)
        return random.random(), np.random.rand(), tf.random.uniform((3,)).numpy().tolist()

    assert draws() == draws()


def test_tf_seed_everything_repeats_a_training_run_bit_for_bit():
    weights_a, losses_a = _tf_training_run(7)
    weights_b, losses_b = _tf_training_run(7)
    np.testing.assert_array_equal(weights_a, weights_b)
    assert losses_a == losses_b
    assert losses_a[-1] < losses_a[0]
    weights_c, _ = _tf_training_run(8)
    assert not np.array_equal(weights_a, weights_c)


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, True])
def test_tf_seed_everything_rejects_bad_seeds(bad):
    from mtl_course.tf import seed_everything

    with pytest.raises((TypeError, ValueError), match="seed"):
        seed_everything(bad)


def test_tf_subpackage_sets_log_variables_before_tensorflow():
    import os
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "for k in ('TF_CPP_MIN_LOG_LEVEL', 'TF_ENABLE_ONEDNN_OPTS'): os.environ.pop(k, None)\n"
        "import mtl_course.tf\n"
        "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], os.environ['TF_ENABLE_ONEDNN_OPTS'])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "0"]
    assert result.stderr == "", f"TensorFlow start-up wrote to stderr: {result.stderr!r}"


def test_top_level_package_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys, mtl_course, mtl_course.data, mtl_course.metrics\n"
            "print('torch' in sys.modules, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
