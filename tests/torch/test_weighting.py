"""Loss weightings: the numpy rules (core) and the PyTorch classes, on hand-computed cases."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_course.core import weighting as core
from mtl_course.torch.weighting import (
    DWA,
    RLW,
    EqualWeighting,
    GradNorm,
    StaticWeighting,
    UncertaintyWeighting,
)


def losses(*values: float, names: str = "abc") -> dict[str, torch.Tensor]:
    return {names[i]: torch.tensor(v, requires_grad=True) for i, v in enumerate(values)}


def roundtrip(module: torch.nn.Module, fresh: torch.nn.Module) -> torch.nn.Module:
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    return fresh


# ------------------------------------------------------------ equal / static
def test_equal_weighting_is_the_sum_with_unit_weights():
    weighting = EqualWeighting()
    total = weighting(losses(2.0, 3.0, 0.5))
    assert total.item() == pytest.approx(5.5)
    np.testing.assert_array_equal(weighting.weights, [1.0, 1.0, 1.0])
    assert weighting.task_names == ("a", "b", "c")


def test_static_weighting_reorders_a_dict_and_accepts_a_sequence():
    weighting = StaticWeighting({"b": 2.0, "a": 0.5})
    total = weighting({"a": torch.tensor(4.0), "b": torch.tensor(1.0)})
    assert total.item() == pytest.approx(0.5 * 4.0 + 2.0 * 1.0)
    np.testing.assert_array_equal(weighting.weights, [2.0, 0.5])
    by_position = StaticWeighting([1.0, 3.0])
    assert by_position([torch.tensor(1.0), torch.tensor(2.0)]).item() == pytest.approx(7.0)


# --------------------------------------------------------------- uncertainty
def test_uncertainty_total_and_gradients_by_hand():
    weighting = UncertaintyWeighting(["a", "b"], kinds=("regression", "classification"))
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([0.0, math.log(2.0)]))
    la, lb = torch.tensor(2.0, requires_grad=True), torch.tensor(3.0, requires_grad=True)
    total = weighting({"a": la, "b": lb})
    # a: exp(0) * 2 / 2 + 0 / 2 = 1;  b: exp(-log 2) * 3 + log(2) / 2 = 1.5 + 0.3466
    assert total.item() == pytest.approx(1.0 + 1.5 + math.log(2.0) / 2, rel=1e-6)
    total.backward()
    # d/ds (c e^-s L + s/2) = -c e^-s L + 1/2
    np.testing.assert_allclose(weighting.log_vars.grad.numpy(), [-1.0 + 0.5, -1.5 + 0.5], rtol=1e-6)
    # d/dL = c e^-s: the effective weights
    np.testing.assert_allclose([la.grad.item(), lb.grad.item()], [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(weighting.weights, [0.5, 0.5], rtol=1e-6)


def test_uncertainty_optimum_by_hand():
    np.testing.assert_allclose(core.uncertainty_optimum([2.0, 2.0], ["regression", "classification"]),
                               [math.log(2.0), math.log(4.0)])
    with pytest.raises(ValueError, match="positive"):
        core.uncertainty_optimum([0.0])


@settings(max_examples=30, deadline=None)
@given(loss=st.floats(1e-3, 1e3), kind=st.sampled_from(core.KINDS))
def test_uncertainty_optimum_is_a_stationary_minimum(loss, kind):
    s_star = float(core.uncertainty_optimum([loss], kind)[0])
    weighting = UncertaintyWeighting(1, kinds=kind)
    with torch.no_grad():
        weighting.log_vars.fill_(s_star)
    total = weighting([torch.tensor(loss, dtype=torch.float64)])
    total.backward()
    assert abs(weighting.log_vars.grad.item()) < 1e-4
    # effective weight 1 / (2 L) at the optimum
    assert weighting.weights[0] == pytest.approx(1.0 / (2.0 * loss), rel=1e-5)
    for shift in (-0.1, 0.1):
        c = 0.5 if kind == "regression" else 1.0
        value = lambda s, c=c: c * math.exp(-s) * loss + s / 2  # noqa: E731
        assert value(s_star + shift) > value(s_star)


# ----------------------------------------------------------------------- DWA
def test_dwa_weights_from_a_loss_history_by_hand():
    history = np.array([[1.0, 2.0], [0.5, 1.8]])
    # r = (0.5, 0.9); w = 2 * softmax(r / 2)
    e = np.exp([0.25, 0.45])
    expected = 2 * e / e.sum()
    np.testing.assert_allclose(core.dwa_weights(history, 2.0), expected)
    np.testing.assert_allclose(expected, [0.900332, 1.099668], atol=1e-6)  # 2 / (1 + e^0.2)
    np.testing.assert_array_equal(core.dwa_weights(history[:1]), [1.0, 1.0])


def test_dwa_uses_epoch_averages_and_starts_at_one():
    weighting = DWA(temperature=2.0)
    epochs = [[(1.0, 2.0), (1.0, 2.0)], [(0.4, 1.6), (0.6, 2.0)], [(0.1, 0.1)]]
    seen = []
    for epoch in epochs:
        for a, b in epoch:
            total = weighting(losses(a, b))
        seen.append(weighting.weights)
        weighting.end_epoch()
    np.testing.assert_array_equal(seen[0], [1.0, 1.0])
    np.testing.assert_array_equal(seen[1], [1.0, 1.0])
    np.testing.assert_allclose(seen[2], core.dwa_weights(np.array([[1.0, 2.0], [0.5, 1.8]])), rtol=1e-6)
    assert total.item() == pytest.approx(float(seen[2] @ np.array([0.1, 0.1])), rel=1e-6)


@settings(max_examples=30, deadline=None)
@given(history=st.lists(st.lists(st.floats(1e-3, 1e3), min_size=3, max_size=3), min_size=2, max_size=4),
       temperature=st.floats(0.1, 10.0))
def test_dwa_weights_are_positive_and_sum_to_the_task_count(history, temperature):
    w = core.dwa_weights(np.array(history), temperature)
    assert np.all(w >= 0)  # a weight can underflow to 0 for a huge loss ratio
    assert w.sum() == pytest.approx(3.0)


def test_dwa_state_round_trip_mid_epoch():
    weighting = DWA(tasks=["a", "b"])
    for values in [(1.0, 2.0), (0.5, 1.0)]:
        weighting(losses(*values))
        weighting.end_epoch()
    weighting(losses(0.2, 0.3))
    fresh = roundtrip(weighting, DWA())
    assert fresh.task_names == ("a", "b")
    np.testing.assert_array_equal(fresh.weights, weighting.weights)
    fresh.end_epoch()
    weighting.end_epoch()
    np.testing.assert_array_equal(fresh.weights, weighting.weights)


# ----------------------------------------------------------------------- RLW
def test_rlw_weights_are_the_softmax_of_seeded_normal_draws():
    weighting = RLW(generator=7)
    draws = np.random.default_rng(7).standard_normal((2, 3))
    for row in draws:
        total = weighting(losses(1.0, 2.0, 3.0))
        expected = np.exp(row) / np.exp(row).sum()
        np.testing.assert_allclose(weighting.weights, expected, rtol=1e-12)
        assert weighting.weights.sum() == pytest.approx(1.0)
        assert total.item() == pytest.approx(float(expected @ [1.0, 2.0, 3.0]), rel=1e-6)


def test_rlw_state_round_trip_continues_the_same_draws():
    weighting = RLW(generator=3)
    weighting(losses(1.0, 1.0))
    fresh = roundtrip(weighting, RLW(generator=99))
    weighting(losses(1.0, 1.0))
    fresh(losses(1.0, 1.0))
    np.testing.assert_array_equal(fresh.weights, weighting.weights)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 6), distribution=st.sampled_from(core.RLW_DISTRIBUTIONS))
def test_rlw_draws_are_a_probability_vector(seed, k, distribution):
    w = core.rlw_weights(np.random.default_rng(seed), k, distribution)
    assert np.all(w > 0) and w.sum() == pytest.approx(1.0)


# ------------------------------------------------------------------ GradNorm
def test_gradnorm_gradient_by_hand():
    # r = 1 (losses at their start); G = w * n = (1, 2); target = mean(G) = 1.5;
    # dL_grad/dw = sign(G - target) * n = (-1, 2).
    grad = core.gradnorm_gradient([1.0, 1.0], [1.0, 2.0], [3.0, 5.0], [3.0, 5.0], alpha=1.5)
    np.testing.assert_array_equal(grad, [-1.0, 2.0])


def test_gradnorm_update_by_hand_two_adam_steps():
    """Two steps computed by hand from Adam's equations (Kingma and Ba 2015, Algorithm 1)."""
    adam, lr, eps = core.Adam(), 0.1, 1e-8
    # step 1: g = (-1, 2); m = 0.1 g, v = 0.001 g^2; m_hat = g, v_hat = g^2: step lr g / (|g| + eps)
    w1 = core.gradnorm_update([1.0, 1.0], [1.0, 2.0], [3.0, 5.0], [3.0, 5.0], alpha=1.5, lr=lr, optimizer=adam)
    raw = np.array([1.0 + lr / (1 + eps), 1.0 - lr * 2 / (2 + eps)])
    np.testing.assert_allclose(w1, 2 * raw / raw.sum(), rtol=1e-12)
    # step 2 at w1 = (1.1, 0.9), losses with r = (2/1.5, 1/1.5) (a trains slower): G = (1.1, 1.8)
    # mean 1.45, targets 1.45 r^1.5 = (2.232.., 0.789..): g = (-1, +2) again
    g = core.gradnorm_gradient(w1, [1.0, 2.0], [2.0, 1.0], [1.0, 1.0], alpha=1.5)
    np.testing.assert_array_equal(g, [-1.0, 2.0])
    w2 = core.gradnorm_update(w1, [1.0, 2.0], [2.0, 1.0], [1.0, 1.0], alpha=1.5, lr=lr, optimizer=adam)
    m = 0.9 * 0.1 * g + 0.1 * g
    v = 0.999 * 0.001 * g**2 + 0.001 * g**2
    raw = w1 - lr * (m / (1 - 0.9**2)) / (np.sqrt(v / (1 - 0.999**2)) + eps)
    np.testing.assert_allclose(w2, 2 * raw / raw.sum(), rtol=1e-12)


def test_gradnorm_update_with_zero_gradients_keeps_the_weights():
    # A task whose loss does not reach W (n_i = 0) contributes nothing to L_grad.
    w = np.array([0.5, 1.5])
    np.testing.assert_allclose(core.gradnorm_update(w, [0.0, 0.0], [1.0, 2.0], [2.0, 2.0], optimizer=core.Adam()), w)
    # Equal rates and equal gradient norms: already balanced, so nothing moves.
    np.testing.assert_allclose(
        core.gradnorm_update([1.0, 1.0], [3.0, 3.0], [1.0, 2.0], [1.0, 2.0], optimizer=core.Adam()), [1.0, 1.0])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 5), scale_exp=st.integers(-3, 6))
def test_gradnorm_steps_do_not_grow_with_the_loss_scale(seed, k, scale_exp):
    """The weight trajectory is the same when every gradient norm is c times larger: the scale
    cancels in Adam's m / sqrt(v). Before, the plain step lr sign(.) n_i grew with n_i, so the
    large-scale tasks' weights jumped between the floor and their maximum (chapter 7)."""
    rng = np.random.default_rng(seed)
    norms = rng.uniform(0.1, 3.0, (20, k))
    loss0 = rng.uniform(0.5, 2.0, k)
    losses_t = loss0 * rng.uniform(0.1, 1.0, (20, k))
    paths = []
    for c in (1.0, 10.0**scale_exp):
        adam, w, path = core.Adam(), np.ones(k), []
        for n, loss in zip(norms, losses_t):
            w = core.gradnorm_update(w, c * n, loss, loss0, alpha=1.5, lr=0.01, optimizer=adam)
            path.append(w)
        paths.append(np.array(path))
    np.testing.assert_allclose(paths[0], paths[1], rtol=1e-6)
    assert np.all(paths[0] > 0) and np.allclose(paths[0].sum(axis=1), k)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale_exp=st.integers(-4, 8))
def test_adam_steps_are_bounded_by_lr_times_the_kingma_ba_constant(seed, scale_exp):
    """|step| <= lr (1 - b1) / sqrt(1 - b2) per coordinate (Kingma and Ba 2015, section 2.1),
    whatever the gradients' scale; and the same as torch.optim.Adam step for step."""
    rng = np.random.default_rng(seed)
    grads = rng.normal(size=(15, 3)) * rng.uniform(0.01, 100, (15, 1)) * 10.0**scale_exp
    adam, x = core.Adam(), np.zeros(3)
    leaf = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    reference = torch.optim.Adam([leaf], lr=0.01)
    for g in grads:
        new = adam.step(x, g, lr=0.01)
        assert np.abs(new - x).max() <= 0.01 * 0.1 / math.sqrt(0.001) * (1 + 1e-9)
        x = new
        leaf.grad = torch.as_tensor(g)
        reference.step()
        np.testing.assert_allclose(x, leaf.detach().numpy(), rtol=1e-10, atol=1e-12)


def _linear_problem(shift: float, dtype: torch.dtype = torch.float32):
    torch.manual_seed(0)
    x = torch.randn(6, 3, dtype=dtype)
    shared = torch.nn.Linear(3, 4).to(dtype)
    heads = [torch.nn.Linear(4, 1).to(dtype) for _ in range(2)]
    with torch.no_grad():
        shared.weight += shift
    targets = [torch.ones(6, 1, dtype=dtype), -2 * torch.ones(6, 1, dtype=dtype)]
    z = shared(x)
    task_losses = [((head(z) - t) ** 2).mean() for head, t in zip(heads, targets)]
    return shared, task_losses


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradnorm_update_matches_the_papers_equations_with_torch_adam(dtype):
    """GradNorm as the paper writes it: L_grad differentiated by autograd with respect to w (a leaf,
    the target held constant), the gradient applied by torch.optim.Adam, then w renormalised to sum K.
    Three steps on a problem that changes between steps."""
    alpha, lr, shifts = 1.5, 0.05, (0.0, 0.3, -0.2)
    weighting = GradNorm(alpha=alpha, lr=lr, tasks=2)
    w = torch.ones(2, dtype=torch.float64, requires_grad=True)
    adam = torch.optim.Adam([w], lr=lr)
    l0 = None
    for shift in shifts:
        shared, task_losses = _linear_problem(shift, dtype)
        w_before = weighting.weights
        total = weighting(task_losses)
        assert total.item() == pytest.approx(float(w_before @ [v.item() for v in task_losses]), rel=1e-6)
        new = weighting.update(task_losses, [shared.weight])

        values = torch.tensor([v.item() for v in task_losses], dtype=torch.float64)
        l0 = values if l0 is None else l0
        norms = torch.stack([
            torch.linalg.vector_norm(torch.autograd.grad(w[i] * task_losses[i].double(), shared.weight,
                                                         retain_graph=True, create_graph=True)[0])
            for i in range(2)
        ])
        rate = (values / l0) / (values / l0).mean()
        target = (norms.mean() * rate**alpha).detach()
        adam.zero_grad()
        (norms - target).abs().sum().backward()
        adam.step()
        with torch.no_grad():
            w.copy_(2 * w / w.sum())
        np.testing.assert_allclose(new, w.detach().numpy(), rtol=1e-5 if dtype == torch.float32 else 1e-10)
    assert new.sum() == pytest.approx(2.0)
    assert not np.allclose(new, 1.0)


def test_gradnorm_state_round_trip():
    weighting = GradNorm(tasks=["a", "b"])
    shared, task_losses = _linear_problem(0.0)
    weighting(dict(zip("ab", task_losses)))
    weighting.update(dict(zip("ab", task_losses)), [shared.weight])
    fresh = roundtrip(weighting, GradNorm())
    np.testing.assert_array_equal(fresh.weights, weighting.weights)
    np.testing.assert_array_equal(fresh._initial_losses, weighting._initial_losses)
    assert fresh.task_names == ("a", "b")
    # Adam's moments travel too: the next step is the same from the copy
    shared, task_losses = _linear_problem(0.2)
    for module in (weighting, fresh):
        module(dict(zip("ab", task_losses)))
        module.update(dict(zip("ab", task_losses)), [shared.weight])
    np.testing.assert_array_equal(fresh.weights, weighting.weights)


def test_uncertainty_state_round_trip():
    weighting = UncertaintyWeighting(["a", "b"])
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([0.3, -1.2]))
    fresh = roundtrip(weighting, UncertaintyWeighting(["a", "b"]))
    torch.testing.assert_close(fresh.log_vars, weighting.log_vars, rtol=0, atol=0)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "make, bad, message",
    [
        (lambda: EqualWeighting(tasks=["a", "b"]), [torch.tensor(1.0)], "expected 2 task losses"),
        (lambda: EqualWeighting(tasks=["a", "b"]), {"a": torch.tensor(1.0), "z": torch.tensor(1.0)},
         "unknown task"),
        (lambda: EqualWeighting(tasks=["a", "b"]), {"a": torch.tensor(1.0)}, "missing loss"),
        (lambda: UncertaintyWeighting(2), {"a": torch.tensor(1.0), "b": torch.tensor(float("nan"))},
         "'b'"),
        (lambda: RLW(tasks=["a", "b"]), {"a": torch.tensor(float("inf")), "b": torch.tensor(1.0)}, "'a'"),
        (lambda: EqualWeighting(), {}, "empty"),
        (lambda: EqualWeighting(), [], "empty"),
        (lambda: EqualWeighting(), [torch.ones(2)], "not a scalar"),
    ],
)
def test_bad_losses_raise_clear_errors(make, bad, message):
    with pytest.raises(ValueError, match=message):
        make()(bad)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: StaticWeighting([1.0, -0.5]), "non-negative"),
        (lambda: StaticWeighting([]), "empty"),
        (lambda: StaticWeighting({}), "empty"),
        (lambda: UncertaintyWeighting([]), "empty"),
        (lambda: UncertaintyWeighting(2, kinds=["regression", "segmentation"]), "unknown task kind"),
        (lambda: DWA(temperature=0.0), "temperature"),
        (lambda: RLW(distribution="cauchy"), "distribution"),
        (lambda: GradNorm(lr=0.0), "lr"),
    ],
)
def test_bad_construction_raises(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_binding_to_other_tasks_is_an_error():
    weighting = EqualWeighting()
    weighting(losses(1.0, 2.0))
    with pytest.raises(ValueError, match="built for"):
        weighting.bind(["x", "y"])
    with pytest.raises(ValueError, match="DWA.end_epoch"):
        DWA().end_epoch()
    with pytest.raises(ValueError, match="shared"):
        GradNorm().update(losses(1.0), [])
    with pytest.raises(ValueError, match="positive initial losses"):
        core.gradnorm_update([1.0], [1.0], [1.0], [0.0], optimizer=core.Adam())
