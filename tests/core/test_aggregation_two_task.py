"""The batched two-task closed forms of mtl_course.core.aggregation against its general forms.

``two_task_weights(method, G, c)`` must give, row by row, the direction of
``<method>_weights(G[s])``: on random Gram matrices, on nearly degenerate ones
(nearly parallel, nearly opposite, one gradient much smaller than the other,
badly scaled), in float64 and from float32 Jacobians; plus hand-computed cases
and the fallback on exactly degenerate rows.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_course.core import aggregation as core
from mtl_course.core.aggregation import TWO_TASK_METHODS, two_task_weights

SETTINGS = settings(max_examples=30, deadline=None)


def _general(method, G, c=0.5):
    if method == "cagrad":
        return core.cagrad_weights(G, c=c)
    if method == "pcgrad":
        return core.pcgrad_weights(G, generator=0)
    return getattr(core, f"{method}_weights")(G)


def _direction_gap(W, R, G):
    """|| (W - R) @ J || / sqrt(mean ||g||^2), computed from the Gram matrices."""
    D = W - R
    return np.sqrt(np.einsum("si,sij,sj->s", D, G, D) / (np.einsum("sii->s", G) / 2))


def _relative_gap(W, R, G):
    """|| (W - R) @ J || relative to the larger of || R @ J || and the RMS gradient norm
    (Nash-MTL's direction has norm sqrt(2) whatever the gradients' size)."""
    D = W - R
    size = np.maximum(np.einsum("si,sij,sj->s", R, G, R), np.einsum("sii->s", G) / 2)
    return np.sqrt(np.einsum("si,sij,sj->s", D, G, D) / size)


def _grams(J):
    return J @ J.transpose(0, 2, 1)


@st.composite
def jacobians(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return rng.standard_normal((8, 2, 3)) * rng.uniform(0.01, 10.0, (8, 2, 1))


@st.composite
def nearly_degenerate_jacobians(draw):
    """g2 = lambda g1 + eps * noise: nearly parallel (lambda > 0) or nearly opposite (lambda < 0),
    with lambda from 1e-6 to 1e6 and eps from 1e-10 to 1e-2, at an overall scale 1e-8 to 1e8."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    g1 = rng.standard_normal((8, 4))
    lam = rng.choice([-1.0, 1.0], (8, 1)) * 10.0 ** rng.uniform(-6, 6, (8, 1))
    eps = 10.0 ** rng.uniform(-10, -2, (8, 1))
    g2 = lam * g1 + eps * np.abs(lam) * rng.standard_normal((8, 4))
    scale = 10.0 ** draw(st.integers(-8, 8))
    return scale * np.stack([g1, g2], axis=1)


@pytest.mark.parametrize("method", TWO_TASK_METHODS)
@SETTINGS
@given(J=jacobians())
def test_closed_forms_match_the_general_forms(method, J):
    G = _grams(J)
    W = two_task_weights(method, G)
    R = np.stack([_general(method, g) for g in G])
    tol = 1e-6 if method == "cagrad" else 1e-9  # SLSQP in cagrad_weights is accurate to ~1e-8
    assert np.all(_direction_gap(W, R, G) < tol)


@pytest.mark.parametrize("method", TWO_TASK_METHODS)
@SETTINGS
@given(J=jacobians())
def test_closed_forms_match_the_general_forms_on_float32_gram_matrices(method, J):
    # float32 is the dtype gradients arrive in: the Gram matrix of a float32 Jacobian,
    # computed in float32, is accepted as it is and solved in float64 like the general form.
    G = _grams(J.astype(np.float32))
    assert G.dtype == np.float32
    W = two_task_weights(method, G)
    assert W.dtype == np.float64
    R = np.stack([_general(method, g) for g in G])
    tol = 1e-6 if method == "cagrad" else 1e-9
    assert np.all(_direction_gap(W, R, G.astype(np.float64)) < tol)


@pytest.mark.parametrize("method", TWO_TASK_METHODS)
@SETTINGS
@given(J=nearly_degenerate_jacobians())
def test_closed_forms_match_the_general_forms_near_degenerate_gram_matrices(method, J):
    G = _grams(J)
    W = two_task_weights(method, G)
    assert np.all(np.isfinite(W))
    R = np.stack([_general(method, g) for g in G])
    # The closed forms are exact; the general forms' linear solves on the cosine
    # matrix C are accurate to about eps * cond(C), which grows like 1 / (1 - |cos|).
    n = np.sqrt(np.einsum("sii->si", G))
    cos = np.abs(G[:, 0, 1]) / (n[:, 0] * n[:, 1])
    condition = (1.0 + cos) / np.maximum(1.0 - cos, 1e-300)
    tol = np.maximum(1e-6 if method == "cagrad" else 1e-9, 1e3 * np.finfo(float).eps * condition)
    compared = np.ones(len(G), dtype=bool)
    if method == "nash_mtl":
        # the documented difference: opposite to rounding, the general form gives zero
        # weights (zero in the hull) and the closed form its exact, positive weights
        signed = G[:, 0, 1] / (n[:, 0] * n[:, 1])
        band = (1.0 + signed > 0.0) & ((1.0 + signed) / 2.0 <= core.gram_rtol(2))
        # (|d|^2 = w G w cannot be checked here: G's rounding times |w|^2 ~ 1 / (1 + cos)
        # swamps it; test_nash_mtl_direction_has_norm_sqrt2_... checks it where it can be)
        assert np.all(R[band] == 0.0)
        assert np.all(W[band] > 0.0)
        compared = ~band
    assert np.all(_relative_gap(W, R, G)[compared] < tol[compared])


@pytest.mark.parametrize("c", [0.1, 0.5, 0.9])
def test_cagrad_closed_form_matches_the_general_form_for_several_radii(c):
    rng = np.random.default_rng(1)
    J = rng.standard_normal((40, 2, 4))
    G = _grams(J)
    W = two_task_weights("cagrad", G, c)
    R = np.stack([core.cagrad_weights(g, c=c) for g in G])
    assert np.all(_direction_gap(W, R, G) < 1e-6)


def test_cagrad_closed_form_is_optimal_for_nearly_opposite_gradients():
    # Certificate of optimality: d = g0 + r g_w / |g_w| is in the ball, and its worst
    # improvement min_t g_t . d equals the dual objective g_w . g0 + r |g_w| at the same
    # w (weak duality makes every dual value an upper bound, so both are optimal).
    # Also for c > 1, where the general solvers return a worse direction.
    rng = np.random.default_rng(2)
    g1 = rng.standard_normal((30, 5))
    g2 = -g1 * rng.uniform(0.2, 3.0, (30, 1)) + 1e-3 * rng.standard_normal((30, 5))
    J = np.stack([g1, g2], axis=1)
    G = _grams(J)
    for c in (0.5, 2.0):
        W = two_task_weights("cagrad", G, c)
        d = np.einsum("st,stp->sp", W, J)
        g0 = J.mean(axis=1)
        radius = c * np.linalg.norm(g0, axis=1)
        assert np.all(np.linalg.norm(d - g0, axis=1) <= radius * (1 + 1e-6))
        w = (W - 0.5) / (W - 0.5).sum(axis=1, keepdims=True)  # the dual variable on the simplex
        assert np.all(w >= -1e-12)
        gw = np.einsum("st,stp->sp", w, J)
        dual = np.einsum("sp,sp->s", gw, g0) + radius * np.linalg.norm(gw, axis=1)
        worst = np.min(np.einsum("stp,sp->st", J, d), axis=1)
        # zero gap up to rounding, in units of the squared gradient norms (as cagrad_weights' 1e-7)
        assert np.all(np.abs(worst - dual) <= 1e-7 * np.einsum("sii->s", G))
        if c < 1:  # and the general form, for c < 1, finds the same direction
            R = np.stack([core.cagrad_weights(g, c=c) for g in G])
            assert np.all(_direction_gap(W, R, G) < 1e-6)


def test_hand_computed_two_task_weights():
    # g1 = (1, 0), g2 = (-1, 1): cos = -1/sqrt(2)
    G = np.array([[[1.0, -1.0], [-1.0, 2.0]]])
    np.testing.assert_allclose(two_task_weights("mean", G), [[0.5, 0.5]])
    # MGDA: gamma = (2 - (-1)) / (1 + 2 + 2) = 3/5
    np.testing.assert_allclose(two_task_weights("mgda", G), [[0.6, 0.4]])
    # PCGrad: g1 loses -1/2 g2, g2 loses -1 g1 -> weights (1 + 1, 1 + 1/2)
    np.testing.assert_allclose(two_task_weights("pcgrad", G), [[2.0, 1.5]])
    np.testing.assert_allclose(two_task_weights("upgrad", G), [[1.0, 0.75]])
    # IMTL-G: (n2, n1) / (n1 + n2) with n1 = 1, n2 = sqrt(2)
    s = np.sqrt(2.0)
    np.testing.assert_allclose(two_task_weights("imtl_g", G), [[s / (1 + s), 1 / (1 + s)]])
    # Nash-MTL: alpha_t = 1 / (n_t sqrt(1 + cos)), and G alpha = 1 / alpha
    alpha = two_task_weights("nash_mtl", G)[0]
    np.testing.assert_allclose(G[0] @ alpha, 1.0 / alpha)
    np.testing.assert_allclose(alpha, [1 / np.sqrt(1 - 1 / s), 1 / (s * np.sqrt(1 - 1 / s))])
    # Aligned-MTL on orthogonal gradients of norms 1 and 2: B = diag(1, 1/2), weights B 1/2
    np.testing.assert_allclose(two_task_weights("aligned_mtl", np.diag([1.0, 4.0])[None]),
                               [[0.5, 0.25]])


def test_nash_mtl_direction_has_norm_sqrt2_even_for_nearly_opposite_gradients():
    # 1 + cos = 2.9e-10: nash_mtl_weights' Newton solver stops after 100 iterations here.
    G = np.array([[[7.325083290841097, -0.24979356223145685],
                   [-0.24979356223145685, 0.008518240856864713]]])
    alpha = two_task_weights("nash_mtl", G)[0]
    assert np.isclose(alpha @ G[0] @ alpha, 2.0)
    np.testing.assert_allclose(G[0] @ alpha * alpha, [1.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("method", TWO_TASK_METHODS)
def test_degenerate_rows_fall_back_to_the_general_forms(method):
    G = np.array([
        [[0.0, 0.0], [0.0, 0.0]],  # both zero
        [[1.0, 0.0], [0.0, 0.0]],  # one zero gradient
        [[1.0, 2.0], [2.0, 4.0]],  # parallel, same direction
        [[1.0, -1.0], [-1.0, 1.0]],  # exactly opposite
    ])
    W = two_task_weights(method, G)
    R = np.stack([_general(method, g) for g in G])
    assert np.all(np.isfinite(W))
    np.testing.assert_array_equal(W[0], R[0])  # the zero matrix: the general form's convention
    assert np.all(_direction_gap(W[1:], R[1:], G[1:]) < 1e-9)


def test_two_task_weights_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown method"):
        two_task_weights("sgd", np.eye(2)[None])
    with pytest.raises(ValueError, match="shape"):
        two_task_weights("mgda", np.eye(3)[None])
    with pytest.raises(ValueError, match="shape"):
        two_task_weights("mgda", np.eye(2))  # one matrix, not a batch
    with pytest.raises(ValueError, match="NaN"):
        two_task_weights("mgda", np.full((1, 2, 2), np.nan))
    with pytest.raises(ValueError, match="negative diagonal"):
        two_task_weights("mgda", -np.eye(2)[None])
    with pytest.raises(ValueError, match="c must be"):
        two_task_weights("cagrad", np.eye(2)[None], c=-1.0)


@SETTINGS
@given(J=jacobians())
def test_single_matrix_mgda_is_the_batched_form_on_a_batch_of_one(J):
    for G in _grams(J):
        np.testing.assert_array_equal(core.mgda_two_task_weights(G), two_task_weights("mgda", G[None])[0])


def test_single_matrix_mgda_on_identical_and_zero_gradients_is_mgda_weights():
    # the formula's 0 / 0: the general solver's answer (the old copy returned (0, 1) here)
    for G in (np.ones((2, 2)), 4.0 * np.ones((2, 2)), np.full((2, 2), 1.0 + 1e-15), np.zeros((2, 2))):
        np.testing.assert_allclose(core.mgda_two_task_weights(G), core.mgda_weights(G), atol=1e-12)
    np.testing.assert_allclose(core.mgda_two_task_weights(np.ones((2, 2))), [1.0, 0.0])
    np.testing.assert_allclose(core.mgda_two_task_weights(np.zeros((2, 2))), [0.5, 0.5])
    # float32 input, hand-computed: g1 = (2, 0), g2 = (0, 1) -> gamma = 1 / 5
    G32 = np.array([[4.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(core.mgda_two_task_weights(G32), [0.2, 0.8], rtol=1e-12)
    with pytest.raises(ValueError, match="exactly 2 tasks"):
        core.mgda_two_task_weights(np.eye(3))
    with pytest.raises(ValueError, match="NaN or inf"):
        core.mgda_two_task_weights(np.array([[np.nan, 0.0], [0.0, 1.0]]))


@st.composite
def opposite_jacobians(draw):
    """g2 = -lambda g1 (+ noise), lambda from 1e-4 to 1e4 (away from 1, where g0 = 0):
    exactly opposite (lambda a power of 2, no noise), opposite to rounding (any lambda,
    no noise) or nearly opposite (noise 1e-12 to 1e-3), at an overall scale 1e-6 to 1e6."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    g1 = rng.standard_normal((8, 3))
    exponent = rng.uniform(0.01, 4.0, (8, 1)) * rng.choice([-1.0, 1.0], (8, 1))
    lam = np.where(rng.random((8, 1)) < 0.3, 2.0 ** np.round(3.3 * exponent), 10.0**exponent)
    noise = np.where(rng.random((8, 1)) < 0.5, 0.0, 10.0 ** rng.uniform(-12, -3, (8, 1)))
    g2 = -lam * g1 + noise * lam * rng.standard_normal((8, 3))
    scale = 10.0 ** draw(st.integers(-6, 6))
    return scale * np.stack([g1, g2], axis=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@SETTINGS
@given(J=opposite_jacobians(), c=st.floats(0.05, 0.9))
def test_cagrad_closed_form_on_opposite_gradients_matches_the_general_form_without_it(dtype, J, c):
    # On the Pareto set of chapter 8's toy the two gradients are opposite. For c < 1 the
    # dual's minimiser is then an end of the segment (w* = 0 or 1, the smaller gradient),
    # which the closed form gets exactly, without the general solver (SLSQP, ~350 us).
    J = J.astype(dtype)
    G = _grams(J)
    calls = []
    general = core._general_weights
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(core, "_general_weights", lambda *args: calls.append(args) or general(*args))
        W = two_task_weights("cagrad", G, c)
    assert calls == []
    R = np.stack([core.cagrad_weights(g, c=c) for g in G])
    # the directions from J (G is singular to rounding here: (W - R) G (W - R) may come out < 0)
    J = J.astype(np.float64)
    d, reference = np.einsum("st,stp->sp", W, J), np.einsum("st,stp->sp", R, J)
    size = np.maximum(np.linalg.norm(reference, axis=1), np.sqrt(np.einsum("sii->s", G) / 2))
    assert np.all(np.linalg.norm(d - reference, axis=1) < 1e-6 * size)


def test_cagrad_on_exactly_opposite_gradients_hand_computed():
    # g1 = (1, 0), g2 = (-3, 0), c = 0.5: g0 = (-1, 0), radius 0.5. Of the directions
    # d = g0 + 0.5 v (|v| = 1) the worst improvement min(d_1, -3 d_1) = d_1 is largest for
    # v = (1, 0): d = (-0.5, 0) = 1 g1 + 0.5 g2.
    G = np.array([[[1.0, -3.0], [-3.0, 9.0]]])
    np.testing.assert_allclose(two_task_weights("cagrad", G, 0.5), [[1.0, 0.5]], rtol=1e-15)
    np.testing.assert_allclose(core.cagrad_weights(G[0], c=0.5), [1.0, 0.5], rtol=1e-7)
    # the same with the tasks swapped, scaled by 1e-6, and from a float32 Gram matrix
    swapped = 1e-12 * G[:, ::-1, ::-1]
    np.testing.assert_allclose(two_task_weights("cagrad", swapped, 0.5), [[0.5, 1.0]], rtol=1e-15)
    np.testing.assert_allclose(two_task_weights("cagrad", G.astype(np.float32), 0.5), [[1.0, 0.5]], rtol=1e-15)
    # a zero gradient is left to the general form
    G_zero = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    np.testing.assert_allclose(two_task_weights("cagrad", G_zero, 0.5)[0], core.cagrad_weights(G_zero[0], c=0.5))


def test_cagrad_with_a_zero_mean_gradient_is_the_mean_without_the_general_form(monkeypatch):
    # g2 = -g1 (to rounding): g0 = 0, where cagrad_weights returns the mean.
    g1 = np.array([0.3, -1.7, 2.2])
    G = _grams(np.stack([np.stack([g1, -g1]), np.stack([g1, -(g1 * (1 + 1e-17))])]))
    monkeypatch.setattr(core, "_general_weights", lambda *args: pytest.fail("general form called"))
    np.testing.assert_array_equal(two_task_weights("cagrad", G, 0.5), 0.5)
    np.testing.assert_array_equal(core.cagrad_weights(G[0], c=0.5), [0.5, 0.5])
