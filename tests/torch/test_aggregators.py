"""Gradient aggregators (PyTorch side and the numpy weights in mtl_course.core.aggregation).

Hand-computed cases, properties (hypothesis), degenerate cases, input
validation, and a cross-check against torchjd 0.18's aggregators.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_course.core import aggregation as core
from mtl_course.torch import aggregators as agg

NAMES = list(agg.AGGREGATORS)
FAST = settings(max_examples=30, deadline=None)


def run(name: str, J, **kwargs) -> np.ndarray:
    """Aggregate a float64 numpy J with the named torch aggregator; numpy result."""
    if name == "pcgrad":
        kwargs.setdefault("generator", 0)
    return agg.AGGREGATORS[name](torch.as_tensor(np.asarray(J, dtype=np.float64)), **kwargs).numpy()


def random_jacobian(seed: int, T: int, P: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(T, P))


jacobians = st.builds(
    random_jacobian,
    seed=st.integers(0, 2**32 - 1),
    T=st.integers(2, 5),
    P=st.integers(6, 12),
)


# ------------------------------------------------------ hand-computed cases

HAND_CASES = [
    # (method, J, expected direction)
    ("mean", [[1, 0], [0, 1]], [0.5, 0.5]),
    ("mean", [[3, 0], [0, 3], [0, 0]], [1, 1]),
    ("mgda", [[1, 0], [0, 1]], [0.5, 0.5]),
    ("mgda", [[2, 0], [0, 1]], [0.4, 0.8]),  # gamma = (g2-g1).g2 / |g1-g2|^2 = 1/5
    ("mgda", [[1, 0], [0, 1], [1, 1]], [0.5, 0.5]),  # g3 is not on the min-norm face
    ("pcgrad", [[1, 0], [-1, 1]], [0.5, 1.5]),  # (0.5, 0.5) + (0, 1)
    ("pcgrad", [[1, 0, 0], [-1, 1, 0], [0, 0, 1]], [0.5, 1.5, 1]),
    ("cagrad", [[1, 0], [0, 1]], [0.75, 0.75]),  # (1 + c) g0 for orthogonal unit gradients
    # zero in the hull, g0 = (0, 1/3) already conflicts with no task: the projection is g0
    ("cagrad", [[1, 0], [-1, 0], [0, 1]], [0, 1 / 3]),
    ("nash_mtl", [[2, 0], [0, 1]], [1, 1]),  # alpha_t = 1 / |g_t| when orthogonal
    ("nash_mtl", [[1, 0, 0], [0, 2, 0], [0, 0, 4]], [1, 1, 1]),
    ("imtl_g", [[1, 0], [0, 2]], [2 / 3, 2 / 3]),  # alpha = (2/3, 1/3)
    ("imtl_g", [[1, 0, 0], [0, 2, 0], [0, 0, 4]], [4 / 7, 4 / 7, 4 / 7]),
    # dependent g and 2g: alpha ∝ G^+ n ∝ (1, 2), so alpha = (1/3, 2/3) and d = 5/3 g
    ("imtl_g", [[1, 2, -2], [2, 4, -4]], [5 / 3, 10 / 3, -10 / 3]),
    ("aligned_mtl", [[1, 0], [0, 2]], [0.5, 0.5]),  # B = diag(1, 1/2)
    ("aligned_mtl", [[3, 0], [0, 1]], [0.5, 0.5]),
    ("upgrad", [[1, 0], [-1, 1]], [0.25, 0.75]),  # ((0.5, 0.5) + (0, 1)) / 2
    ("upgrad", [[1, 0], [0, 1]], [0.5, 0.5]),  # no conflict: the mean
    ("upgrad", [[1, 0], [-1, 0], [0, 1]], [0, 1 / 3]),  # projections (0, 0), (0, 0), (0, 1)
]


@pytest.mark.parametrize("name, J, expected", HAND_CASES)
def test_hand_computed(name, J, expected):
    np.testing.assert_allclose(run(name, J), expected, rtol=1e-7, atol=1e-9)


def test_mgda_two_task_closed_form():
    w = core.mgda_two_task_weights(np.array([[4.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(w, [0.2, 0.8])
    # g1 = (1, 0), g2 = (2, 0): the shorter gradient itself
    np.testing.assert_allclose(core.mgda_two_task_weights(np.array([[1.0, 2.0], [2.0, 4.0]])), [1, 0])
    with pytest.raises(ValueError, match="exactly 2 tasks"):
        core.mgda_two_task_weights(np.eye(3))


@given(J=jacobians)
@FAST
def test_mgda_two_task_closed_form_equals_qp(J):
    G = J[:2] @ J[:2].T
    np.testing.assert_allclose(
        core.mgda_two_task_weights(G) @ J[:2], core.mgda_weights(G) @ J[:2], atol=1e-9
    )


# ---------------------------------------------------------------- properties


def _quadprog_min_norm(G: np.ndarray) -> np.ndarray:
    """Reference: the simplex QP solved by quadprog (through qpsolvers)."""
    from qpsolvers import solve_qp

    T = len(G)
    return solve_qp(
        G + 1e-12 * np.eye(T), np.zeros(T), -np.eye(T), np.zeros(T),
        np.ones((1, T)), np.ones(1), solver="quadprog",
    )


@given(J=jacobians)
@FAST
def test_mgda_is_the_min_norm_point_and_a_common_descent_direction(J):
    G = J @ J.T
    d = core.mgda_weights(G) @ J
    np.testing.assert_allclose(d, _quadprog_min_norm(G) @ J, atol=1e-6)
    # g_t . d >= |d|^2 for every task (equality on the active tasks)
    assert np.all(J @ d >= d @ d - 1e-9 * np.trace(G))


@given(J=jacobians)
@FAST
def test_frank_wolfe_converges_to_the_qp_solution(J):
    G = J @ J.T
    tol = 1e-4  # Frank-Wolfe is sublinear: up to about 20 000 iterations here (seed 5597553, T=4)
    w, iterations = core.mgda_frank_wolfe_weights(G, max_iter=100_000, tol=tol)
    assert iterations < 100_000
    d, d_star = w @ J, core.mgda_weights(G) @ J
    # for the min-norm point d*: |d - d*|^2 <= |d|^2 - |d*|^2 <= FW gap <= tol (in units of trace/T)
    scale = np.trace(G) / len(G)
    assert np.sum((d - d_star) ** 2) <= d @ d - d_star @ d_star + 1e-10 * scale
    assert d @ d - d_star @ d_star <= tol * scale * (1 + 1e-6)


def test_frank_wolfe_counts_iterations_and_stops_at_the_cap():
    J = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-0.5, -0.2, 1.0]])
    _, capped = core.mgda_frank_wolfe_weights(J @ J.T, max_iter=3, tol=0.0)
    assert capped == 3
    w, iterations = core.mgda_frank_wolfe_weights(J @ J.T, max_iter=10_000, tol=1e-6)
    assert 3 < iterations < 10_000
    np.testing.assert_allclose(w @ J, core.mgda_weights(J @ J.T) @ J, atol=1e-3)
    with pytest.raises(ValueError, match="max_iter"):
        core.mgda_frank_wolfe_weights(J @ J.T, max_iter=0)


@given(J=jacobians)
@FAST
def test_upgrad_conflicts_with_no_task(J):
    d = run("upgrad", J)
    assert np.all(J @ d >= -1e-9 * np.linalg.norm(J, axis=1) * np.linalg.norm(d))


@given(J=jacobians)
@FAST
def test_two_task_pcgrad_never_conflicts_and_equals_twice_upgrad(J):
    J = J[:2]
    G = J @ J.T
    c = core.pcgrad_weights(G, generator=0)
    # for two tasks, each projected gradient does not conflict with the other task's gradient
    g1_pc = J[0] - min(G[0, 1], 0) / G[1, 1] * J[1]
    g2_pc = J[1] - min(G[0, 1], 0) / G[0, 0] * J[0]
    assert g1_pc @ J[1] >= -1e-9 and g2_pc @ J[0] >= -1e-9
    np.testing.assert_allclose(c @ J, g1_pc + g2_pc, atol=1e-9)
    # dual-cone projection of g_i is PCGrad's g_i^PC: UPGrad (a mean) is half of PCGrad (a sum)
    np.testing.assert_allclose(run("pcgrad", J), 2 * run("upgrad", J), atol=1e-7)


@given(J=jacobians)
@FAST
def test_pcgrad_seeding(J):
    G = J @ J.T
    np.testing.assert_array_equal(core.pcgrad_weights(G, 7), core.pcgrad_weights(G, 7))
    a = core.pcgrad_weights(G, np.random.default_rng(3))
    b = core.pcgrad_weights(G, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


@given(J=jacobians, c=st.floats(0.1, 2.0))
@FAST
def test_cagrad_improves_the_worst_task_within_its_ball(J, c):
    g0 = J.mean(axis=0)
    d = run("cagrad", J, c=c)
    radius = c * np.linalg.norm(g0)
    assert np.linalg.norm(d - g0) <= radius * (1 + 1e-6)
    # d maximizes the worst improvement over the ball: at least as good as its center g0,
    # and as good as the best of a few random points of the ball
    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, J.shape[1]))
    points = g0 + radius * points / np.linalg.norm(points, axis=1, keepdims=True)
    worst = np.min(J @ d)
    assert worst >= np.min(J @ g0) - 1e-9
    assert worst >= np.max(np.min(points @ J.T, axis=1)) - 1e-6 * np.linalg.norm(J) ** 2


@given(
    J=st.builds(random_jacobian, seed=st.integers(0, 2**32 - 1), T=st.integers(2, 8), P=st.integers(2, 10)),
    c=st.sampled_from([0.2, 0.5, 1.0, 2.0]),
    opposite=st.booleans(),
)
@settings(max_examples=25, deadline=None)
def test_cagrad_solves_its_max_min_problem(J, c, opposite):
    """Against the primal problem solved by cvxpy, including T > P and opposite gradients
    (zero in the convex hull)."""
    cp = pytest.importorskip("cvxpy")
    if opposite:
        J[1] = -J[0]
    g0 = J.mean(axis=0)
    radius = c * np.linalg.norm(g0)
    x, t = cp.Variable(J.shape[1]), cp.Variable()
    problem = cp.Problem(cp.Maximize(t), [J @ x >= t, cp.norm(x - g0) <= radius])
    problem.solve(cp.CLARABEL)
    d = run("cagrad", J, c=c)
    scale = np.trace(J @ J.T) / len(J)
    assert np.linalg.norm(d - g0) <= radius * (1 + 1e-6) + 1e-9
    assert np.min(J @ d) >= problem.value - 1e-5 * scale


@given(J=jacobians)
@FAST
def test_nash_mtl_solves_the_bargaining_equation(J):
    G = J @ J.T
    alpha = core.nash_mtl_weights(G)
    if np.all(alpha == 0):  # zero in the convex hull: defined as no agreement
        assert core.mgda_weights(G) @ G @ core.mgda_weights(G) < 1e-12 * np.trace(G)
        return
    assert np.all(alpha > 0)
    np.testing.assert_allclose(G @ alpha, 1 / alpha, rtol=1e-7)


@given(J=jacobians)
@FAST
def test_imtl_g_projections_on_unit_gradients_are_equal(J):
    d = run("imtl_g", J)
    projections = J @ d / np.linalg.norm(J, axis=1)
    np.testing.assert_allclose(projections, projections[0], rtol=1e-7)
    np.testing.assert_allclose(core.imtl_g_weights(J @ J.T).sum(), 1.0)


@given(J=jacobians)
@FAST
def test_aligned_mtl_balances_the_singular_values(J):
    G = J @ J.T
    eigenvalues, V = np.linalg.eigh(G)
    B = np.sqrt(eigenvalues.min()) * (V / np.sqrt(eigenvalues)) @ V.T
    aligned = B @ J
    np.testing.assert_allclose(aligned @ aligned.T, eigenvalues.min() * np.eye(len(G)), atol=1e-8 * np.trace(G))
    np.testing.assert_allclose(run("aligned_mtl", J), aligned.mean(axis=0), atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
@given(J=jacobians, log_scale=st.floats(-3, 3))
@FAST
def test_scaling(name, J, log_scale):
    """d(sJ) = s d(J) for every method except Nash-MTL, whose d is scale invariant."""
    s = 10.0**log_scale
    power = 0 if name == "nash_mtl" else 1
    np.testing.assert_allclose(run(name, s * J), s**power * run(name, J), rtol=1e-5, atol=1e-9 * s**power)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "pcgrad"])
@given(J=jacobians, seed=st.integers(0, 1000))
@FAST
def test_permutation_invariance(name, J, seed):
    permutation = np.random.default_rng(seed).permutation(len(J))
    np.testing.assert_allclose(run(name, J[permutation]), run(name, J), rtol=1e-5, atol=1e-8)


# ----------------------------------------------------------- degenerate cases

g = np.array([1.0, 2.0, -2.0])  # |g| = 3
C = 0.5  # cagrad's default c
DEGENERATE = {
    # name: (single task, identical, opposite, zero row [g, 0])
    "mean": (g, g, 0 * g, g / 2),
    "mgda": (g, g, 0 * g, 0 * g),
    "pcgrad": (g, 2 * g, 0 * g, g),
    "cagrad": ((1 + C) * g, (1 + C) * g, 0 * g, g / 2),
    "nash_mtl": (g / 3, np.sqrt(2) * g / 3, 0 * g, g / 3),
    "imtl_g": (g, g, 0 * g, g),
    "aligned_mtl": (g, g, 0 * g, g / 2),
    "upgrad": (g, g, 0 * g, g / 2),
}


@pytest.mark.parametrize("name", NAMES)
def test_degenerate_cases_are_defined(name):
    single, identical, opposite, zero_row = DEGENERATE[name]
    inputs = [g[None], np.stack([g, g]), np.stack([g, -g]), np.stack([g, 0 * g])]
    for J, expected in zip(inputs, [single, identical, opposite, zero_row]):
        np.testing.assert_allclose(run(name, J), expected, atol=1e-9)
    # float32 input: the same answers within float32 accuracy
    for J, expected in zip(inputs, [single, identical, opposite, zero_row]):
        result = agg.AGGREGATORS[name](torch.tensor(J, dtype=torch.float32))
        assert result.dtype == torch.float32
        np.testing.assert_allclose(result.numpy(), expected, atol=1e-5)
    for T in (1, 3):
        zeros = agg.AGGREGATORS[name](torch.zeros(T, 4))
        assert torch.equal(zeros, torch.zeros(4))


@pytest.mark.parametrize("name", NAMES)
def test_very_different_scales(name):
    rng = np.random.default_rng(0)
    J = rng.normal(size=(3, 6)) * np.array([[1e3], [1.0], [1e-3]])
    d = run(name, J)
    assert np.all(np.isfinite(d))
    if name in ("mgda", "upgrad"):
        assert np.all(J @ d >= -1e-9 * np.linalg.norm(J, axis=1) * np.linalg.norm(d))
    if name == "imtl_g":
        projections = J @ d / np.linalg.norm(J, axis=1)
        np.testing.assert_allclose(projections, projections[0], rtol=1e-6)
    if name == "mgda":  # the tiny gradient dominates the min-norm point
        np.testing.assert_allclose(np.linalg.norm(d), 1e-3 * np.linalg.norm(J[2] / 1e-3), rtol=0.5)


def test_zero_in_the_hull_of_three_gradients():
    J = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    np.testing.assert_allclose(run("mgda", J), [0, 0], atol=1e-12)
    np.testing.assert_allclose(run("nash_mtl", J), [0, 0], atol=1e-12)
    d = run("upgrad", J)  # the dual cone is {0}
    np.testing.assert_allclose(d, [0, 0], atol=1e-9)


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", NAMES)
def test_bad_jacobians_raise(name):
    f = agg.AGGREGATORS[name]
    with pytest.raises(ValueError, match="2-D"):
        f(torch.ones(3))
    with pytest.raises(ValueError, match="2-D"):
        f(torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match="no rows"):
        f(torch.ones(0, 3))
    with pytest.raises(ValueError, match=r"NaN or inf in row\(s\) \[1\]"):
        f(torch.tensor([[1.0, 2.0], [float("nan"), 0.0]]))
    with pytest.raises(ValueError, match=r"NaN or inf in row\(s\) \[0, 2\]"):
        f(torch.tensor([[float("inf"), 2.0], [1.0, 0.0], [0.0, -float("inf")]]))
    with pytest.raises(TypeError, match="floating"):
        f(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        f(np.ones((2, 3)))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="c must be"):
        agg.cagrad(torch.eye(2), c=-1.0)
    with pytest.raises(TypeError, match="generator"):
        agg.pcgrad(torch.eye(2), generator=torch.Generator())
    with pytest.raises(ValueError, match="square"):
        core.mgda_weights(np.ones((2, 3)))
    with pytest.raises(ValueError, match="empty"):
        core.upgrad_weights(np.ones((0, 0)))
    with pytest.raises(ValueError, match="overflowed"):
        core.imtl_g_weights(np.array([[np.inf, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="u must have shape"):
        core.dual_cone_projection_weights(np.eye(2), np.ones(3))
    J = torch.tensor([[3e20, 0.0], [0.0, 1e19]])  # finite, but J J^T overflows float32: rescaled
    a, b = 9e40, 1e38  # the squared norms; MGDA's weights are (b, a) / (a + b)
    torch.testing.assert_close(agg.mgda(J), torch.tensor([3e20 * b / (a + b), 1e19 * a / (a + b)]), rtol=1e-6, atol=0)
    J = torch.tensor([[3e38, 0.0], [3e38, 0.0]])  # PCGrad's sum of the two is above float32's max
    with pytest.raises(ValueError, match="direction overflowed in torch.float32"):
        agg.pcgrad(J)


def test_gram_rtol():
    assert core.gram_rtol(2) == pytest.approx(200 * np.finfo(np.float64).eps)
    assert core.gram_rtol(3, float(np.finfo(np.float32).eps)) == pytest.approx(300 * 2**-23)


# --------------------------------------------------------- torchjd cross-check

torchjd_aggregation = pytest.importorskip("torchjd.aggregation")


@pytest.fixture(scope="module")
def A():
    return torchjd_aggregation


@pytest.mark.parametrize("T", [2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_torchjd(A, T, seed):
    from torchjd.linalg import QuadprogProjector

    J = torch.tensor(random_jacobian(100 * seed + T, T, 9))
    J[0] *= -2.0  # make conflicts likely

    def close(ours, theirs, rtol):
        torch.testing.assert_close(ours, theirs, rtol=rtol, atol=rtol * theirs.abs().max())

    close(agg.mean(J), A.Mean()(J), 1e-12)
    close(agg.imtl_g(J), A.IMTLG()(J), 1e-8)
    close(agg.aligned_mtl(J), A.AlignedMTL()(J), 1e-8)
    # torchjd's UPGrad regularizes G by 1e-4 * I by default; without it the QPs are the same
    exact_projector = QuadprogProjector(norm_eps=0.0, reg_eps=0.0)
    close(agg.upgrad(J), A.UPGrad(projector=exact_projector)(J), 1e-7)
    close(agg.upgrad(J), A.UPGrad()(J), 1e-3)  # default: the 1e-4 ridge moves d a little
    # CAGrad: same convention (no rescaling); torchjd solves the dual with Clarabel, we with
    # SLSQP; both are accurate to about 1e-7 relative
    close(agg.cagrad(J, c=0.5), A.CAGrad(c=0.5)(J), 1e-4)
    # MGDA: torchjd runs Frank-Wolfe (stops when the step is below epsilon), we solve exactly
    close(agg.mgda(J), A.MGDA(epsilon=1e-12, max_iters=20_000)(J), 1e-2 if T > 2 else 1e-10)
    # Nash-MTL: torchjd approximates the same equation with a convex-concave procedure
    # (stops when |G alpha - 1/alpha| < 1e-3); max_norm=0 turns off its norm clipping
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cvxpy's "problem is not DPP" notice
        nash = A.NashMTL(n_tasks=T, max_norm=0.0, update_weights_every=1, optim_niter=50)(J)
    close(agg.nash_mtl(J), nash, 1e-3)
    if T == 2:  # a single other task: PCGrad's random order does not matter
        close(agg.pcgrad(J), A.PCGrad()(J), 1e-10)
    else:  # linearly dependent gradients: the same pseudo-inverse generalizations
        J[2] = J[0] - 2 * J[1]
        close(agg.imtl_g(J), A.IMTLG()(J), 1e-8)
        close(agg.aligned_mtl(J), A.AlignedMTL()(J), 1e-8)


# ---------------------------------------------------------------------- CUDA


@pytest.mark.cuda
@pytest.mark.parametrize("name", NAMES)
def test_aggregators_on_cuda(name):
    J = torch.tensor(random_jacobian(0, 3, 7), dtype=torch.float32)
    d = agg.AGGREGATORS[name](J.cuda())
    assert d.device.type == "cuda" and d.dtype == torch.float32
    torch.testing.assert_close(d.cpu(), agg.AGGREGATORS[name](J), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_bit_identical_run_to_run(name):
    J = torch.tensor(random_jacobian(5, 4, 11), dtype=torch.float32)
    kwargs = {"generator": 1} if name == "pcgrad" else {}
    f = agg.AGGREGATORS[name]
    assert torch.equal(f(J, **kwargs), f(J, **kwargs))


def test_nash_mtl_nearly_opposite_gradients_use_the_two_task_closed_form():
    # Found on the toy problem's Pareto set (1 + cos = 2.9e-10): Newton's
    # method is ill-conditioned here; the closed form is exact.
    from mtl_course.core.aggregation import nash_mtl_weights

    G = np.array([[7.325083290841097, -0.24979356223145685],
                  [-0.24979356223145685, 0.008518240856864713]])
    alpha = nash_mtl_weights(G)
    norms = np.sqrt(np.diag(G))
    cosine = G[0, 1] / (norms[0] * norms[1])
    # 1 + cos loses about 7 digits to cancellation, whatever the order of operations
    np.testing.assert_allclose(alpha, 1.0 / (norms * np.sqrt(1.0 + cosine)), rtol=1e-6)
    np.testing.assert_allclose(G @ alpha, 1.0 / alpha, rtol=1e-5)  # cancellation in 1 + cos
