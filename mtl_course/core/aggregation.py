r"""Gradient aggregation rules, written once in numpy on the Gram matrix.

Every gradient method of chapter 8 maps the Jacobian ``J`` (``T`` tasks by
``P`` parameters; row ``t`` is the gradient :math:`g_t` of task ``t``) to one
update direction

.. math::  d = w^\top J = \sum_t w_t\, g_t ,

and the weights ``w`` depend on ``J`` only through its Gram matrix
:math:`G = J J^\top` (``G[i, j]`` is :math:`g_i \cdot g_j`). So this module
holds one ``<method>_weights(G, ...)`` function per method; the PyTorch and
TensorFlow aggregators (``mtl_course.torch.aggregators``,
``mtl_course.tf.aggregators``) compute ``G`` in their framework, call these,
and return ``w @ J``. The weights are also what the book plots.

Conventions shared by all functions:

* ``G`` is a symmetric positive semi-definite ``(T, T)`` array, ``T >= 1``;
  the solve runs in float64.
* ``rtol`` is the relative accuracy of the Gram matrix: ``G[s, t]`` is trusted
  to about ``rtol * |g_s| |g_t|``. Decisions about degeneracy (linear
  dependence, zero in the convex hull) are taken on the cosine matrix
  :math:`C_{st} = G_{st} / (|g_s||g_t|)`, whose entries all carry that same
  absolute error, so a gradient 300 (or 1e6) times smaller than the others is
  never mistaken for zero; only an exactly zero gradient (``G[t, t] == 0``) is.
  The default suits a Gram matrix accurate to float64; the framework wrappers
  pass :func:`gram_rtol` of the Jacobian's dtype (float32: about 1e-7 per entry).
* The answer does not depend on the gradients' absolute scale: every solve
  runs on ``G`` divided by its mean diagonal (the wrappers also rescale ``J``
  before forming ``G`` when ``J J^T`` would underflow or overflow).
* Weights stay bounded on singular ``G`` (where the optimal weights are not
  unique, a bounded optimum is chosen), so ``w @ J`` does not lose the
  direction to cancellation.
* A zero Gram matrix (all gradients zero) gives well-defined weights whose
  direction ``w @ J`` is zero; no function ever returns NaN.

For two tasks, :func:`two_task_weights` computes every method's weights in
closed form for a whole batch of ``(2, 2)`` Gram matrices at once (the last
section of this module), falling back to the general functions on the
degenerate rows.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize, nnls

from mtl_course.checks import as_generator

__all__ = [
    "gram_rtol",
    "mean_weights",
    "mgda_weights",
    "mgda_two_task_weights",
    "mgda_frank_wolfe_weights",
    "pcgrad_weights",
    "cagrad_weights",
    "nash_mtl_weights",
    "imtl_g_weights",
    "aligned_mtl_weights",
    "dual_cone_projection_weights",
    "upgrad_weights",
    "TWO_TASK_METHODS",
    "two_task_weights",
]


# ----------------------------------------------------------------- helpers


def gram_rtol(n_tasks: int, eps: float = float(np.finfo(np.float64).eps)) -> float:
    """Relative zero threshold for a ``(n_tasks, n_tasks)`` Gram matrix whose
    entries carry a relative rounding error of about ``eps``.

    ``100 * n_tasks * eps``: about 4e-14 for float64 and 2e-5 for float32 with
    two tasks. It bounds the absolute error of the cosine matrix
    :math:`G_{st} / (|g_s||g_t|)` (and so of its eigenvalues): cosine-matrix
    eigenvalues below ``rtol`` times the largest are rounding noise (linearly
    dependent gradients), and so is a min-norm point of the unit gradients whose
    squared norm is below ``rtol`` (zero in the convex hull). Singular values,
    being norms, are compared with ``sqrt(rtol)``.

    Examples:
        >>> import numpy as np
        >>> bool(gram_rtol(2) == 200 * np.finfo(np.float64).eps)
        True
        >>> round(gram_rtol(2, eps=float(np.finfo(np.float32).eps)), 8)
        2.384e-05
    """
    return 100.0 * n_tasks * eps


def _check_gram(G: np.ndarray) -> np.ndarray:
    G = np.asarray(G, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise ValueError(f"the Gram matrix must be square (T, T), got shape {G.shape}")
    if G.shape[0] == 0:
        raise ValueError("the Gram matrix is empty: there must be at least one task")
    if not np.all(np.isfinite(G)):
        raise ValueError(
            "the Gram matrix J J^T contains NaN or inf (the gradients overflowed); "
            "rescale the losses or use float64"
        )
    return (G + G.T) / 2.0  # remove rounding asymmetry from the framework's matmul


def _normalized(G: np.ndarray) -> tuple[np.ndarray, float]:
    """``G`` divided by its mean diagonal (the mean squared gradient norm), and that scale.

    The scale is 0 when every gradient is zero.
    """
    scale = float(np.trace(G)) / G.shape[0]
    if scale <= 0.0:
        return np.zeros_like(G), 0.0
    return G / scale, scale


def _nonzero_cosines(G: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The indices of the non-zero gradients, their norms, and their cosine matrix.

    The cosine matrix is what degeneracy is decided on: its entries all carry the
    same absolute rounding error, whatever the gradients' sizes.
    """
    norms = np.sqrt(np.clip(np.diag(G), 0.0, None))
    active = np.flatnonzero(norms > 0.0)
    n = norms[active]
    C = G[np.ix_(active, active)] / n[:, None] / n[None, :]
    np.fill_diagonal(C, 1.0)
    return active, n, C


def _range_basis(n: np.ndarray, C: np.ndarray, rtol: float) -> np.ndarray | None:
    """An orthonormal basis of the range of ``D C D`` (``D = diag(n)``) once the
    eigenvalues of ``C`` below ``rtol`` times the largest are dropped as noise;
    ``None`` when ``C`` (and so the Gram matrix of these gradients) has full rank.
    """
    eigenvalues, U = np.linalg.eigh(C)
    keep = eigenvalues > rtol * eigenvalues[-1]
    if keep.all():
        return None
    Q, _ = np.linalg.qr(n[:, None] * U[:, keep])
    return Q


def _zero_in_hull(C: np.ndarray, rtol: float) -> bool:
    """Whether zero is (to rounding) in the convex hull of the unit gradients.

    That is the case exactly when it is in the hull of the gradients themselves;
    the squared norm of the unit gradients' min-norm point is compared with ``rtol``.
    """
    alpha = mgda_weights(C)
    return float(alpha @ C @ alpha) <= rtol


def _gram_factor(G: np.ndarray, rtol: float = 0.0) -> np.ndarray:
    """A matrix ``A`` with ``A.T @ A == G`` (from the eigendecomposition).

    ``||A @ w||`` is then the norm of the direction ``w @ J``, which turns
    problems on the directions into least-squares problems on the weights.
    Eigenvalues below ``rtol`` times the largest are set to zero: the square
    root would turn their rounding error ``e`` into ``sqrt(e)`` (1e-8 in float64).
    """
    eigenvalues, V = np.linalg.eigh(G)
    eigenvalues = np.where(eigenvalues > rtol * eigenvalues[-1], eigenvalues, 0.0)
    return np.sqrt(eigenvalues)[:, None] * V.T


# -------------------------------------------------------------------- mean


def mean_weights(G: np.ndarray) -> np.ndarray:
    r"""Equal weights :math:`w_t = 1/T`: the direction is the mean gradient.

    Examples:
        >>> import numpy as np
        >>> G = np.array([[1.0, -0.5], [-0.5, 1.25]])  # J J^T of J = [[1, 0], [-0.5, 1]]
        >>> mean_weights(G)
        array([0.5, 0.5])
    """
    G = _check_gram(G)
    T = G.shape[0]
    return np.full(T, 1.0 / T)


# -------------------------------------------------------------------- MGDA


def _min_norm_on_segment(xx: float, xy: float, yy: float) -> float:
    r"""The :math:`\gamma \in [0, 1]` minimising :math:`\|(1-\gamma) x + \gamma y\|^2`.

    Given the inner products ``x.x``, ``x.y`` and ``y.y``:
    :math:`\gamma = \mathrm{clip}\big((x\cdot x - x\cdot y) / \|x - y\|^2, 0, 1\big)`
    (Sener and Koltun, 2018, Algorithm 1). When ``x == y`` any gamma works; 0 is returned.
    """
    denominator = xx + yy - 2.0 * xy
    if denominator <= 0.0:
        return 0.0
    return float(np.clip((xx - xy) / denominator, 0.0, 1.0))


def mgda_two_task_weights(G: np.ndarray) -> np.ndarray:
    r"""MGDA for two tasks in closed form, on one Gram matrix.

    The min-norm point of the segment between :math:`g_1` and :math:`g_2` is
    :math:`\gamma g_1 + (1-\gamma) g_2` with
    :math:`\gamma = \mathrm{clip}\big((g_2 - g_1)\cdot g_2 / \|g_1 - g_2\|^2, 0, 1\big)`
    (Sener and Koltun, "Multi-Task Learning as Multi-Objective Optimization",
    NeurIPS 2018, Algorithm 1). This is :func:`two_task_weights` ``("mgda", ...)``
    on a batch of one: where the formula does not apply (identical gradients,
    :math:`\|g_1 - g_2\|^2` at rounding level, or zero gradients) the weights
    are :func:`mgda_weights`'s, for example ``(1, 0)`` for identical gradients
    (any weights give the same direction there).

    Examples:
        >>> import numpy as np
        >>> G = np.array([[1.0, -0.5], [-0.5, 1.25]])  # J J^T of J = [[1, 0], [-0.5, 1]]
        >>> mgda_two_task_weights(G).round(4)
        array([0.5385, 0.4615])
    """
    G = _check_gram(G)
    if G.shape[0] != 2:
        raise ValueError(f"mgda_two_task_weights needs exactly 2 tasks, got {G.shape[0]}")
    return two_task_weights("mgda", G[None])[0]


def mgda_weights(G: np.ndarray) -> np.ndarray:
    r"""MGDA: the minimum-norm point of the convex hull of the task gradients.

    .. math::  \alpha^* = \arg\min_{\alpha \ge 0,\ \sum_t \alpha_t = 1}
               \alpha^\top G \alpha ,\qquad d = \alpha^{*\top} J .

    If :math:`d \ne 0` it is a common descent direction (:math:`g_t \cdot d \ge
    \|d\|^2` for every task); :math:`d = 0` means the point is Pareto
    stationary (Désidéri, 2012; Sener and Koltun, "Multi-Task Learning as
    Multi-Objective Optimization", NeurIPS 2018).

    Solved exactly with non-negative least squares (``scipy.optimize.nnls``):
    writing :math:`\mu = s\,\alpha` with :math:`s \ge 0` and :math:`\alpha` in
    the simplex, :math:`\|A\mu\|^2 + (1^\top\mu - 1)^2 = s^2 q + (s - 1)^2` with
    :math:`q = \alpha^\top G \alpha`, whose minimum over :math:`s` is
    :math:`q / (1 + q)`, increasing in :math:`q`. So the NNLS solution of
    :math:`\min_{\mu \ge 0} \|[A; 1^\top]\mu - [0; 1]\|^2` (``A.T @ A = G``),
    rescaled to sum to one, is :math:`\alpha^*`. See
    :func:`mgda_frank_wolfe_weights` for the paper's iterative solver.

    Examples:
        >>> import numpy as np
        >>> G = np.array([[1.0, -0.5], [-0.5, 1.25]])  # J J^T of J = [[1, 0], [-0.5, 1]]
        >>> w = mgda_weights(G)
        >>> w.round(4), round(float(w @ G @ w), 4)  # ||d||^2
        (array([0.5385, 0.4615]), 0.3077)
    """
    G = _check_gram(G)
    G, scale = _normalized(G)
    T = G.shape[0]
    if scale == 0.0:
        return np.full(T, 1.0 / T)
    A = np.vstack([_gram_factor(G), np.ones((1, T))])
    b = np.zeros(T + 1)
    b[-1] = 1.0
    mu, _ = nnls(A, b)
    return mu / mu.sum()


def mgda_frank_wolfe_weights(
    G: np.ndarray, max_iter: int = 1000, tol: float = 1e-6
) -> tuple[np.ndarray, int]:
    r"""MGDA by the Frank-Wolfe solver of Sener and Koltun (NeurIPS 2018, Algorithm 2).

    Start from :math:`\alpha = 1/T`. Each iteration picks the task
    :math:`t = \arg\min_t (G\alpha)_t` whose gradient is most opposed to the
    current direction and moves to the min-norm point of the segment between
    :math:`\alpha` and the vertex :math:`e_t` (the two-task closed form).

    Stops when the Frank-Wolfe duality gap
    :math:`2\,(\alpha^\top G\alpha - (G\alpha)_t)` (an upper bound on
    :math:`\|d\|^2 - \|d^*\|^2`, in units of the mean squared gradient norm)
    falls below ``tol``, or after ``max_iter``
    iterations. Returns ``(weights, iterations_done)``. How fast the gap
    falls depends on where the solution lies. Inside the simplex (every
    weight positive) it falls geometrically (Guelat and Marcotte, Mathematical
    Programming 35, 1986): each hundredfold smaller ``tol`` costs about the
    same number of extra iterations (more, the closer the solution is to a
    face). On a face of the simplex (some weight zero) the iterates zig-zag
    towards that face and the gap falls only like one over the number of
    iterations: thousands of iterations for ``tol=1e-4``, and some problems
    do not reach ``tol=1e-6`` in 100,000. :func:`mgda_weights` is exact and is
    what the aggregators use.

    Examples:
        >>> import numpy as np
        >>> G = np.array([[1.0, -0.5], [-0.5, 1.25]])  # J J^T of J = [[1, 0], [-0.5, 1]]
        >>> w, iterations = mgda_frank_wolfe_weights(G, tol=1e-10)
        >>> w.round(4)  # the exact MGDA weights, to tol
        array([0.5385, 0.4615])
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}")
    if tol < 0:
        raise ValueError(f"tol must be non-negative, got {tol}")
    G = _check_gram(G)
    G, scale = _normalized(G)
    T = G.shape[0]
    alpha = np.full(T, 1.0 / T)
    if scale == 0.0:
        return alpha, 0
    iterations = 0
    while iterations < max_iter:
        G_alpha = G @ alpha
        t = int(np.argmin(G_alpha))
        alpha_G_alpha = float(alpha @ G_alpha)
        if 2.0 * (alpha_G_alpha - G_alpha[t]) <= tol:
            break
        # gamma is the step towards e_t: segment from x = alpha to y = e_t
        gamma = _min_norm_on_segment(alpha_G_alpha, float(G_alpha[t]), float(G[t, t]))
        alpha = (1.0 - gamma) * alpha
        alpha[t] += gamma
        iterations += 1
    return alpha, iterations


# ------------------------------------------------------------------ PCGrad


def pcgrad_weights(
    G: np.ndarray, generator: np.random.Generator | int | None = None
) -> np.ndarray:
    r"""PCGrad, "projecting conflicting gradients" (Yu et al., "Gradient Surgery
    for Multi-Task Learning", NeurIPS 2020, Algorithm 1).

    For each task ``i``, start from :math:`g_i^{PC} = g_i` and visit the other
    tasks ``j`` in a random order; if :math:`g_i^{PC} \cdot g_j < 0`, remove the
    conflicting component,
    :math:`g_i^{PC} \leftarrow g_i^{PC} - \frac{g_i^{PC}\cdot g_j}{\|g_j\|^2} g_j`.
    The update is the sum :math:`d = \sum_i g_i^{PC}` (a sum, as in the paper,
    not a mean). Each :math:`g_i^{PC}` is tracked as a weight vector ``c`` with
    :math:`g_i^{PC} = c^\top J`, so :math:`g_i^{PC}\cdot g_j = (G c)_j`.

    ``generator`` draws one random order per task: a
    ``numpy.random.Generator``, an int seed, or ``None`` for fresh entropy.
    Zero gradients never conflict, so they are never projected on (nor is a
    gradient whose squared norm underflowed, however its inner products came out).

    Examples:
        >>> import numpy as np
        >>> G = np.array([[1.0, -0.5], [-0.5, 1.25]])  # J J^T of J = [[1, 0], [-0.5, 1]]
        >>> pcgrad_weights(G, generator=0).round(4)
        array([1.5, 1.4])
    """
    G = _check_gram(G)
    rng = as_generator(generator)
    T = G.shape[0]
    weights = np.zeros(T)
    for i in range(T):
        c = np.zeros(T)
        c[i] = 1.0
        for j in rng.permutation(T):
            if j == i:
                continue
            inner = float(G[j] @ c)
            # In floating point G[j, j] can underflow to 0 while G[j] @ c does not
            # (a gradient of norm 1e-30 in float32): such a g_j is treated as zero.
            if inner < 0.0 and G[j, j] > 0.0:
                factor = inner / G[j, j]
                if np.isfinite(factor):
                    c[j] -= factor
        weights += c
    return weights


# ------------------------------------------------------------------ CAGrad


def cagrad_weights(G: np.ndarray, c: float = 0.5, rtol: float | None = None) -> np.ndarray:
    r"""CAGrad, conflict-averse gradient descent (Liu et al., "Conflict-Averse
    Gradient Descent for Multi-task Learning", NeurIPS 2021).

    CAGrad picks, within a ball around the mean gradient :math:`g_0`, the
    direction that most improves the worst task:

    .. math::  \max_d\ \min_t\ g_t\cdot d \quad\text{s.t.}\quad
               \|d - g_0\| \le c\,\|g_0\| .

    As in the paper, it is solved through its dual on the simplex,

    .. math::  w^* = \arg\min_{w \ge 0,\ \sum w = 1}\ g_w \cdot g_0
               + c\|g_0\|\,\|g_w\| ,\qquad g_w = w^\top J ,

    giving :math:`d = g_0 + \frac{c\|g_0\|}{\|g_w\|} g_w`, i.e. weights
    :math:`1/T + \frac{c\|g_0\|}{\|g_w\|} w^*` (SLSQP, ``scipy.optimize.minimize``,
    as in the authors' code; SLSQP reaches about 1e-8 relative accuracy). The
    answer is accepted when the duality gap (dual value minus
    :math:`\min_t g_t\cdot d`, in units of the mean squared gradient norm) is
    below ``1e-7``. Near
    :math:`g_w = 0` the dual is not smooth and that formula divides by almost
    zero; the primal problem is then solved directly in the weights
    (:math:`d = \gamma^\top J`: maximise ``s`` subject to
    :math:`G\gamma \ge s` and :math:`(\gamma - 1/T)^\top G(\gamma - 1/T) \le
    c^2\|g_0\|^2`), also by SLSQP, to about 1e-7 relative accuracy.

    Conventions: no final rescaling. The authors' code divides ``d`` by a
    constant: by :math:`1 + c` in their two-objective toy, by :math:`1 + c^2`
    (``rescale=1``) or :math:`1 + c` (``rescale=2``) in their image
    experiments, as LibMTL's ``CAGrad`` does; torchjd's ``CAGrad`` does not
    rescale. With Adam the factor hardly matters; with SGD it scales the
    learning rate. ``c = 0`` gives the mean gradient; one task gives
    :math:`(1 + c) g`. Degenerate case: when zero is in the convex hull
    of the gradients and the ball contains directions that conflict with no
    task (the dual cone :math:`\{x: g_t\cdot x \ge 0\}`), all of those are
    optimal (worst improvement 0); the one closest to :math:`g_0`, its
    projection on the dual cone (:func:`dual_cone_projection_weights`), is
    returned. (torchjd returns zero there, outside the ball when ``c < 1``.)

    Examples:
        >>> import numpy as np
        >>> G = np.array([[1.0, -0.5], [-0.5, 1.25]])  # J J^T of J = [[1, 0], [-0.5, 1]]
        >>> cagrad_weights(G, c=0.5).round(4)
        array([0.8013, 0.6868])
    """
    if not np.isfinite(c) or c < 0:
        raise ValueError(f"c must be a finite non-negative number, got {c}")
    G = _check_gram(G)
    G, scale = _normalized(G)
    T = G.shape[0]
    rtol = gram_rtol(T) if rtol is None else rtol
    mean = np.full(T, 1.0 / T)
    if scale == 0.0 or c == 0.0:
        return mean
    norms = np.sqrt(np.clip(np.diag(G), 0.0, None))
    g0_sq_norm = float(mean @ G @ mean)
    # |g0|^2 is accurate to about rtol (sum_t |g_t| / T)^2
    if g0_sq_norm <= rtol * float(mean @ norms) ** 2:
        return mean
    radius = c * np.sqrt(g0_sq_norm)
    if _zero_in_hull(_nonzero_cosines(G)[2], rtol):
        projection = dual_cone_projection_weights(G, mean, rtol=rtol)
        offset = projection - mean
        if float(offset @ G @ offset) <= radius**2 * (1.0 + 1e-9):
            return projection
    w, dual_value = _cagrad_dual(G, radius)
    gw_norm = np.sqrt(max(float(w @ G @ w), 0.0))
    if gw_norm > np.sqrt(rtol) * float(w @ norms):
        weights = mean + (radius / gw_norm) * w
        if dual_value - float(np.min(G @ weights)) <= 1e-7:
            return weights
    weights = _cagrad_primal(G, radius)
    weights[norms == 0.0] = 1.0 / T  # arbitrary in the primal (and possibly huge): the mean's share
    return weights


def _simplex_constraint(T: int) -> dict:
    return {"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(T)}


def _cagrad_dual(G: np.ndarray, radius: float) -> tuple[np.ndarray, float]:
    """CAGrad's dual: min over the simplex of w.G.1/T + radius * sqrt(w.G.w)."""
    T = G.shape[0]
    G_g0 = G @ np.full(T, 1.0 / T)  # (G_g0)_t = g_t . g_0

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        Gw = G @ w
        norm = np.sqrt(max(float(w @ Gw), 1e-30))
        return float(w @ G_g0) + radius * norm, G_g0 + radius * Gw / norm

    result = minimize(
        objective, np.full(T, 1.0 / T), jac=True, method="SLSQP",
        bounds=[(0.0, 1.0)] * T, constraints=[_simplex_constraint(T)],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    w = np.clip(result.x, 0.0, None)
    w /= w.sum()
    return w, objective(w)[0]


def _cagrad_primal(G: np.ndarray, radius: float) -> np.ndarray:
    """CAGrad's primal in the weights: max s s.t. G gamma >= s, gamma in the ball."""
    T = G.shape[0]
    mean = np.full(T, 1.0 / T)

    def in_ball(x: np.ndarray) -> float:
        offset = x[:T] - mean
        return radius**2 - float(offset @ G @ offset)

    constraints = [
        {"type": "ineq", "fun": lambda x: G @ x[:T] - x[T],
         "jac": lambda x: np.hstack([G, -np.ones((T, 1))])},
        {"type": "ineq", "fun": in_ball,
         "jac": lambda x: np.concatenate([-2.0 * G @ (x[:T] - mean), [0.0]])},
    ]
    start = np.concatenate([mean, [float(np.min(G @ mean))]])  # the ball's center: feasible
    result = minimize(
        lambda x: (-x[T], np.concatenate([np.zeros(T), [-1.0]])), start, jac=True,
        method="SLSQP", constraints=constraints, options={"ftol": 1e-14, "maxiter": 500},
    )
    return result.x[:T]


# ----------------------------------------------------------------- Nash-MTL


def nash_mtl_weights(
    G: np.ndarray, rtol: float | None = None, max_iter: int = 100, tol: float = 1e-20
) -> np.ndarray:
    r"""Nash-MTL: the Nash bargaining solution (Navon et al., "Multi-Task
    Learning as a Bargaining Game", ICML 2022).

    The weights solve :math:`G\alpha = 1/\alpha` (element-wise), :math:`\alpha > 0`,
    i.e. :math:`g_t \cdot d = 1/\alpha_t` for every task. This is the
    stationarity condition of the strictly convex problem

    .. math::  \min_{\alpha > 0}\ \tfrac12 \alpha^\top G \alpha - \sum_t \log \alpha_t ,

    solved here by Newton's method with a backtracking line search that keeps
    :math:`\alpha > 0` (Boyd and Vandenberghe, Convex Optimization, 2004, §9.5),
    stopping when the squared Newton decrement is below ``tol``. It runs on the
    cosine matrix (:math:`\beta_t = \|g_t\|\alpha_t` solves
    :math:`C\beta = 1/\beta`), so the answer does not depend on the gradients'
    sizes. Near degeneracy a step that lowers the residual of the equation is
    taken even when rounding hides the decrease of the objective. If
    ``max_iter`` iterations leave a relative residual above 1e-6 and above the
    floor the cosines' accuracy allows (only for nearly degenerate gradients),
    the best iterate is returned with a ``RuntimeWarning`` saying so. This is the
    exact solution at every step. The authors' code (and LibMTL's and torchjd's
    ``NashMTL``, which follow it) divides the Gram matrix by its Frobenius norm,
    approximates the solution with at most 20 warm-started convex-concave steps
    (stopping when the normalised equation holds to 1e-3), and clips the norm
    of the resulting update of the shared parameters to ``max_norm = 1``;
    none of that is done here. Under Adam the length of ``d`` hardly matters;
    under SGD the clip shortens every step longer than 1.

    The direction :math:`d = \alpha^\top J` does not change when all gradients
    are rescaled (``alpha`` scales inversely), and :math:`\|d\| = \sqrt{T}`
    for ``T`` non-zero gradients; one task gives the unit vector
    :math:`g / \|g\|`. A solution exists exactly when some direction improves
    every task, i.e. zero is not in the convex hull of the gradients (then the
    objective is coercive). Degenerate cases: zero gradients get weight 0 and
    are left out; if zero is in the convex hull of the others (the unit
    gradients' min-norm point squared below ``rtol``, e.g. exactly opposite
    gradients) no bargaining agreement helps everyone and all weights are 0
    (``d = 0``). Two active tasks use the closed form
    :math:`\alpha_t = 1/(\|g_t\|\sqrt{1+\cos\phi})`.

    Examples:
        >>> import numpy as np
        >>> G = np.array([[1.0, -0.5], [-0.5, 1.25]])  # J J^T of J = [[1, 0], [-0.5, 1]]
        >>> w = nash_mtl_weights(G)
        >>> w.round(4), (G @ w * w).round(6)  # G w = 1 / w
        (array([1.345, 1.203]), array([1., 1.]))
    """
    G = _check_gram(G)
    T = G.shape[0]
    rtol = gram_rtol(T) if rtol is None else rtol
    G, scale = _normalized(G)
    weights = np.zeros(T)
    if scale == 0.0:
        return weights
    # With G = D C D (D the gradient norms, C the cosines) and beta = D alpha, the
    # equation is C beta = 1 / beta: solved on C, whatever the gradients' sizes.
    active, norms, C = _nonzero_cosines(G)
    if active.size > 1 and _zero_in_hull(C, rtol):
        return weights
    if active.size == 1:
        beta = np.ones(1)
    elif active.size == 2:
        # Closed form: beta_t = 1 / sqrt(1 + cos), which solves C beta = 1/beta
        # exactly and stays accurate for nearly opposite gradients, where Newton's
        # method is ill-conditioned.
        beta = np.full(2, 1.0 / np.sqrt(1.0 + C[0, 1]))
    else:
        beta = _nash_newton(C, max_iter, tol, rtol)
    weights[active] = beta / norms / np.sqrt(scale)
    return weights


def _nash_residual(C: np.ndarray, beta: np.ndarray) -> float:
    """``max_t |beta_t (C beta)_t - 1|``: the relative error of ``C beta = 1 / beta``."""
    return float(np.max(np.abs(beta * (C @ beta) - 1.0)))


def _nash_newton(C: np.ndarray, max_iter: int, tol: float, rtol: float) -> np.ndarray:
    """Damped Newton's method on ``beta.C.beta / 2 - sum(log beta)``, from ``beta = 1``.

    Returns the iterate with the smallest residual. Near degeneracy (zero close to
    the hull) beta grows like 1/angle and ``C beta`` cancels: the residual cannot
    fall below about ``rtol * max(beta)^2`` (C is only known to ``rtol``), and
    stalls there. A residual above both that floor and 1e-6 gives a warning.
    """
    def f(b: np.ndarray) -> float:
        return 0.5 * float(b @ C @ b) - float(np.sum(np.log(b)))

    beta = np.ones(len(C))  # exact when the gradients are orthogonal
    best, best_residual = beta, _nash_residual(C, beta)
    for _ in range(max_iter):
        gradient = C @ beta - 1.0 / beta
        step = -np.linalg.solve(C + np.diag(1.0 / beta**2), gradient)
        decrement = -float(gradient @ step)
        if not decrement > tol:  # converged (or a NaN from a singular system)
            break
        t = 1.0
        while np.any(beta + t * step <= 0.0):
            t *= 0.5
        # Backtracking (Armijo) on f, except that a step which lowers the residual
        # is taken as is: near degeneracy f's rounding error (about eps |beta|^2)
        # hides its decrease while the residual still falls.
        residual_now = _nash_residual(C, beta)
        if decrement > 1e-8 and not _nash_residual(C, beta + t * step) < residual_now:
            f_beta = f(beta)
            while f(beta + t * step) > f_beta - 0.25 * t * decrement and t > 1e-12:
                t *= 0.5
        beta = beta + t * step
        residual = _nash_residual(C, beta)
        if residual < best_residual:
            best, best_residual = beta, residual
        if best_residual <= 1e-14:
            break
    if best_residual > max(1e-6, rtol * float(np.max(best)) ** 2):
        warnings.warn(
            f"Nash-MTL: Newton's method did not converge in {max_iter} iterations "
            f"(relative residual of G alpha = 1/alpha: {best_residual:.1e}); the "
            "gradients are nearly degenerate (zero is close to their convex hull). "
            "Returning the best iterate.",
            RuntimeWarning, stacklevel=3,
        )
    return best


# ------------------------------------------------------------------ IMTL-G


def imtl_g_weights(G: np.ndarray, rtol: float | None = None) -> np.ndarray:
    r"""IMTL-G, the gradient part of impartial multi-task learning (Liu et al.,
    "Towards Impartial Multi-task Learning", ICLR 2021).

    Finds :math:`d = \sum_t \alpha_t g_t` with :math:`\sum_t \alpha_t = 1`
    whose projections on the unit gradients :math:`u_t = g_t / \|g_t\|` are all
    equal, :math:`d\cdot u_t = d \cdot u_s`. As :math:`J d = G\alpha`, that
    asks :math:`G\alpha \propto n` with :math:`n_t = \|g_t\|`:

    .. math::  \alpha \propto G^{+} n ,\qquad \textstyle\sum_t \alpha_t = 1 .

    For linearly independent gradients this is the paper's closed form, solved
    as :math:`D^{-1} C^{-1} 1` on the cosine matrix ``C`` (``D`` the gradient
    norms) so that gradients of very different sizes stay accurate. The
    pseudo-inverse (on the range of ``G``, whose rank is that of ``C`` with
    eigenvalues below ``rtol`` times the largest dropped) extends it to
    dependent gradients, as defined by Quinton and Rey
    ("Jacobian Descent for Multi-Objective Optimization", arXiv 2024) and
    implemented in torchjd; zero gradients then get weight 0. If the
    unnormalised weights sum to zero (e.g. two exactly opposite gradients) no
    impartial direction exists and all weights are 0 (torchjd's convention too).

    Convention: the package applies IMTL-G to the gradients on the shared
    *parameters* (the rows of ``J``), as torchjd's ``IMTLG`` does. The paper
    (and LibMTL's ``IMTL`` with ``rep_grad=True``) applies it to the gradients
    on the shared *features* :math:`z`, which are cheaper and give other
    weights. To follow the paper, compute the weights from the Gram matrix of
    :func:`mtl_course.torch.gradients.representation_jacobian` and use them
    as loss weights, as MGDA-UB does.

    Examples:
        >>> import numpy as np
        >>> G = np.array([[1.0, -0.5], [-0.5, 1.25]])  # J J^T of J = [[1, 0], [-0.5, 1]]
        >>> w = imtl_g_weights(G)
        >>> d_dot_g = G @ w  # g_t . d
        >>> w.round(4), (d_dot_g / np.sqrt(np.diag(G))).round(4)  # equal projections
        (array([0.5279, 0.4721]), array([0.2918, 0.2918]))
    """
    G = _check_gram(G)
    T = G.shape[0]
    rtol = gram_rtol(T) if rtol is None else rtol
    G, scale = _normalized(G)
    if scale == 0.0:
        return np.zeros(T)
    active, norms, C = _nonzero_cosines(G)
    basis = _range_basis(norms, C, rtol)
    v = np.zeros(T)
    if basis is None:  # independent gradients: G^{-1} n = D^{-1} C^{-1} 1, with D = diag(n)
        v[active] = np.linalg.solve(C, np.ones(active.size)) / norms
    else:  # G^+ n = Q (Q^T G Q)^{-1} Q^T n, Q a basis of the range of G
        H = basis.T @ G[np.ix_(active, active)] @ basis
        v[active] = basis @ np.linalg.solve(H, basis.T @ norms)
    # compare the sum with the size of its terms to decide "zero"
    if abs(v.sum()) <= np.sqrt(rtol) * np.abs(v).sum():
        return np.zeros(T)
    return v / v.sum()


# -------------------------------------------------------------- Aligned-MTL


def aligned_mtl_weights(G: np.ndarray, rtol: float | None = None) -> np.ndarray:
    r"""Aligned-MTL (Senushkin et al., "Independent Component Alignment for
    Multi-Task Learning", CVPR 2023, Algorithm 1).

    Aligns the task gradients so that their matrix has equal singular values
    (condition number 1): with :math:`G = V\Lambda V^\top`, the aligned
    Jacobian is :math:`\hat J = B J` with the balance transform

    .. math::  B = \sqrt{\lambda_{\min}}\ V \Lambda^{-1/2} V^\top ,

    and the update is the mean of the aligned gradients,
    :math:`d = \tfrac1T 1^\top \hat J`, i.e. weights :math:`B\,1/T` (``B`` is
    symmetric). :math:`\lambda_{\min}` is the smallest eigenvalue kept.

    Rank deficiency (zero or linearly dependent gradients): ``V`` and
    :math:`\Lambda` keep only the range of ``G`` (so :math:`\Lambda^{-1/2}` is
    a pseudo-inverse square root, as in torchjd), the rank being that of the
    cosine matrix with eigenvalues below ``rtol`` times the largest dropped; a
    small gradient is thus never mistaken for a dependent one. Zero gradients
    get weight 0. One task gives that gradient; all-zero gradients give 0.

    Convention: the update is the *mean* of the aligned gradients, as in the
    paper's Algorithm 1 and torchjd's ``AlignedMTL``. LibMTL's ``Aligned_MTL``
    uses their *sum* (``alpha = B.sum(0)``), a direction ``T`` times longer:
    the same under Adam, a ``T`` times larger learning rate under SGD.

    Examples:
        >>> import numpy as np
        >>> G = np.array([[1.0, -0.5], [-0.5, 1.25]])  # J J^T of J = [[1, 0], [-0.5, 1]]
        >>> aligned_mtl_weights(G).round(4)
        array([0.5208, 0.4734])
    """
    G = _check_gram(G)
    T = G.shape[0]
    rtol = gram_rtol(T) if rtol is None else rtol
    G, scale = _normalized(G)
    mean = np.full(T, 1.0 / T)
    if scale == 0.0:
        return mean
    active, norms, C = _nonzero_cosines(G)
    G_active = G[np.ix_(active, active)]
    basis = _range_basis(norms, C, rtol)
    if basis is None:
        eigenvalues, V = np.linalg.eigh(G_active)
    else:
        eigenvalues, W = np.linalg.eigh(basis.T @ G_active @ basis)
        V = basis @ W
    eigenvalues = np.clip(eigenvalues, np.finfo(np.float64).tiny, None)
    B = np.sqrt(eigenvalues.min()) * (V / np.sqrt(eigenvalues)) @ V.T
    weights = np.zeros(T)
    weights[active] = B @ mean[active]
    return weights


# ------------------------------------------------------------------ UPGrad


def dual_cone_projection_weights(
    G: np.ndarray, u: np.ndarray, rtol: float | None = None
) -> np.ndarray:
    r"""Weights of the projection of :math:`J^\top u` onto the dual cone of the gradients.

    The dual cone :math:`\{x : g_t\cdot x \ge 0\ \forall t\}` holds the
    directions that conflict with no task. The projection of :math:`J^\top u`
    onto it is :math:`J^\top v` with (Quinton and Rey, 2024, Proposition 1)

    .. math::  v = \arg\min_{v \ge u} v^\top G v .

    With :math:`v = u + s` and ``A.T @ A = G`` this is the non-negative least
    squares problem :math:`\min_{s\ge 0}\|A s + A u\|^2`. It is solved in the
    variables :math:`y_t = \|g_t\| v_t`, whose Gram matrix is the cosine
    matrix, so that gradients of very different sizes stay accurate; zero
    gradients keep :math:`v_t = u_t` (they do not change the direction).

    When ``G`` is singular the optimal ``v`` need not be unique (at a weakly
    Pareto-stationary point a non-negative combination of gradients is zero,
    and any multiple of it can be added), and a plain NNLS solver may return
    weights of 1e10 whose cancellation in :math:`J^\top v` ruins the direction.
    So the NNLS problem gets a ridge :math:`\text{rtol}\,\|s\|^2` that keeps
    ``s`` bounded (``scipy.optimize.nnls``), whose bias a few proximal-point
    steps remove (the same ridge centred on the previous solution, which
    converges to an optimal ``s`` near the first one), and is then polished: the exact
    least-squares solution on the ridge solution's support, of minimal norm
    (singular values below ``sqrt(rtol)`` times the largest dropped), replaces
    it when it is non-negative. On well-conditioned ``G`` that is the exact
    projection.

    Examples:
        >>> import numpy as np
        >>> G = np.array([[1.0, -0.5], [-0.5, 1.25]])  # J J^T of J = [[1, 0], [-0.5, 1]]
        >>> v = dual_cone_projection_weights(G, np.array([0.0, 1.0]))  # project g_2
        >>> v.round(4), bool((G @ v >= -1e-12).all())  # no conflict with any task
        (array([0.5, 1. ]), True)
    """
    G = _check_gram(G)
    u = np.asarray(u, dtype=np.float64)
    if u.shape != (G.shape[0],):
        raise ValueError(f"u must have shape ({G.shape[0]},), got {u.shape}")
    rtol = gram_rtol(G.shape[0]) if rtol is None else rtol
    return _DualConeProjector(G, rtol).project(u)


class _DualConeProjector:
    """Factorises the cosine matrix once, then projects any number of ``u``."""

    def __init__(self, G: np.ndarray, rtol: float) -> None:
        self.active, self.norms, cosines = _nonzero_cosines(G)
        self.rtol = rtol
        self.A = _gram_factor(cosines, rtol)
        k = self.active.size
        self.A_ridge = np.vstack([self.A, np.sqrt(rtol) * np.eye(k)])

    def project(self, u: np.ndarray) -> np.ndarray:
        v = u.copy()
        k = self.active.size
        if k:
            y0 = self.norms * u[self.active]  # the bound y >= y0 in the scaled variables
            b = -self.A @ y0
            s, _ = nnls(self.A_ridge, np.concatenate([b, np.zeros(k)]))
            # Proximal-point steps (the ridge centred on the last solution) remove the
            # ridge's bias while keeping s bounded: each shrinks it by rtol / (rtol + eigenvalue).
            for _ in range(50):
                previous = s
                s, _ = nnls(self.A_ridge, np.concatenate([b, np.sqrt(self.rtol) * previous]))
                if np.linalg.norm(s - previous) <= 1e-3 * np.sqrt(self.rtol) * (1.0 + np.linalg.norm(s)):
                    break
            v[self.active] = (y0 + self._polish(s, b)) / self.norms
        return v

    def _polish(self, s: np.ndarray, b: np.ndarray) -> np.ndarray:
        support = s > 0.0
        if not support.any():
            return s
        exact, *_ = np.linalg.lstsq(self.A[:, support], b, rcond=np.sqrt(self.rtol))
        if np.any(exact < 0.0):  # the ridge changed the support: keep its solution
            return s
        polished = np.zeros_like(s)
        polished[support] = exact
        return polished


def upgrad_weights(G: np.ndarray, rtol: float | None = None) -> np.ndarray:
    r"""UPGrad, unconflicting projection of gradients (Quinton and Rey,
    "Jacobian Descent for Multi-Objective Optimization", arXiv:2406.16232, 2024).

    Projects each gradient onto the dual cone of all gradients and averages:

    .. math::  d = \frac1T \sum_i \pi_J(g_i) ,

    so ``d`` conflicts with no task (:math:`g_t\cdot d \ge 0`). The weights are
    :math:`\sum_i v^{(i)}` with :math:`v^{(i)}` from
    :func:`dual_cone_projection_weights` at :math:`u = e_i / T` (and the same
    ``rtol``). For two tasks, :math:`\pi_J(g_i)` is PCGrad's projected
    gradient, so UPGrad is half of PCGrad's sum. One task gives that gradient.

    Convention: the projections are solved exactly (to the accuracy ``rtol``
    of the Gram matrix). torchjd's ``UPGrad`` by default solves them on
    :math:`G/\operatorname{tr}G + 10^{-4} I` (``reg_eps=1e-4``, a ridge that
    keeps its quadratic-program solver stable), so its direction can differ
    from this one by about that relative amount and conflict with a task by
    as much.

    Examples:
        >>> import numpy as np
        >>> G = np.array([[1.0, -0.5], [-0.5, 1.25]])  # J J^T of J = [[1, 0], [-0.5, 1]]
        >>> w = upgrad_weights(G)
        >>> w.round(4), bool((G @ w >= 0).all())
        (array([0.75, 0.7 ]), True)
    """
    G = _check_gram(G)
    T = G.shape[0]
    rtol = gram_rtol(T) if rtol is None else rtol
    if np.trace(G) <= 0.0:
        return np.full(T, 1.0 / T)
    projector = _DualConeProjector(G, rtol)
    return np.sum([projector.project(row) for row in np.eye(T) / T], axis=0)


# ------------------------------------ two tasks, batched over many Gram matrices
#
# Closed forms of the methods above for T = 2, vectorized over a batch of
# (2, 2) Gram matrices: one numpy operation for thousands of Jacobians (the
# two-objective toy of chapter 8 runs Adam from many starts at once). Every
# closed form also returns the mask of the rows where it applies; the other
# rows (parallel, opposite or zero gradients) are solved by the general
# ``<method>_weights`` above, so the result is always the general form's.
# With n_t = |g_t|, cos = g1.g2 / (n1 n2) and u_t = g_t / n_t:
#
# * MGDA: gamma g1 + (1 - gamma) g2, gamma = clip((g2 - g1).g2 / |g1 - g2|^2, 0, 1).
# * PCGrad: with a conflict (g1.g2 < 0) each gradient loses its component
#   along the other; for two tasks the order does not matter.
# * UPGrad: for two tasks, half of PCGrad's sum.
# * IMTL-G: alpha = (n2, n1) / (n1 + n2), so d = n1 n2 / (n1 + n2) (u1 + u2).
# * Nash-MTL: alpha_t = 1 / (n_t sqrt(1 + cos)), so d = (u1 + u2) / sqrt(1 + cos),
#   the unit-vector bisector scaled to |d| = sqrt(2).
# * Aligned-MTL: the 2 x 2 eigendecomposition, batched.
# * CAGrad: the dual over the segment w g1 + (1 - w) g2 is a convex function of
#   one variable whose minimiser has a closed form (see _two_task_cagrad).

TWO_TASK_METHODS: tuple[str, ...] = (
    "mean", "mgda", "pcgrad", "cagrad", "nash_mtl", "imtl_g", "aligned_mtl", "upgrad",
)
"""The methods :func:`two_task_weights` computes in closed form for two tasks.

Examples:
    >>> len(TWO_TASK_METHODS), "upgrad" in TWO_TASK_METHODS
    (8, True)
"""

_RTOL_2 = gram_rtol(2)


def _check_gram_batch(G: object) -> np.ndarray:
    G = np.asarray(G, dtype=np.float64)
    if G.ndim != 3 or G.shape[1:] != (2, 2):
        raise ValueError(f"G must be a batch of 2 x 2 Gram matrices, shape (S, 2, 2), got {G.shape}")
    # (cheap checks: the toy of chapter 8 calls this thousands of times on tiny batches)
    if not np.isfinite(G).all():
        raise ValueError(
            "G contains NaN or inf (the gradients overflowed); rescale the losses or use float64"
        )
    if (G.diagonal(axis1=1, axis2=2) < 0).any():
        raise ValueError("G has a negative diagonal entry: it is not a Gram matrix")
    return (G + G.transpose(0, 2, 1)) / 2.0


def _general_weights(method: str, G: np.ndarray, c: float) -> np.ndarray:
    """The general solver of ``method`` on one Gram matrix (the fallback of the closed forms)."""
    if method == "cagrad":
        return cagrad_weights(G, c=c)
    if method == "pcgrad":
        return pcgrad_weights(G, generator=0)  # two tasks: the order does not matter
    return globals()[f"{method}_weights"](G)


def _two_task_mgda(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    denominator = G[:, 0, 0] + G[:, 1, 1] - 2.0 * G[:, 0, 1]
    ok = denominator > _RTOL_2 * (G[:, 0, 0] + G[:, 1, 1])
    gamma = np.clip((G[:, 1, 1] - G[:, 0, 1]) / np.where(ok, denominator, 1.0), 0.0, 1.0)
    return np.stack([gamma, 1.0 - gamma], axis=1), ok


def _two_task_pcgrad(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    g12 = G[:, 0, 1]
    conflict = g12 < 0.0  # a conflict implies both gradients are non-zero
    w1 = 1.0 - np.where(conflict, g12 / np.where(conflict, G[:, 0, 0], 1.0), 0.0)
    w2 = 1.0 - np.where(conflict, g12 / np.where(conflict, G[:, 1, 1], 1.0), 0.0)
    return np.stack([w1, w2], axis=1), np.ones(len(G), dtype=bool)


def _two_task_upgrad(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    weights, ok = _two_task_pcgrad(G, n1, n2, c)
    return weights / 2.0, ok


def _two_task_cosine(G: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cosine where both gradients are non-zero, and that mask."""
    nonzero = (n1 * n2) > np.sqrt(_RTOL_2) * (G[:, 0, 0] + G[:, 1, 1])
    return G[:, 0, 1] / np.where(nonzero, n1 * n2, 1.0), nonzero


def _two_task_imtl_g(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    # alpha = G^{-1} n / sum, where G^{-1} n is proportional to (n2, n1) exactly;
    # nearly parallel gradients (det G below 1e-12 trace^2, where imtl_g_weights
    # starts to treat G as rank one) go to the general form.
    _, nonzero = _two_task_cosine(G, n1, n2)
    det = G[:, 0, 0] * G[:, 1, 1] - G[:, 0, 1] ** 2
    ok = nonzero & (det > 1e-12 * (G[:, 0, 0] + G[:, 1, 1]) ** 2)
    total = np.where(ok, n1 + n2, 1.0)
    return np.stack([n2 / total, n1 / total], axis=1), ok


def _two_task_nash_mtl(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    # Exact for any 1 + cos > 0: the direction has norm sqrt(2) however close to
    # opposite the gradients are. Exactly opposite ones (1 + cos <= 0 in floating
    # point) give zero weights, nash_mtl_weights' convention; rows with a zero
    # gradient go to the general form. nash_mtl_weights already returns zero
    # weights when (1 + cos) / 2 <= rtol (zero in the hull to rounding); this
    # closed form keeps its exact answer there, which chapter 8's toy runs (whose
    # gradients become opposite on the Pareto set) depend on.
    cos, nonzero = _two_task_cosine(G, n1, n2)
    agree = nonzero & (1.0 + cos > 0.0)
    root = np.sqrt(np.where(agree, 1.0 + cos, 1.0))
    weights = np.stack([1.0 / (np.where(agree, n1, 1.0) * root),
                        1.0 / (np.where(agree, n2, 1.0) * root)], axis=1)
    return np.where(agree[:, None], weights, 0.0), nonzero


def _two_task_aligned_mtl(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    eigenvalues, V = np.linalg.eigh(G)  # ascending
    ok = eigenvalues[:, 0] > _RTOL_2 * eigenvalues[:, 1]  # full rank
    safe = np.where(ok[:, None], eigenvalues, 1.0)
    B = np.sqrt(safe[:, :1, None]) * (V / np.sqrt(safe)[:, None, :]) @ V.transpose(0, 2, 1)
    return B @ np.full(2, 0.5), ok


def _two_task_cagrad(G: np.ndarray, n1: np.ndarray, n2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    # The dual on the segment g_w = w g1 + (1 - w) g2 is
    #   f(w) = k w + r sqrt(q(w)) + const,  q(w) = A w^2 + B w + C,
    # with k = (|g1|^2 - |g2|^2)/2, A = |g1 - g2|^2, B = 2 (g1.g2 - |g2|^2),
    # C = |g2|^2 and r = c |g0|. f is convex. If r^2 A > k^2 it has a minimiser on
    # the real line; f'(w) = 0 gives q(w*) = r^2 det(G) / (r^2 A - k^2) and
    # 2 A w* + B = -2 k sqrt(q(w*)) / r; clipping w* to [0, 1] gives the
    # constrained minimiser. Otherwise f is monotone with the sign of k.
    a, b, d = G[:, 0, 0], G[:, 0, 1], G[:, 1, 1]
    scale = (a + d) / 2.0
    g0_sq = (a + 2.0 * b + d) / 4.0
    r = c * np.sqrt(np.clip(g0_sq, 0.0, None))
    k, A, B, C = (a - d) / 2.0, a - 2.0 * b + d, 2.0 * (b - d), d
    det = np.clip(a * d - b * b, 0.0, None)
    margin = r**2 * A - k**2
    interior = margin > 0.0
    q_star = r**2 * det / np.where(interior, margin, 1.0)
    w_free = (-B - 2.0 * k * np.sqrt(q_star) / np.where(r > 0, r, 1.0)) / np.where(A > 0, A, 1.0) / 2.0
    w = np.where(interior, np.clip(w_free, 0.0, 1.0), np.where(k > 0.0, 0.0, 1.0))
    # |g_w| = |g1| or |g2| at the ends: q(1) = A + B + C cancels when |g2| >> |g1|
    q = np.where(w == 1.0, a, np.where(w == 0.0, d, A * w**2 + B * w + C))
    gw_norm = np.sqrt(np.clip(q, 0.0, None))
    # The general form handles a mean gradient near zero and, in the interior
    # case, (nearly) parallel or opposite gradients: there q(w*) is proportional
    # to det(G), which rounding swamps, and g_w may vanish.
    ok = (c > 0.0) & (g0_sq > _RTOL_2 * scale) & (A > 0.0) & (q > 0.0)
    # On the boundary (f monotone on [0, 1]: w* = 0 or 1, g_w* = g2 or g1) det(G)
    # plays no part, so the closed form is exact however degenerate G is: opposite
    # gradients (the Pareto set of chapter 8's toy) or gradients of very different
    # sizes. There margin = (c^2 - 1) k^2 + c^2 det; with |g0|^2 and A above
    # rtol * scale, rounding moves it by a few percent of k^2 where its sign is in
    # doubt, so the case is decided safely when margin < -0.05 k^2.
    boundary = (margin < -0.05 * k**2) & (A > _RTOL_2 * scale)
    ok &= (det > 1e-9 * scale**2) | boundary
    factor = r / np.where(ok, gw_norm, 1.0)
    weights = 0.5 + factor[:, None] * np.stack([w, 1.0 - w], axis=1)
    # cagrad_weights returns the mean for c = 0 and for |g0|^2 <= rtol (|g1| + |g2|)^2 / 4
    mean = (c == 0.0) | (g0_sq <= _RTOL_2 * ((n1 + n2) / 2.0) ** 2)
    weights[mean] = 0.5
    return weights, ok | mean


_TWO_TASK_CLOSED_FORMS = {
    "mgda": _two_task_mgda, "pcgrad": _two_task_pcgrad, "upgrad": _two_task_upgrad,
    "imtl_g": _two_task_imtl_g, "nash_mtl": _two_task_nash_mtl,
    "aligned_mtl": _two_task_aligned_mtl, "cagrad": _two_task_cagrad,
}


def two_task_weights(method: str, G: np.ndarray, c: float = 0.5) -> np.ndarray:
    r"""The weights of ``method`` for a batch of two-task Gram matrices, in closed form.

    Row ``s`` equals ``<method>_weights(G[s])`` of this module (``c`` for
    :func:`cagrad_weights`, ``generator=0`` for :func:`pcgrad_weights`, whose
    order does not matter for two tasks) up to the general solvers' accuracy,
    but the whole batch costs a few numpy operations. With
    :math:`n_t = \|g_t\|`, :math:`\cos = g_1\cdot g_2/(n_1 n_2)` and
    :math:`u_t = g_t/n_t`:

    * MGDA (Sener and Koltun, NeurIPS 2018):
      :math:`\gamma = \mathrm{clip}\big((g_2-g_1)\cdot g_2/\|g_1-g_2\|^2, 0, 1\big)`,
      weights :math:`(\gamma, 1-\gamma)`.
    * PCGrad (Yu et al., NeurIPS 2020): with a conflict (:math:`g_1\cdot g_2 < 0`)
      each gradient loses its component along the other.
    * UPGrad (Quinton and Rey, 2024): half of PCGrad's weights.
    * IMTL-G (Liu et al., ICLR 2021): :math:`\alpha = (n_2, n_1)/(n_1+n_2)`.
    * Nash-MTL (Navon et al., ICML 2022): :math:`\alpha_t = 1/(n_t\sqrt{1+\cos})`,
      so :math:`d = (u_1+u_2)/\sqrt{1+\cos}` and :math:`\|d\| = \sqrt2`.
    * Aligned-MTL (Senushkin et al., CVPR 2023): the batched 2 x 2 eigendecomposition.
    * CAGrad (Liu et al., NeurIPS 2021): the dual over the segment
      :math:`w g_1 + (1-w) g_2` is convex in :math:`w` and its minimiser has a
      closed form. When it is an end of the segment (:math:`w^* \in \{0, 1\}`,
      always so for opposite gradients and :math:`c < 1`) the form holds
      however degenerate ``G`` is; a mean gradient zero to rounding gives the
      mean, as :func:`cagrad_weights` does.

    Rows where a closed form does not apply (parallel, exactly opposite or
    zero gradients, except for CAGrad as just said) are solved by the general
    function, so the result is this module's. Decisions on degeneracy use the float64
    threshold :func:`gram_rtol` ``(2)``. One deliberate difference: for
    gradients opposite to rounding, :math:`0 < (1+\cos)/2 \le` ``rtol``,
    :func:`nash_mtl_weights` returns zero weights (zero is in the convex hull
    to the Gram matrix's accuracy) while the closed form still returns its
    exact solution, of norm :math:`\sqrt 2`; only :math:`1+\cos \le 0` gives
    zero weights here.

    Args:
        method: one of :data:`TWO_TASK_METHODS`.
        G: ``(S, 2, 2)`` Gram matrices :math:`G_s = J_s J_s^\top` (any float
            dtype; the solve runs in float64).
        c: CAGrad's radius parameter (ignored by the other methods).

    Returns:
        ``(S, 2)`` float64 weights; the direction for row ``s`` is ``weights[s] @ J[s]``.

    Examples:
        >>> import numpy as np
        >>> G = np.array([[[1.0, -1.0], [-1.0, 2.0]]])  # g1 = (1, 0), g2 = (-1, 1)
        >>> two_task_weights("mgda", G)
        array([[0.6, 0.4]])
        >>> two_task_weights("pcgrad", G)
        array([[2. , 1.5]])
    """
    if method not in TWO_TASK_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {TWO_TASK_METHODS}")
    if not np.isfinite(c) or c < 0:
        raise ValueError(f"c must be a finite non-negative number, got {c}")
    G = _check_gram_batch(G)
    if method == "mean":
        return np.full((len(G), 2), 0.5)
    n1, n2 = np.sqrt(G[:, 0, 0]), np.sqrt(G[:, 1, 1])
    weights, ok = _TWO_TASK_CLOSED_FORMS[method](G, n1, n2, c)
    ok &= (n1 + n2) > 0.0
    if not ok.all():
        for s in np.flatnonzero(~ok):
            weights[s] = _general_weights(method, G[s], c)
    return weights
