"""The Keras twin on your own data (issue 19, issue 14 items 11-14), and parity with PyTorch:
missing labels, ``wrap``, ``backward``, tf.data input, training hooks, bad input."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

import mtl_course.tf  # noqa: F401  (quiet TensorFlow before importing it)
from mtl_course import tf as mtl
from mtl_course import torch as mtl_torch
from mtl_course.core.tasks import Task
from mtl_course.parity import copy_torch_to_tf
from mtl_course.tf.train import task_loss
from mtl_course.torch.train import task_loss as torch_task_loss
from tests.torch.test_own_data import TASKS, tabular

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def hard(seed: int = 0):
    keras.utils.set_random_seed(seed)
    model = mtl.HardSharing(mtl.mlp((6, 16)), {"price": mtl.mlp((16, 1)), "click": mtl.mlp((16, 1)),
                                                "kind": mtl.mlp((16, 5))})
    model(np.zeros((1, 6), np.float32))
    return model


def twins(seed: int = 0):
    torch.manual_seed(seed)
    torch_model = mtl_torch.HardSharing(mtl_torch.mlp((6, 16)), {
        "price": mtl_torch.mlp((16, 1)), "click": mtl_torch.mlp((16, 1)), "kind": mtl_torch.mlp((16, 5))})
    tf_model = hard(seed)
    copy_torch_to_tf(torch_model, tf_model)
    return torch_model, tf_model


# ------------------------------------------------------------------ missing labels

@pytest.mark.parametrize("loss", ["mse", "bce", "cross_entropy"])
def test_masked_loss_equals_the_loss_on_the_labelled_rows_and_the_torch_twin(loss):
    rng = np.random.default_rng(0)
    pred = (rng.normal(size=(10, 3 if loss == "cross_entropy" else 1)) * 1e3).astype(np.float32)
    target = (rng.integers(0, 3, 10) if loss == "cross_entropy" else rng.integers(0, 2, 10).astype(np.float32))
    mask = np.array([True, False] * 5)
    p = tf.Variable(pred)
    raw = target.copy()  # unlabelled entries as a user's loop passes them: -1 or NaN
    raw[~mask] = -1 if loss == "cross_entropy" else np.nan
    with tf.GradientTape() as tape:
        masked = task_loss("t", Task(loss), p, tf.constant(raw), tf.constant(mask))
    grad = tape.gradient(masked, p).numpy()
    assert np.isfinite(grad).all()
    rows = task_loss("t", Task(loss), tf.constant(pred[mask]), tf.constant(target[mask]))
    np.testing.assert_allclose(float(masked), float(rows), rtol=1e-6)
    assert np.all(grad[~mask] == 0)
    twin = torch_task_loss("t", Task(loss), torch.as_tensor(pred), torch.as_tensor(target), torch.as_tensor(mask))
    np.testing.assert_allclose(float(masked), float(twin), rtol=1e-6)
    empty = task_loss("t", Task(loss), p, tf.constant(target), tf.zeros(10, tf.bool))
    assert float(empty) == 0.0


@pytest.mark.parametrize("method", ["equal", "upgrad"])
def test_30_percent_missing_labels_train_like_the_torch_twin(method):
    """Before: NaN targets raised "non-finite loss" and -1 labels trained on garbage."""
    x, y, _ = tabular(n=96)
    y["kind"][::5] = -1
    tasks = {**TASKS, "kind": Task("cross_entropy", ignore_label=-1)}
    torch_model, tf_model = twins()
    common = dict(method=method, epochs=4, batch_size=32, optimizer="sgd", lr=0.05, val_data=(x, y), progress=False)
    h_torch = mtl_torch.fit(torch_model, (x, y), tasks, device="cpu", **common)
    h_tf = mtl.fit(tf_model, (x, y), tasks, device="/CPU:0", **common)
    for name in tasks:
        np.testing.assert_allclose(h_tf.train_loss[name], h_torch.train_loss[name], rtol=1e-5)
        np.testing.assert_allclose(h_tf.val_metric[name], h_torch.val_metric[name], rtol=1e-5)
    np.testing.assert_allclose(h_tf.weights, h_torch.weights, rtol=1e-4, atol=1e-7)
    assert h_tf.train_loss["price"][-1] < h_tf.train_loss["price"][0]


def test_30_percent_missing_equals_training_on_the_labelled_rows_only():
    x, y, gone = tabular(missing=0.3)

    def run(data):
        keras.utils.set_random_seed(1)
        model = mtl.HardSharing(mtl.mlp((6, 8)), {"price": mtl.mlp((8, 1))})
        mtl.fit(model, data, {"price": "mse"}, epochs=5, batch_size=1000, lr=1e-2, optimizer="sgd",
                progress=False, device="/CPU:0")
        return [v.numpy() for v in model.weights]

    for a, b in zip(run((x, {"price": y["price"]})), run((x[~gone], {"price": y["price"][~gone]}))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_evaluate_scores_the_labelled_rows_only_and_names_its_metrics():
    x, y, gone = tabular()
    model = hard()
    scores, losses = mtl.evaluate(model, (x, y), TASKS, return_losses=True)
    only, only_losses = mtl.evaluate(model, (x[~gone], {"price": y["price"][~gone]}), {"price": "mse"},
                                     return_losses=True)
    assert scores["price"] == pytest.approx(only["price"], rel=1e-6)
    assert losses["price"] == pytest.approx(only_losses["price"], rel=1e-6)
    assert scores.metrics == {"price": "mse", "click": "auc", "kind": "accuracy"}


def test_a_batch_without_labels_leaves_the_task_out_of_the_aggregation():
    x, y, _ = tabular(n=64)
    first = {k: v[:32].copy() for k, v in y.items()}
    first["price"][:] = np.nan
    data = tf.data.Dataset.from_tensor_slices((x[32:], {k: v[32:] for k, v in y.items()})).batch(32).concatenate(
        tf.data.Dataset.from_tensor_slices((x[:32], first)).batch(32))
    history = mtl.fit(hard(), data, TASKS, method="mgda", epochs=1, progress=False, device="/CPU:0")
    assert history.weights[0][0] == 0.0 and sum(history.weights[0]) == pytest.approx(1.0)


# ---------------------------------------------------------------- bad input (issue 14)

def test_empty_evaluation_data_is_refused_or_empty():
    model = hard()
    empty = (np.zeros((0, 6), np.float32), {"price": np.zeros(0), "click": np.zeros(0), "kind": np.zeros(0)})
    out = mtl.predict(model, empty[0])
    assert {k: v.shape for k, v in out.items()} == {"price": (0, 1), "click": (0, 1), "kind": (0, 5)}
    with pytest.raises(ValueError, match="evaluation data is empty"):
        mtl.evaluate(model, empty, TASKS)
    x, y, _ = tabular(n=16)
    with pytest.raises(ValueError, match="validation data is empty"):
        mtl.fit(model, (x, y), TASKS, epochs=1, val_data=empty, progress=False)


def test_save_is_atomic_and_load_says_to_build_the_model(tmp_path, monkeypatch):
    model = hard()
    path = tmp_path / "ckpt.npz"
    mtl.save(path, model)
    good = path.read_bytes()

    def failing_savez(f, **arrays):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="No space"):
        mtl.save(path, hard(seed=1))
    monkeypatch.undo()
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["ckpt.npz"]
    # Before: "saved 10 model variables, the model has 4" for a model not called yet
    fresh = mtl.HardSharing(keras.Sequential([keras.layers.Dense(16)]), {"price": keras.layers.Dense(1),
                                                                         "click": keras.layers.Dense(1),
                                                                         "kind": keras.layers.Dense(5)})
    with pytest.raises(ValueError, match="call it once on a batch"):
        mtl.load(path, fresh)
    fresh(np.zeros((1, 6), np.float32))
    mtl.load(path, fresh)
    np.testing.assert_array_equal(fresh.trainable_variables[0].numpy(), model.trainable_variables[0].numpy())


@pytest.mark.parametrize("task, values, message", [
    ("kind", [0, 1.9, 2], "integer class indices"),
    ("kind", [0, 7, 2], "at least 8 output columns"),
    ("click", [0, 2, 1], r"in \[0, 1\]"),
])
def test_invalid_labels_are_refused(task, values, message):
    x, y, _ = tabular(n=30)
    y = {k: v.astype(np.float64) for k, v in y.items()}
    y[task][:3] = values
    with pytest.raises(ValueError, match=f"task '{task}'.*{message}"):
        mtl.fit(hard(), (x, y), TASKS, epochs=1, progress=False)


def test_your_own_weighting_logs_its_weights():
    class InverseLoss(mtl.Weighting):
        def compute_weights(self, losses):
            return len(losses) * (1 / losses) / (1 / losses).sum()

    x, y, _ = tabular(n=64)
    history = mtl.fit(hard(), (x, y), TASKS, method=InverseLoss(), epochs=2, progress=False)
    last = np.array(history.weights[-1])
    assert not np.allclose(last, 1.0) and last.sum() == pytest.approx(3.0)


# ------------------------------------------------------------------------ your own model

def functional_net():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    z = keras.layers.Dense(16, activation="relu", name="trunk")(inputs)
    return keras.Model(inputs, [keras.layers.Dense(1)(z), keras.layers.Dense(1)(z), keras.layers.Dense(5)(z)])


def test_model_interface_is_checked_and_wrap_makes_your_model_fit():
    x, y, _ = tabular(n=64)
    net = functional_net()
    with pytest.raises(TypeError, match="must return a dict.*wrap"):
        mtl.fit(net, (x, y), TASKS, epochs=1, progress=False)
    model = mtl.wrap(net, list(TASKS), shared=net.get_layer("trunk"))
    assert len(model.shared_parameters()) == 2
    history = mtl.fit(model, (x, y), TASKS, method="upgrad", epochs=2, progress=False)
    assert len(history.weights[-1]) == 3 and np.isfinite(history.train_loss["kind"]).all()


def test_mmoe_and_ple_take_tower_sizes_and_tower_layers():
    tower = mtl.mlp((8, 3, 5))
    for model in (mtl.MMoE(6, 3, 8, {"price": 1, "kind": tower}, tower_hidden={"price": (4, 2)}),
                  mtl.PLE(6, {"price": 1, "kind": tower}, 1, 1, 8, tower_hidden={"price": (4, 2)})):
        out = model(np.ones((2, 6), np.float32))
        assert out["kind"].shape == (2, 5) and out["price"].shape == (2, 1)
        assert model.towers["kind"] is tower
        assert [layer.units for layer in model.towers["price"].layers] == [4, 2, 1]


# -------------------------------------------------------------------------- your own loop

def test_backward_matches_the_torch_twin():
    torch_model, tf_model = twins()
    x, y, _ = tabular(n=32, missing=0.0)
    xt = torch.as_tensor(x)
    out = torch_model(xt)
    losses = [torch_task_loss(n, TASKS[n], out[n], torch.as_tensor(y[n]).to(torch.int64 if n == "kind" else torch.float32))
              for n in TASKS]
    w_torch = mtl_torch.backward(losses, torch_model.shared_parameters(), "upgrad")
    with tf.GradientTape(persistent=True) as tape:
        out = tf_model(x)
        tf_losses = [task_loss(n, TASKS[n], out[n], tf.constant(y[n].astype(np.int64) if n == "kind" else y[n]))
                     for n in TASKS]
    pairs, w_tf = mtl.backward(tape, tf_losses, tf_model.shared_parameters(), "upgrad")
    np.testing.assert_allclose(w_tf, w_torch, rtol=1e-4)
    def raw(v):  # the tape hands back the tf.Variables inside Keras variables
        return getattr(v, "_value", v)

    grads = {id(raw(v)): g for g, v in pairs}
    assert len(pairs) == len(tf_model.trainable_variables)
    # the first shared kernel (Keras stores it transposed) and the 5-class head's kernel
    np.testing.assert_allclose(grads[id(raw(tf_model.shared_parameters()[0]))].numpy(),
                               torch_model.shared_parameters()[0].grad.numpy().T, rtol=1e-4, atol=1e-6)
    head = tf_model.task_parameters("kind")[0]
    np.testing.assert_allclose(grads[id(raw(head))].numpy(), torch_model.heads["kind"][0].weight.grad.numpy().T,
                               rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="persistent"):
        with tf.GradientTape() as plain:
            out = tf_model(x)
            loss = tf.reduce_mean(out["price"])
        mtl.backward(plain, [loss], tf_model.shared_parameters(), "mean")


# ------------------------------------------------------------------- data and training loop

def test_a_dataset_trains_like_the_arrays_and_hooks_work():
    x, y, _ = tabular(n=64)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    h_data = mtl.fit(hard(), data, TASKS, epochs=3, lr=1e-2, val_data=data, progress=False)
    h_arrays = mtl.fit(hard(), (x, y), TASKS, epochs=3, batch_size=64, lr=1e-2, val_data=(x, y), progress=False)
    for name in TASKS:
        np.testing.assert_allclose(h_data.train_loss[name], h_arrays.train_loss[name], rtol=1e-5)
        np.testing.assert_allclose(h_data.val_metric[name], h_arrays.val_metric[name], rtol=1e-5)

    opt = keras.optimizers.SGD(0.1)
    mtl.fit(hard(), (x, y), TASKS, epochs=3, optimizer=opt, scheduler=lambda epoch, lr: lr / 2, progress=False)
    assert float(opt.learning_rate) == pytest.approx(0.1 / 8)

    model = hard()
    start = np.concatenate([v.numpy().ravel() for v in model.trainable_variables])
    mtl.fit(model, (x, y), TASKS, epochs=1, batch_size=64, optimizer="sgd", lr=1.0, clip_grad_norm=1e-3,
            progress=False)
    moved = np.concatenate([v.numpy().ravel() for v in model.trainable_variables]) - start
    assert np.linalg.norm(moved) == pytest.approx(1e-3, rel=1e-3)

    assert mtl.fit(hard(), (x, y), TASKS, epochs=10, callback=lambda e, h: e == 1, progress=False).epochs == 2

    states, val = [], tabular(n=64, seed=1)[:2]
    model = hard()
    history = mtl.fit(model, (x, y), TASKS, epochs=40, lr=0.05, val_data=val, patience=2, monitor="kind",
                      callback=lambda e, h: states.append([v.numpy().copy() for v in model.weights]), progress=False)
    best = history.best_epoch
    assert best == int(np.argmax(history.val_metric["kind"])) and history.epochs - 1 - best == 2
    for v, saved in zip(model.weights, states[best]):
        np.testing.assert_array_equal(v.numpy(), saved)


def test_predict_gives_probabilities_like_the_torch_twin():
    torch_model, tf_model = twins()
    x, _, _ = tabular(n=8)
    p_tf = mtl.predict(tf_model, x, tasks=TASKS)
    p_torch = mtl_torch.predict(torch_model, x, tasks=TASKS)
    for name in TASKS:
        np.testing.assert_allclose(p_tf[name], p_torch[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p_tf["kind"].sum(1), 1.0, rtol=1e-6)


def test_the_gradients_submodule_is_not_shadowed():
    """Before: ``import mtl_course.tf.jacobian as J`` gave the function ``jacobian``."""
    import mtl_course.tf.gradients as G

    assert G.jacobian is mtl.jacobian and G.backward is mtl.backward


def test_a_custom_loss_gets_the_labelled_rows_only():
    task = Task(lambda p, t: tf.reduce_mean((p[:, 0] - t) ** 2), metric="mse")
    pred = tf.constant([[1.0], [2.0], [3.0]])
    target = np.array([0.0, np.nan, 1.0], np.float32)
    mask = tf.constant([True, False, True])
    assert float(task_loss("t", task, pred, tf.constant(target), mask)) == pytest.approx((1 + 4) / 2)
