"""The TensorFlow training loop, and end-to-end parity with the PyTorch loop.

Parity tolerance: both frameworks run the same float32 forward and backward
passes from identical weights with the same batches; the kernels sum in
different orders, so per-step losses agree to a few float32 ulps, growing
slowly with the steps (rtol 1e-5 over 5 steps).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch

import mtl_course.tf  # noqa: F401  (quiet TensorFlow before importing it)
import mtl_course.tf.train as tf_train
import mtl_course.torch.train as torch_train
from mtl_course.core.tasks import History, Task
from mtl_course.data.types import MultiTaskSplit
from mtl_course.parity import copy_torch_to_tf
from mtl_course.tf import weighting as tfw
from mtl_course.tf.models import HardSharing as TFHardSharing
from mtl_course.tf.models import mlp as tf_mlp
from mtl_course.torch import weighting as tw
from mtl_course.torch.models import HardSharing, mlp

TASKS = {"r": Task("mse"), "c": Task("cross_entropy"), "b": Task("bce")}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def problem(n: int = 48, seed: int = 0) -> MultiTaskSplit:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return MultiTaskSplit(x, {"r": (x @ np.array([1.0, -2.0, 0.5, 0.0])).astype(np.float32),
                              "c": (x[:, 0] + x[:, 1] > 0).astype(np.int64),
                              "b": (x[:, 2] > 0).astype(np.float32)})


def twins(seed: int = 0):
    torch.manual_seed(seed)
    torch_model = HardSharing(mlp([4, 8, 6]), {"r": mlp([6, 1]), "c": mlp([6, 2]), "b": mlp([6, 1])})
    keras.utils.set_random_seed(seed)
    tf_model = TFHardSharing(tf_mlp([4, 8, 6]), {"r": tf_mlp([6, 1]), "c": tf_mlp([6, 2]), "b": tf_mlp([6, 1])})
    tf_model(np.zeros((1, 4), np.float32))
    copy_torch_to_tf(torch_model, tf_model)
    return torch_model, tf_model


def without_time(history: History) -> dict:
    record = history.to_dict()
    record.pop("epoch_time")
    return record


@pytest.mark.parametrize("method", ["equal", "uncertainty", "gradnorm", "dwa", "rlw", "mgda"])
def test_five_sgd_steps_match_step_by_step_between_frameworks(method):
    data, val = problem(), problem(20, seed=1)
    torch_model, tf_model = twins()
    # batch_size = n: one step per epoch, so every history entry is one step's loss.
    common = dict(method=method, epochs=5, batch_size=len(data), optimizer="sgd", lr=0.05, val_data=val,
                  seed=3, progress=False)
    h_torch = torch_train.fit(torch_model, data, TASKS, device="cpu", **common)
    h_tf = tf_train.fit(tf_model, data, TASKS, device="/CPU:0", **common)
    for name in TASKS:
        np.testing.assert_allclose(h_tf.train_loss[name], h_torch.train_loss[name], rtol=1e-5)
        np.testing.assert_allclose(h_tf.val_loss[name], h_torch.val_loss[name], rtol=1e-5)
    # aggregator weights too (torch takes them from the rule, tf by least squares: equal to 1e-8)
    np.testing.assert_allclose(h_tf.weights, h_torch.weights, rtol=1e-5, atol=1e-8)
    assert h_tf.train_loss["r"][-1] < h_tf.train_loss["r"][0]
    out_torch = torch_train.predict(torch_model, val.x)
    out_tf = tf_train.predict(tf_model, val.x)
    for name in TASKS:
        np.testing.assert_allclose(out_tf[name], out_torch[name], rtol=1e-4, atol=1e-5)


def test_adam_steps_match_between_frameworks():
    # Keras Adam gets epsilon=1e-8 like torch's; the epsilon placement differs by
    # O(eps), far below the tolerance.
    data = problem()
    torch_model, tf_model = twins(seed=2)
    common = dict(method="equal", epochs=4, batch_size=len(data), lr=0.01, seed=0, progress=False)
    h_torch = torch_train.fit(torch_model, data, TASKS, device="cpu", **common)
    h_tf = tf_train.fit(tf_model, data, TASKS, device="/CPU:0", **common)
    for name in TASKS:
        np.testing.assert_allclose(h_tf.train_loss[name], h_torch.train_loss[name], rtol=1e-4)


def test_tf_fit_is_deterministic_and_history_has_the_torch_structure():
    data = problem()
    runs = []
    for _ in range(2):
        _, tf_model = twins()
        runs.append(tf_train.fit(tf_model, data, TASKS, method="rlw", epochs=2, batch_size=16, seed=9,
                                 val_data=data, progress=False))
    assert without_time(runs[0]) == without_time(runs[1])
    torch_model, _ = twins()
    h_torch = torch_train.fit(torch_model, data, TASKS, method="rlw", epochs=2, batch_size=16, seed=9,
                              val_data=data, progress=False, device="cpu")
    assert set(runs[0].to_dict()) == set(h_torch.to_dict())
    assert {k: len(v) for k, v in runs[0].val_metric.items()} == {k: len(v) for k, v in h_torch.val_metric.items()}


def test_tf_save_load_round_trip_is_exact_and_training_continues_identically(tmp_path):
    data = problem()
    _, model = twins()
    method = tfw.UncertaintyWeighting(["r", "c", "b"], kinds="classification")
    opt = keras.optimizers.Adam(learning_rate=1e-2)
    tf_train.fit(model, data, TASKS, method=method, epochs=2, optimizer=opt, progress=False)
    path = tmp_path / "checkpoint.npz"
    tf_train.save(path, model, method, opt)

    _, fresh = twins(seed=5)
    fresh_method = tfw.UncertaintyWeighting(["r", "c", "b"], kinds="classification")
    fresh_opt = keras.optimizers.Adam(learning_rate=1e-2)
    tf_train.load(path, fresh, fresh_method, fresh_opt)
    for name, out in tf_train.predict(model, data.x).items():
        np.testing.assert_array_equal(tf_train.predict(fresh, data.x)[name], out)
    np.testing.assert_array_equal(fresh_method.weights, method.weights)

    again = tf_train.fit(model, data, TASKS, method=method, epochs=2, optimizer=opt, progress=False)
    resumed = tf_train.fit(fresh, data, TASKS, method=fresh_method, epochs=2, optimizer=fresh_opt,
                           progress=False)
    assert without_time(again) == without_time(resumed)


def test_tf_load_rejects_a_different_architecture(tmp_path):
    _, model = twins()
    tf_train.save(tmp_path / "m.npz", model)
    other = TFHardSharing(tf_mlp([4, 8, 6]), {"r": tf_mlp([6, 1]), "c": tf_mlp([6, 3]), "b": tf_mlp([6, 1])})
    other(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="saved shape"):
        tf_train.load(tmp_path / "m.npz", other)


def test_tf_fit_names_the_task_with_a_non_finite_loss():
    data = problem(16)
    data.y["b"][0] = np.inf
    _, model = twins()
    with pytest.raises(ValueError, match="'b'"):
        tf_train.fit(model, data, TASKS, epochs=1, progress=False)


def test_weighting_parity_of_state_after_fit():
    data = problem()
    torch_model, tf_model = twins()
    t_method, f_method = tw.DWA(temperature=1.0), tfw.DWA(temperature=1.0)
    common = dict(epochs=4, batch_size=16, optimizer="sgd", lr=0.05, seed=1, progress=False)
    torch_train.fit(torch_model, data, TASKS, method=t_method, device="cpu", **common)
    tf_train.fit(tf_model, data, TASKS, method=f_method, **common)
    np.testing.assert_allclose(f_method.weights, t_method.weights, rtol=1e-5)
    assert not np.allclose(t_method.weights, 1.0)


@pytest.mark.parametrize("method", ["equal", "mgda"])
def test_soft_sharing_penalty_steps_match_between_frameworks(method):
    from mtl_course.tf.models import SoftSharing as TFSoftSharing
    from mtl_course.torch.models import SoftSharing

    data = problem(24)
    tasks = {"r": Task("mse"), "b": Task("bce")}
    torch.manual_seed(0)
    torch_model = SoftSharing({"r": mlp([4, 5, 1]), "b": mlp([4, 5, 1])}, strength=0.5)
    tf_model = TFSoftSharing({"r": tf_mlp([4, 5, 1]), "b": tf_mlp([4, 5, 1])}, strength=0.5)
    tf_model(np.zeros((1, 4), np.float32))
    copy_torch_to_tf(torch_model, tf_model)
    common = dict(method=method, epochs=3, batch_size=len(data), optimizer="sgd", lr=0.1, seed=0, progress=False)
    h_torch = torch_train.fit(torch_model, data, tasks, device="cpu", **common)
    h_tf = tf_train.fit(tf_model, data, tasks, **common)
    for name in tasks:
        np.testing.assert_allclose(h_tf.train_loss[name], h_torch.train_loss[name], rtol=1e-5)
    np.testing.assert_allclose(float(tf_model.penalty()), float(torch_model.penalty().detach()), rtol=1e-5)


def test_tf_fit_with_pcgrad_by_name_is_reproducible_from_its_seed():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    data = MultiTaskSplit(x, {"a": x[:, 0], "b": -x[:, 0] + x[:, 1], "c": x[:, 2] - x[:, 1]})
    tasks = {name: Task("mse") for name in "abc"}

    def run(seed: int) -> dict:
        keras.utils.set_random_seed(0)
        model = TFHardSharing(tf_mlp([4, 8]), {name: tf_mlp([8, 1]) for name in "abc"})
        return without_time(tf_train.fit(model, data, tasks, method="pcgrad", epochs=3,
                                         batch_size=16, lr=1e-1, seed=seed, progress=False))

    assert run(0) == run(0)
    assert run(0) != run(1)


@pytest.mark.parametrize("method", ["equal", "uncertainty", "dwa", "rlw", "upgrad", "pcgrad", "gradnorm"])
def test_fit_compiles_its_step(method, monkeypatch):
    """The model's Python call runs only while tracing (once per batch size), not at every step."""
    data = problem()  # 48 rows in batches of 20: sizes 20, 20, 8
    _, model = twins()
    calls = []
    original = type(model).call
    monkeypatch.setattr(type(model), "call", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    history = tf_train.fit(model, data, TASKS, method=method, epochs=4, batch_size=20, progress=False)
    # 12 steps: one call that checks the model's interface, two traces (batch sizes 20 and 8)
    assert len(calls) <= 3 < 12
    assert np.all(np.isfinite(history.train_loss["r"]))


@pytest.mark.parametrize("method", ["equal", "uncertainty", "rlw", "mgda", "gradnorm"])
def test_a_non_finite_loss_changes_no_variable_compiled_or_eager(method):
    data = problem(16)
    _, model = twins()
    model.heads["r"].layers[-1].bias.assign([np.nan])  # (a NaN target is a missing label)
    before = [v.numpy().copy() for v in model.trainable_variables]
    with pytest.raises(ValueError, match="'r'"):
        tf_train.fit(model, data, TASKS, method=method, epochs=1, batch_size=16, progress=False)
    for old, v in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(v.numpy(), old)


def _gradnorm_fit(dtype: str, eager: bool, monkeypatch, tasks=None, epochs: int = 6):
    """fit with GradNorm (Adam, batches of 16) on the compiled step or, forced, the eager one."""
    monkeypatch.setattr(tf_train, "_FORCE_EAGER", eager)
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        keras.utils.set_random_seed(0)
        model = TFHardSharing(tf_mlp([4, 8, 6]), {"r": tf_mlp([6, 1]), "c": tf_mlp([6, 2]), "b": tf_mlp([6, 1])})
        gradnorm = tfw.GradNorm(alpha=1.5, lr=0.05)
        data = problem()
        data = MultiTaskSplit(data.x.astype(dtype), data.y)
        history = tf_train.fit(model, data, tasks or TASKS, method=gradnorm, epochs=epochs, batch_size=16, lr=1e-2,
                               seed=1, progress=False)
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)
    return history, gradnorm, model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_gradnorm_step_matches_the_eager_step(dtype, monkeypatch):
    """Issue 17: GradNorm's update (Adam on dL_grad/dw, renormalised to sum T) runs in fit's graph.

    Same arithmetic as the eager numpy update (float64 on float64 losses and norms), so the weights
    agree to float64 rounding; the model's float32 steps may differ by a few ulps per step
    (graph vs eager kernels): rtol 1e-5 in float32, 1e-10 in float64, over 18 steps.
    """
    (h_c, g_c, m_c), (h_e, g_e, m_e) = (_gradnorm_fit(dtype, eager, monkeypatch) for eager in (False, True))
    tol = 1e-5 if dtype == "float32" else 1e-10
    assert np.ptp(np.array(h_c.weights)[:, 0]) > 0.05  # the weights moved: the test can fail
    np.testing.assert_allclose(h_c.weights, h_e.weights, rtol=tol)
    for name in TASKS:
        np.testing.assert_allclose(h_c.train_loss[name], h_e.train_loss[name], rtol=tol)
    np.testing.assert_allclose(g_c.weights.sum(), 3.0, rtol=1e-12)
    state_c, state_e = g_c.state_dict(), g_e.state_dict()
    assert state_c.keys() == state_e.keys() and int(state_c["adam_t"]) == int(state_e["adam_t"]) == 18
    for key in ("task_weights", "initial_losses", "adam_m", "adam_v"):
        np.testing.assert_allclose(state_c[key], state_e[key], rtol=tol, atol=1e-12, err_msg=key)
    for a, b in zip(m_c.trainable_variables, m_e.trainable_variables):
        assert a.dtype == dtype
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("eager", [False, True])
def test_gradnorm_negative_loss_raises_naming_the_task_compiled_or_eager(eager, monkeypatch):
    """A loss below zero (here a custom loss) has no GradNorm training rate: both steps raise the
    same error (here: at the first step, so about L_i(0))."""
    def signed(prediction, target):  # the mean error: negative when the head predicts low
        return tf_train.tf.reduce_mean(prediction[:, 0] - target) - 100.0

    tasks = {**TASKS, "b": Task(signed, metric="mse")}
    with pytest.raises(ValueError, match=r"GradNorm needs positive initial losses; task\(s\) \[2\]"):
        _gradnorm_fit("float32", eager, monkeypatch, tasks=tasks, epochs=1)
