"""Aggregators on the inputs gradients really arrive as: float32 and float16, badly
scaled, nearly degenerate, tiny (issue 14).

Each reproducer of the issue has a test here that failed before the fix, in both
twins; the property tests check, on float32 and float16 Jacobians with scale
spreads up to 1e4, near-opposite pairs beside a third task, weakly
Pareto-stationary Jacobians and tiny rows, that every aggregator returns a
finite direction that keeps its method's promise and, where the problem is well
conditioned, matches the float64 answer to 1e-3 of the largest gradient norm.
"""

from __future__ import annotations

import mtl_course.tf  # noqa: F401  (quiets TensorFlow: import it before tensorflow)

# isort: split
import warnings

import numpy as np
import pytest
import tensorflow as tf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_course.core import aggregation as core
from mtl_course.tf import aggregators as tf_agg
from mtl_course.torch import aggregators as torch_agg

NAMES = list(torch_agg.AGGREGATORS)
FRAMEWORKS = ["torch", "tf"]


def aggregate(framework: str, name: str, J: np.ndarray, **kwargs) -> np.ndarray:
    """The named aggregator of one twin on a numpy J (its dtype kept); float64 numpy out."""
    if name == "pcgrad":
        kwargs.setdefault("generator", 0)
    if framework == "torch":
        d = torch_agg.AGGREGATORS[name](torch.from_numpy(np.ascontiguousarray(J)), **kwargs)
        assert d.dtype == torch.from_numpy(J).dtype
        return d.double().numpy()
    d = tf_agg.AGGREGATORS[name](tf.constant(J), **kwargs)
    assert d.dtype.as_numpy_dtype == J.dtype
    return d.numpy().astype(np.float64)


# ------------------------------------------------------------ the reproducers

@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name, expected", [
    ("imtl_g", [300 / 301, 300 / 301]),  # alpha = (300, 1) / 301
    ("aligned_mtl", [0.5, 0.5]),  # B = diag(1, 1/300)
    ("nash_mtl", [1.0, 1.0]),  # alpha_t = 1 / |g_t|
    ("cagrad", [0.5 + 0.5 * np.hypot(0.5, 150.0), 150.0]),  # worst task is 0: d = g0 + radius e_0
    ("upgrad", [0.5, 150.0]),
    ("mgda", [300**2 / (1 + 300**2), 300 / (1 + 300**2)]),
])
def test_a_gradient_300_times_smaller_is_not_zero_in_float32(framework, name, expected):
    """Issue 14, item 1: float32 dropped the small gradient (imtl_g gave [0, 300])."""
    J = np.array([[1.0, 0.0], [0.0, 300.0]], dtype=np.float32)
    np.testing.assert_allclose(aggregate(framework, name, J), expected, rtol=2e-5)
    np.testing.assert_allclose(aggregate(framework, name, J.astype(np.float64)), expected, rtol=1e-9)


@pytest.mark.parametrize("name", ["imtl_g", "aligned_mtl", "nash_mtl", "cagrad", "upgrad", "mgda"])
def test_float32_matches_float64_on_a_real_jacobian_with_losses_300x_apart(name):
    """Issue 14, item 1, on a network: GradNorm's toy with sigmas (1, 300) and a hard-sharing
    model; before, float32 IMTL-G and Aligned-MTL directions were ~160x the float64 ones."""
    from torch import nn

    from mtl_course.data.synthetic import gradnorm_toy
    from mtl_course.torch.gradients import jacobian

    data = gradnorm_toy(num_tasks=2, sigmas=[1.0, 300.0], n=100, input_dim=20, output_dim=5, seed=0)
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(20, 16), nn.Tanh())
    heads = {name: nn.Linear(16, 5) for name in data.train.y}
    directions = {}
    for dtype in (torch.float32, torch.float64):
        x = torch.as_tensor(data.train.x[:32], dtype=dtype)
        trunk_, heads_ = trunk.to(dtype), {k: h.to(dtype) for k, h in heads.items()}
        z = trunk_(x)
        losses = [((heads_[k](z) - torch.as_tensor(y[:32], dtype=dtype)) ** 2).mean() for k, y in data.train.y.items()]
        J = jacobian(losses, list(trunk_.parameters()))
        directions[dtype] = torch_agg.AGGREGATORS[name](J).double().numpy()
        if dtype == torch.float64:
            norms = np.linalg.norm(J.numpy(), axis=1)
    assert norms.max() / norms.min() > 100  # the gradients really are that far apart
    size = np.sqrt(2) if name == "nash_mtl" else norms.max()
    np.testing.assert_allclose(directions[torch.float32], directions[torch.float64], rtol=0, atol=1e-3 * size)


NEAR_OPPOSITE = np.array([[0.3, -1.7], [-0.81, 4.59], [0.6, 0.0]])  # row 1 = -2.7 row 0


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ["upgrad", "cagrad", "pcgrad"])
def test_near_opposite_pair_beside_a_third_task_in_float32(framework, name):
    """Issue 14, item 2: float32 UPGrad and CAGrad returned [256, 0] (weights near 1e10);
    UPGrad's direction conflicted with task 1 (J d = [77, -208, 154])."""
    d64 = aggregate(framework, name, NEAR_OPPOSITE)
    d32 = aggregate(framework, name, NEAR_OPPOSITE.astype(np.float32))
    largest = np.linalg.norm(NEAR_OPPOSITE, axis=1).max()
    np.testing.assert_allclose(d32, d64, atol=1e-5 * largest)
    if name == "upgrad":  # the dual cone is the ray orthogonal to rows 0 and 1
        np.testing.assert_allclose(d64, [0.19396, 0.03423], atol=1e-5)
        inner = NEAR_OPPOSITE @ d32
        assert np.all(inner >= -1e-5 * np.linalg.norm(NEAR_OPPOSITE, axis=1) * np.linalg.norm(d32))


def weakly_stationary(seed: int) -> np.ndarray:
    """20 x 100 with row 19 a negative combination of rows 0 and 1: a non-negative
    combination of rows is zero (weak Pareto stationarity) and G is singular."""
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(20, 100))
    J[19] = -np.abs(rng.normal(size=2)) @ J[:2]
    return J


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_upgrad_at_a_weakly_pareto_stationary_jacobian(seed):
    """Issue 14, item 3: NNLS returned weights up to 4e13 here; the direction changed by
    13% under a row permutation and conflicted with a task (cos -0.07)."""
    J = weakly_stationary(seed)
    G = J @ J.T
    w = core.upgrad_weights(G)
    assert np.abs(w).max() < 10
    d = w @ J
    permutation = np.random.default_rng(seed).permutation(20)
    d_permuted = core.upgrad_weights(G[np.ix_(permutation, permutation)]) @ J[permutation]
    np.testing.assert_allclose(d_permuted, d, rtol=0, atol=1e-12 * np.linalg.norm(d))  # before: 13%
    cosines = J @ d / np.linalg.norm(J, axis=1) / np.linalg.norm(d)
    assert cosines.min() >= -1e-12  # before: -0.07 (seed 3)
    # the exact projection of the mean, by cvxpy, onto {x: J x >= 0}
    cp = pytest.importorskip("cvxpy")
    g0 = J.mean(axis=0)
    x = cp.Variable(100)
    cp.Problem(cp.Minimize(cp.sum_squares(x - g0)), [J @ x >= 0]).solve(cp.CLARABEL)
    v = core.dual_cone_projection_weights(G, np.full(20, 1 / 20))
    assert np.abs(v).max() < 10
    np.testing.assert_allclose(v @ J, x.value, atol=1e-6 * np.linalg.norm(g0))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_pcgrad_with_a_tiny_gradient(framework):
    """Issue 14, item 4: [inf, nan] (G[0, 0] underflowed in float32 while G[0, 1] did not)."""
    J = np.array([[1e-30, 0.0], [-1.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(aggregate(framework, "pcgrad", J), [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(aggregate(framework, "pcgrad", J.astype(np.float64)), [0.0, 1.0], atol=1e-15)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [1e-23, 1e-20, 1e-12, 1e20])
def test_the_answer_does_not_depend_on_the_gradients_absolute_scale(framework, name, scale):
    """Issue 14, item 5: at 1e-23 (torch) or 1e-20 (tf) J J^T underflowed in float32:
    Nash-MTL and IMTL-G returned 0, the others the mean, and the twins disagreed.
    (At 1e20, J J^T overflowed: an error before, now the right answer.)"""
    J = np.array([[1.0, 0.0, 0.5], [0.5, 2.0, 0.0], [-1.0, 1.0, 0.2]], dtype=np.float32)
    reference = aggregate("torch", name, J.astype(np.float64))
    power = 0 if name == "nash_mtl" else 1  # Nash-MTL's direction is scale invariant
    d = aggregate(framework, name, (J * np.float32(scale)).astype(np.float32))
    np.testing.assert_allclose(d / scale**power, reference, rtol=1e-5, atol=1e-6 * np.abs(reference).max())


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_mean_in_float16_does_not_report_a_false_overflow(framework):
    """Issue 14, item 6: the finiteness check summed 1000 values of 100 in float16 (inf)."""
    J = np.full((2, 1000), 100.0, dtype=np.float16)
    np.testing.assert_array_equal(aggregate(framework, "mean", J), np.full(1000, 100.0))
    with pytest.raises(ValueError, match=r"NaN or inf in row\(s\) \[1\]"):
        J[1, 3] = np.inf
        aggregate(framework, "mean", J)


def test_mean_is_w_at_J_bit_for_bit_and_finds_a_nan_in_a_wide_J():
    """Issue 17: the check must cost almost nothing, so it reads one reduction of the
    result; the result is bit-identical to w @ J and a NaN in the last entry of a wide J
    is found."""
    generator = torch.Generator().manual_seed(0)
    for T, P, dtype in [(2, 1_000_003, torch.float32), (4, 300_007, torch.float32), (12, 200_007, torch.float32),
                        (3, 200_005, torch.float64), (8, 100_005, torch.float64)]:
        J = torch.randn(T, P, generator=generator, dtype=dtype)
        torch.testing.assert_close(torch_agg.mean(J), torch.full((T,), 1 / T, dtype=dtype) @ J, rtol=0, atol=0)
        J[T - 1, P - 1] = float("nan")
        with pytest.raises(ValueError, match=rf"NaN or inf in row\(s\) \[{T - 1}\]"):
            torch_agg.mean(J)
    J = torch.full((2, 100_000), 60000.0, dtype=torch.float16)  # sums overflow float16
    assert torch.equal(torch_agg.mean(J), J[0])


MEAN_SHAPES = {
    "narrow": (3, 7),
    "wide": (8, 100_003),  # a result larger than the L2 cache
}


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("shape", list(MEAN_SHAPES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_mean_finds_a_non_finite_entry_anywhere(framework, shape, dtype, value):
    """Issue 17, item 3: ``mean`` checks its result, not J, to be fast; a single NaN, inf or
    -inf in the first or last row, the first, middle or last column must still raise the
    error that names its row."""
    T, P = MEAN_SHAPES[shape]
    J = np.random.default_rng(0).standard_normal((T, P)).astype(dtype)
    places = [(0, 0), (0, P - 1), (T - 1, P - 1), (T // 2, P // 2), (T - 1, 0)]
    for row, column in places:
        bad = J.copy()
        bad[row, column] = value
        with pytest.raises(ValueError, match=rf"J contains NaN or inf in row\(s\) \[{row}\]$"):
            aggregate(framework, "mean", bad)
    bad = J.copy()
    bad[0, P - 1], bad[T - 1, P - 1] = np.inf, -np.inf  # a column whose mean is inf - inf
    with pytest.raises(ValueError, match=rf"row\(s\) \[0, {T - 1}\]"):
        aggregate(framework, "mean", bad)
    np.testing.assert_allclose(aggregate(framework, "mean", J), J.astype(np.float64).mean(axis=0),
                               rtol=0, atol=1e-6 if dtype == np.float32 else 1e-15)  # and no false alarm


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("shape", list(MEAN_SHAPES))
def test_mean_of_huge_finite_gradients_is_not_an_error(framework, shape):
    """The torch probe is d . d, which overflows float32 once |d| passes 1.8e19: a finite
    mean that large must be returned, not reported as NaN or inf."""
    T, P = MEAN_SHAPES[shape]
    J = np.random.default_rng(1).standard_normal((T, P)).astype(np.float32) * np.float32(1e30)
    d = aggregate(framework, "mean", J)
    assert np.isfinite(d).all() and np.abs(d).max() > 1e29
    np.testing.assert_allclose(d, J.astype(np.float64).mean(axis=0), rtol=1e-5, atol=1e24)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("shape", list(MEAN_SHAPES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mean_whose_sum_overflows_is_not_an_error(framework, shape, dtype):
    """The cheap probe of the result and the slow path's sum of it both overflow when the
    entries of d are near the dtype's largest number; d is finite, so it is returned, in
    float32 and float64. A single inf among them is still reported."""
    T, P = MEAN_SHAPES[shape]
    big = np.finfo(dtype).max / 2
    J = np.full((T, P), big, dtype=dtype)
    J[:, 1::2] *= np.asarray(0.75, dtype)
    row = J[0]
    with np.errstate(over="ignore"):
        assert np.isinf(np.dot(row, row)) and np.isinf(np.add.reduce(row, dtype=dtype))
    d = aggregate(framework, "mean", J)
    np.testing.assert_allclose(d, row.astype(np.float64), rtol=4 * np.finfo(dtype).eps, atol=0)
    J[T - 1, P // 2] = np.inf
    with pytest.raises(ValueError, match=rf"J contains NaN or inf in row\(s\) \[{T - 1}\]$"):
        aggregate(framework, "mean", J)


def near_opposite_beside_a_third(seed: int, angle: float, dims: int = 5) -> np.ndarray:
    """g1 = -k g0 turned by ``angle`` radians, and an unrelated g2."""
    rng = np.random.default_rng(seed)
    g0 = rng.normal(size=dims)
    other = rng.normal(size=dims)
    other -= other @ g0 / (g0 @ g0) * g0
    other *= np.linalg.norm(g0) / np.linalg.norm(other)
    g1 = -rng.uniform(0.2, 5.0) * (np.cos(angle) * g0 + np.sin(angle) * other)
    return np.stack([g0, g1, rng.normal(size=dims)])


@pytest.mark.parametrize("seed, angle", [(1, 1.3e-5), (3, 1.5e-5), (4, 7.6e-6), (14, 5.5e-5), (245, 3e-5)])
def test_nash_mtl_converges_on_near_opposite_gradients_beside_a_third(seed, angle):
    """Issue 14, item 7: 'Newton's method did not converge in 100 iterations' (126 of
    300 such random cases in float64 raised RuntimeError)."""
    J = near_opposite_beside_a_third(seed, angle)
    G = J @ J.T
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alpha = core.nash_mtl_weights(G)
        d = torch_agg.nash_mtl(torch.tensor(J)).numpy()
    assert np.all(alpha > 0)
    # G alpha = 1/alpha as accurately as the conditioning allows (cosines known to 1e-16)
    beta = alpha * np.sqrt(np.diag(G))
    np.testing.assert_allclose(alpha * (G @ alpha), 1.0, rtol=0, atol=1e-14 * beta.max() ** 2 + 1e-9)
    np.testing.assert_allclose(np.linalg.norm(d), np.sqrt(3), rtol=1e-6)  # |d| = sqrt(T)
    assert np.all(J @ d > 0)  # every task improves


def test_nash_mtl_warns_and_returns_its_best_iterate_when_it_runs_out_of_iterations():
    J = near_opposite_beside_a_third(14, 5.5e-5)
    with pytest.warns(RuntimeWarning, match="Nash-MTL: Newton's method did not converge in 2 iterations"):
        alpha = core.nash_mtl_weights(J @ J.T, max_iter=2)
    assert np.all(np.isfinite(alpha)) and np.all(alpha > 0)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", NAMES)
def test_a_jacobian_that_requires_grad(framework, name):
    """Issue 14, item 8: 'Can't call numpy() on Tensor that requires grad'. The weights
    are constants; the direction is differentiable through w^T J."""
    J = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 1.0], [0.2, 0.1, -0.3]])
    kwargs = {"generator": 0} if name == "pcgrad" else {}
    expected = aggregate("torch", name, J)
    if framework == "torch":
        J_torch = torch.tensor(J, requires_grad=True)
        d = torch_agg.AGGREGATORS[name](J_torch, **kwargs)
        assert d.requires_grad
        np.testing.assert_allclose(d.detach().numpy(), expected, rtol=1e-12)
        d.sum().backward()
        gradient = J_torch.grad.numpy()
    else:
        J_tf = tf.Variable(J)
        with tf.GradientTape() as tape:
            d = tf_agg.AGGREGATORS[name](tf.convert_to_tensor(J_tf), **kwargs)
            total = tf.reduce_sum(d)
        np.testing.assert_allclose(d.numpy(), expected, rtol=1e-12)
        gradient = tape.gradient(total, J_tf).numpy()
    # d(sum d)/dJ[t, p] = w_t: the same weight across each row
    weights = np.linalg.solve(J.T, expected)  # J is invertible: the weights are unique
    np.testing.assert_allclose(gradient, np.repeat(gradient[:, :1], 3, axis=1), rtol=1e-12)
    np.testing.assert_allclose(gradient[:, 0], weights, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------- property tests


def hard_jacobian(seed: int, kind: str, T: int, P: int) -> np.ndarray:
    """A float64 Jacobian of one of the hard kinds the issue lists."""
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(T, P))
    if kind == "spread":  # task scales spread over up to 1e4
        J *= 10.0 ** rng.uniform(-2.0, 2.0, size=(T, 1))
    elif kind == "near_opposite":
        J[:3] = near_opposite_beside_a_third(seed, 10.0 ** rng.uniform(-7, -1), P)
    elif kind == "stationary":
        J[-1] = -np.abs(rng.normal(size=2)) @ J[:2]
    elif kind == "tiny_row":
        J[0] *= 10.0 ** rng.uniform(-30, -6)
    return J


hard_cases = st.builds(
    hard_jacobian,
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["plain", "spread", "near_opposite", "stationary", "tiny_row"]),
    T=st.integers(3, 5),
    P=st.integers(6, 12),
)


def well_conditioned(J: np.ndarray) -> bool:
    """Linearly independent gradients with cosines well away from degeneracy."""
    norms = np.linalg.norm(J, axis=1)
    if not np.all(norms > 0):
        return False
    cosines = (J @ J.T) / np.outer(norms, norms)
    return bool(np.linalg.eigvalsh(cosines)[0] > 0.05)


def check_promise(name: str, J: np.ndarray, d: np.ndarray, tol: float) -> None:
    """The guarantee each method makes, to a relative tolerance ``tol`` (and an absolute
    one for a d that is zero up to the rounding of w @ J)."""
    norms = np.linalg.norm(J, axis=1)
    inner = J @ d
    slack = tol * norms * (np.linalg.norm(d) + np.sqrt(tol) * norms.max())
    if name == "upgrad":  # conflicts with no task
        assert np.all(inner >= -slack), inner / (norms * np.linalg.norm(d))
    if name == "mgda":  # g_t . d >= |d|^2
        assert np.all(inner >= d @ d - slack - tol * norms.max() ** 2)
    if name == "nash_mtl" and np.any(d != 0):  # every task improves, |d| = sqrt(T)
        assert np.all(inner >= -slack)
        if well_conditioned(J):
            np.testing.assert_allclose(np.linalg.norm(d), np.sqrt(len(J)), rtol=10 * tol)
    if name == "cagrad":  # stays in its ball around the mean
        g0 = J.mean(axis=0)
        assert np.linalg.norm(d - g0) <= 0.5 * np.linalg.norm(g0) * (1 + tol) + tol * norms.max()


@pytest.mark.parametrize("name", NAMES)
@given(J=hard_cases)
@settings(max_examples=40, deadline=None)
def test_float32_is_finite_keeps_the_promise_and_matches_float64(name, J):
    J32 = J.astype(np.float32)
    J = J32.astype(np.float64)  # the same numbers, so that only the arithmetic differs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d32 = aggregate("torch", name, J32)
        d64 = aggregate("torch", name, J)
    assert np.all(np.isfinite(d32))
    check_promise(name, J, d32, 1e-3)
    # float64 treats cosine-matrix eigenvalues below gram_rtol (~1e-13) as zero; J's float32
    # rounding leaves a weakly stationary J dependent only to ~1e-15: the promise holds to ~1e-8
    check_promise(name, J, d64, 1e-7)
    if well_conditioned(J):
        size = np.sqrt(len(J)) if name == "nash_mtl" else np.linalg.norm(J, axis=1).max()
        if name == "imtl_g" and np.abs(core.imtl_g_weights(J @ J.T)).sum() > 10:
            return  # alpha = v / sum(v) is ill-conditioned where sum(v) cancels
        norms = np.linalg.norm(J, axis=1)
        if name == "cagrad" and norms.min() < 1e-4 * norms.max():
            # A tiny task is the worst one, and CAGrad's dual optimum puts nearly all
            # weight on it: SLSQP's absolute accuracy on the weights (about 1e-8) is then
            # larger than that task's share of g_w, in float64 as in float32.
            return
        np.testing.assert_allclose(d32, d64, rtol=0, atol=1e-3 * size)


@pytest.mark.parametrize("name", NAMES)
@given(J=hard_cases)
@settings(max_examples=25, deadline=None)
def test_float16_is_finite_and_keeps_the_promise(name, J):
    J16 = (J / np.abs(J).max()).astype(np.float16)  # within float16's range
    J = J16.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d16 = aggregate("torch", name, J16)
    assert np.all(np.isfinite(d16))
    check_promise(name, J, d16, 1e-2)
    if well_conditioned(J) and np.all(np.linalg.norm(J, axis=1) > 1e-2):
        size = np.sqrt(len(J)) if name == "nash_mtl" else np.linalg.norm(J, axis=1).max()
        if name == "imtl_g" and np.abs(core.imtl_g_weights(J @ J.T)).sum() > 10:
            return
        np.testing.assert_allclose(d16, aggregate("torch", name, J), rtol=0, atol=1e-2 * size)


# --------------------------------------------------------------- twin parity

PARITY_CASES = [hard_jacobian(seed, kind, 4, 10) for seed in range(3)
                for kind in ["plain", "spread", "near_opposite", "stationary", "tiny_row"]]


@pytest.mark.parametrize("name", NAMES)
def test_twins_agree_to_1e_5_in_float32_on_hard_jacobians(name):
    """Relative to the problem's scale (the largest gradient, or |d| if larger): where the
    exact d is zero (weakly stationary J) or nearly so, its float32 value is rounding noise
    of that size and has no relative accuracy of its own."""
    for J in PARITY_CASES:
        J32 = J.astype(np.float32)
        d_tf, d_torch = aggregate("tf", name, J32), aggregate("torch", name, J32)
        scale = max(np.linalg.norm(J32, axis=1).max(), np.linalg.norm(d_torch))
        np.testing.assert_allclose(d_tf, d_torch, rtol=0, atol=1e-5 * scale)
