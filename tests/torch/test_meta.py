"""Tests of Reptile and few-shot adaptation (mtl_course.torch.meta, mtl_course.tf.meta, mtl_course.core.meta)."""

from __future__ import annotations

import mtl_course.tf  # noqa: F401  (before tensorflow: quiets its start-up logs)

# isort: split
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_course import parity
from mtl_course.core.meta import check_examples, reptile_update
from mtl_course.data.families import SineFamily
from mtl_course.tf import meta as tf_meta
from mtl_course.tf.models import mlp as tf_mlp
from mtl_course.torch import meta
from mtl_course.torch.models import mlp
from mtl_course.torch.runtime import seed_everything

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def _linear(w: float, b: float) -> torch.nn.Linear:
    layer = torch.nn.Linear(1, 1)
    with torch.no_grad():
        layer.weight.fill_(w)
        layer.bias.fill_(b)
    return layer


def _numpy_sgd(w, b, x, y, steps, lr):
    """Independent reference: SGD on mean((w x + b - y)^2) for a scalar linear model, in float64."""
    for _ in range(steps):
        r = w * x + b - y
        w, b = w - lr * 2 * np.mean(r * x), b - lr * 2 * np.mean(r)
    return np.array([w, b])


def _tasks(rng, n_tasks=3, n=6):
    return [(rng.normal(size=(n, 1)).astype(np.float32), rng.normal(size=(n, 1)).astype(np.float32))
            for _ in range(n_tasks)]


def test_reptile_step_by_hand():
    # x = 1, y = 1 from w = b = 0: grad = 2 (0 - 1) (1, 1) = (-2, -2); alpha = 0.5 gives phi = (1, 1);
    # eps = 0.5 moves theta half way: (0.5, 0.5). The pre-adaptation loss is (0 - 1)^2 = 1.
    model = _linear(0.0, 0.0)
    loss = meta.reptile_step(model, [(np.ones((1, 1)), np.ones((1, 1)))], inner_steps=1, inner_lr=0.5, outer_lr=0.5)
    assert loss == 1.0
    assert model.weight.item() == 0.5 and model.bias.item() == 0.5


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 4), n_tasks=st.integers(1, 3),
       outer=st.floats(0.05, 1.0))
def test_reptile_step_matches_an_independent_numpy_computation(seed, steps, n_tasks, outer):
    rng = np.random.default_rng(seed)
    w0, b0 = rng.normal(size=2)
    tasks = _tasks(rng, n_tasks)
    model = _linear(w0, b0)
    w0, b0 = model.weight.item(), model.bias.item()  # as rounded to float32
    meta.reptile_step(model, tasks, inner_steps=steps, inner_lr=0.05, outer_lr=outer)
    theta = [np.array([w0, b0])]
    adapted = [[_numpy_sgd(w0, b0, x[:, 0].astype(np.float64), y[:, 0].astype(np.float64), steps, 0.05)]
               for x, y in tasks]
    (expected,) = reptile_update(theta, adapted, outer)
    np.testing.assert_allclose([model.weight.item(), model.bias.item()], expected, rtol=1e-5, atol=1e-6)


def test_reptile_with_one_task_and_unit_outer_rate_is_adaptation():
    rng = np.random.default_rng(3)
    seed_everything(0)
    model = mlp([1, 8, 1])
    (x, y), = _tasks(rng, 1)
    adapted = meta.adapt(model, x, y, steps=4, lr=0.05)
    meta.reptile_step(model, [(x, y)], inner_steps=4, inner_lr=0.05, outer_lr=1.0)
    for p, q in zip(model.parameters(), adapted.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_reptile_update_by_hand_and_errors():
    (new,) = reptile_update([np.zeros(2)], [[np.array([1.0, 1.0])], [np.array([-0.5, -0.5])]], 0.4)
    np.testing.assert_allclose(new, [0.1, 0.1])
    with pytest.raises(ValueError, match="empty"):
        reptile_update([np.zeros(2)], [], 0.4)
    with pytest.raises(ValueError, match="shapes"):
        reptile_update([np.zeros(2)], [[np.zeros(3)]], 0.4)
    with pytest.raises(ValueError, match="outer_lr"):
        reptile_update([np.zeros(2)], [[np.zeros(2)]], float("nan"))


def test_adapt_leaves_the_model_alone_and_fits_the_examples():
    seed_everything(0)
    model = mlp([1, 16, 1])
    before = [p.detach().clone() for p in model.parameters()]
    x = np.linspace(-1, 1, 8, dtype=np.float32)[:, None]
    y = 2 * x
    copy0 = meta.adapt(model, x, y, steps=0)
    adapted = meta.adapt(model, x, y, steps=200, lr=0.05)
    for p, q, r in zip(model.parameters(), before, copy0.parameters()):
        assert torch.equal(p, q) and torch.equal(p, r)
    loss = torch.nn.functional.mse_loss(adapted(torch.as_tensor(x)), torch.as_tensor(y)).item()
    start = torch.nn.functional.mse_loss(model(torch.as_tensor(x)), torch.as_tensor(y)).item()
    assert loss < 0.05 * start


def test_a_float64_model_adapts_and_meta_trains_in_float64():
    # x = 1, y = 1 from w = b = 0 as in test_reptile_step_by_hand, but with a float64 model: the
    # examples follow the model's dtype (before, they were always float32 and the model raised).
    model = _linear(0.0, 0.0).double()
    loss = meta.reptile_step(model, [(np.ones((1, 1)), np.ones((1, 1)))], inner_steps=1, inner_lr=0.5, outer_lr=0.5)
    assert loss == 1.0 and model.weight.dtype == torch.float64 and model.weight.item() == 0.5
    x = np.array([[0.1], [0.7]])
    tuned = meta.adapt(_linear(0.0, 0.0).double(), x, 3 * x, steps=3, lr=0.3)
    np.testing.assert_allclose([tuned.weight.item(), tuned.bias.item()],
                               _numpy_sgd(0.0, 0.0, x[:, 0], 3 * x[:, 0], 3, 0.3), rtol=1e-13)


def test_meta_learned_init_adapts_better_than_a_random_init():
    family = SineFamily()
    seed_everything(0)
    random_init = mlp([1, 32, 32, 1])
    seed_everything(0)
    meta_init = mlp([1, 32, 32, 1])

    def sample_task(rng):
        return family.sample(family.sample_tasks(1, rng)[0], 10, rng)

    meta.reptile(meta_init, sample_task, meta_steps=400, inner_steps=5, inner_lr=0.02, outer_lr=0.5,
                 seed=0, progress=False)
    rng = np.random.default_rng(123)
    grid = family.grid(50)
    errors = {"random": [], "meta": []}
    for task in family.sample_tasks(8, rng):
        x, y = family.sample(task, 10, rng)
        for name, init in (("random", random_init), ("meta", meta_init)):
            with torch.no_grad():
                pred = meta.adapt(init, x, y, steps=16, lr=0.01)(torch.as_tensor(grid)).numpy()
            errors[name].append(np.mean((pred - task(grid)) ** 2))
    assert np.mean(errors["meta"]) < 0.6 * np.mean(errors["random"])


def test_reptile_is_deterministic_and_returns_the_losses():
    family = SineFamily()

    def sample_task(rng):
        return family.sample(family.sample_tasks(1, rng)[0], 5, rng)

    runs = []
    for _ in range(2):
        seed_everything(1)
        model = mlp([1, 8, 1])
        losses = meta.reptile(model, sample_task, meta_steps=5, meta_batch_size=2, seed=4, progress=False)
        runs.append((losses, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0].shape == (5,) and np.all(np.isfinite(runs[0][0])) and np.all(runs[0][0] > 0)
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert all(torch.equal(p, q) for p, q in zip(runs[0][1], runs[1][1]))


@pytest.mark.parametrize("twin", ["torch", "tf"])
def test_bad_arguments_are_refused(twin):
    module, model = (meta, mlp([1, 4, 1])) if twin == "torch" else (tf_meta, tf_mlp([1, 4, 1]))
    x, y = np.zeros((3, 1), np.float32), np.zeros((3, 1), np.float32)
    with pytest.raises(ValueError, match="empty"):
        module.reptile_step(model, [])
    with pytest.raises(ValueError, match="2-D"):
        module.reptile_step(model, [(x, y[:, 0])])
    with pytest.raises(ValueError, match="rows"):
        module.adapt(model, x, y[:2])
    with pytest.raises(ValueError, match="NaN"):
        module.adapt(model, x, np.full((3, 1), np.nan))
    with pytest.raises(ValueError, match="predicts shape"):
        module.adapt(model, x, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="inner_steps"):
        module.reptile_step(model, [(x, y)], inner_steps=0)
    with pytest.raises(ValueError, match="inner_lr"):
        module.reptile_step(model, [(x, y)], inner_lr=-1.0)
    with pytest.raises(ValueError, match="steps"):
        module.adapt(model, x, y, steps=1.5)


@pytest.mark.parametrize("twin", ["torch", "tf"])
def test_a_diverging_inner_loop_raises_and_restores_the_weights(twin):
    module, model = (meta, mlp([1, 4, 1])) if twin == "torch" else (tf_meta, tf_mlp([1, 4, 1]))
    weights = lambda: [np.array(w) for w in (  # noqa: E731
        [p.detach().numpy() for p in model.parameters()] if twin == "torch" else model.get_weights())]
    before = weights()
    x = np.full((4, 1), 100.0, np.float32)
    with pytest.raises(ValueError, match="lower the learning rate"):
        module.reptile_step(model, [(x, x)], inner_steps=50, inner_lr=10.0)
    for a, b in zip(before, weights()):
        np.testing.assert_array_equal(a, b)


def _twins(seed=0, sizes=(1, 8, 8, 1)):
    seed_everything(seed)
    torch_model, tf_model = mlp(list(sizes)), tf_mlp(list(sizes))
    parity.copy_mlp(torch_model, tf_model)
    return torch_model, tf_model


def _assert_same_weights(torch_model, tf_model, atol=1e-5):
    for p, v in zip(torch_model.parameters(), tf_model.trainable_variables):
        w = p.detach().numpy()
        np.testing.assert_allclose(w.T if w.ndim == 2 else w, v.numpy(), rtol=1e-4, atol=atol)


def test_parity_of_one_outer_step_from_identical_weights():
    torch_model, tf_model = _twins()
    tasks = _tasks(np.random.default_rng(0), n_tasks=3)
    loss_t = meta.reptile_step(torch_model, tasks, inner_steps=3, inner_lr=0.05, outer_lr=0.5)
    loss_k = tf_meta.reptile_step(tf_model, tasks, inner_steps=3, inner_lr=0.05, outer_lr=0.5)
    assert loss_t == pytest.approx(loss_k, rel=1e-5)
    _assert_same_weights(torch_model, tf_model)


def test_parity_of_reptile_and_adapt():
    torch_model, tf_model = _twins(1)
    family = SineFamily()

    def sample_task(rng):
        return family.sample(family.sample_tasks(1, rng)[0], 5, rng)

    lt = meta.reptile(torch_model, sample_task, meta_steps=3, meta_batch_size=2, inner_steps=2, seed=7,
                      progress=False)
    lk = tf_meta.reptile(tf_model, sample_task, meta_steps=3, meta_batch_size=2, inner_steps=2, seed=7,
                         progress=False)
    np.testing.assert_allclose(lt, lk, rtol=1e-4)
    _assert_same_weights(torch_model, tf_model)
    x, y = sample_task(np.random.default_rng(9))
    adapted_t, adapted_k = meta.adapt(torch_model, x, y, 5, 0.01), tf_meta.adapt(tf_model, x, y, 5, 0.01)
    _assert_same_weights(adapted_t, adapted_k)
    _assert_same_weights(torch_model, tf_model)  # the originals are unchanged in both


def test_check_examples_casts_to_float32():
    x, y = check_examples(np.zeros((2, 1), np.float64), np.ones((2, 3), np.int64))
    assert x.dtype == y.dtype == np.float32 and y.shape == (2, 3)
    with pytest.raises(TypeError, match="numeric"):
        check_examples(np.array([["a"]]), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="no examples"):
        check_examples(np.zeros((0, 1)), np.zeros((0, 1)))


def _eager_sgd(model, x, y, steps, lr):
    """Reference for the compiled TF inner loop: plain eager full-batch SGD on the MSE, step by step."""
    import tensorflow as tf

    x, y = tf.constant(x), tf.constant(y)
    losses = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        losses.append(float(loss))
        for v, g in zip(model.trainable_variables, tape.gradient(loss, model.trainable_variables)):
            v.assign_sub(lr * g)
    return losses


def test_tf_compiled_inner_loop_matches_eager_sgd_and_traces_once():
    _, model = _twins(2, sizes=(1, 16, 16, 1))
    reference = tf_mlp([1, 16, 16, 1])
    reference.set_weights(model.get_weights())
    (x, y), = _tasks(np.random.default_rng(4), 1, n=10)
    adapted = tf_meta.adapt(model, x, y, steps=40, lr=0.05)
    _eager_sgd(reference, x, y, 40, 0.05)
    for a, b in zip(adapted.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(adapted.get_weights()[0], model.get_weights()[0])  # it did train
    # the pre-adaptation loss of reptile_step is the eager loop's first loss
    reference.set_weights(model.get_weights())
    first = _eager_sgd(reference, x, y, 1, 0.05)[0]
    assert tf_meta.reptile_step(model, [(x, y)], inner_steps=3, inner_lr=0.05) == pytest.approx(first, rel=1e-6)
    # new step counts and rates are tensors: the loop is traced once per model and input shape
    loop = tf_meta._COMPILED[model][1]
    traces = loop.experimental_get_tracing_count()
    for steps, lr in [(1, 0.01), (7, 0.03), (2, 0.2)]:
        tf_meta.reptile_step(model, [(x, y)], inner_steps=steps, inner_lr=lr)
        tf_meta.adapt(model, x, y, steps=steps, lr=lr)
    assert loop.experimental_get_tracing_count() == traces


def test_tf_compiled_inner_loop_stops_at_the_first_non_finite_loss():
    _, model = _twins(3, sizes=(1, 4, 1))
    x = np.full((4, 1), 100.0, np.float32)
    reference = tf_mlp([1, 4, 1])
    reference.set_weights(model.get_weights())
    with np.errstate(all="ignore"):
        eager = _eager_sgd(reference, x, x, 50, 10.0)
    first_bad = next(i for i, value in enumerate(eager) if not np.isfinite(value))
    with pytest.raises(ValueError, match=f"at SGD step {first_bad}: lower the learning rate"):
        tf_meta.adapt(model, x, x, steps=50, lr=10.0)
