"""Synthetic multi-task data sets with a known ground truth (numpy only).

* :func:`related_regression` - linear regression tasks whose true weights have
  a chosen correlation (chapters 1 and 3).
* :func:`shared_subspace_regression` - linear regression tasks whose weights
  share a low-dimensional subspace, or do not (chapter 1).
* :func:`mmoe_synthetic` - the two-task regression with a correlation knob of
  Ma et al., KDD 2018 (chapter 6).
* :func:`gradnorm_toy` - the regression tasks of very different scales of
  Chen et al., ICML 2018 (chapter 7).

Every generator takes a ``seed`` and is deterministic: the same arguments give
bit-identical arrays. The small argument checks at the top are shared by the
other modules of :mod:`mtl_course.data`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mtl_course.checks import as_generator, check_real, positive_int
from mtl_course.data.types import MultiTaskSplit, Splits, TaskData

__all__ = ["RelatedRegression", "related_regression", "shared_subspace_regression", "mmoe_synthetic", "gradnorm_toy"]


# --------------------------------------------------------------------------
# shared by the generators of mtl_course.data
# --------------------------------------------------------------------------


def as_float32(what: str, values: np.ndarray) -> np.ndarray:
    """``values`` (float64) as float32, or a clear error if they do not fit float32.

    A scale parameter can push a generator's outputs past float32's range
    (about 3.4e38); the cast would turn them into inf without a word.
    """
    values = np.asarray(values, dtype=np.float64)
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if not largest <= float(np.finfo(np.float32).max):
        raise ValueError(
            f"{what} overflow float32 (largest |value| {largest:.3g}); use smaller scale parameters"
        )
    return values.astype(np.float32)


# --------------------------------------------------------------------------
# related linear regression tasks
# --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RelatedRegression(TaskData):
    """Linear regression tasks (a :class:`~mtl_course.data.TaskData`) with known, correlated true weights.

    Attributes:
        X, y, task_names, feature_names: as in :class:`~mtl_course.data.TaskData`:
            task ``t``'s inputs ``X[t]``, ``(n_per_task, dim)``, and targets
            ``y[t]``, ``(n_per_task,)``, float64.
        weights: the true weights, shape ``(num_tasks, dim)``.
        shared: the part common to every task, shape ``(dim,)``:
            ``weights[t] - shared`` is task ``t``'s own part.
        noise: standard deviation of the label noise.
    """

    weights: np.ndarray
    shared: np.ndarray
    noise: float

    def sample(self, n: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Fresh data from the same tasks: ``n`` pairs per task, drawn with ``seed``.

        Use a seed different from the one that built the data set when you
        want test data independent of the training data.
        """
        n = positive_int(n, "n")
        return draw_linear_tasks(self.weights, n, self.noise, as_generator(positive_int(seed, "seed", 0)))


def draw_linear_tasks(
    weights: np.ndarray, n: int, noise: float, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` pairs per task, ``x ~ N(0, I)``, ``y = x . w_t + noise * N(0, 1)``, as ``(X_list, y_list)``.

    The data of every linear-task generator (:func:`related_regression` and
    :mod:`mtl_course.data.planted`): task by task, the inputs, then the noise.
    ``n`` is taken as checked by the caller.
    """
    X, y = [], []
    for w in weights:
        x = rng.standard_normal((n, len(w)))
        X.append(x)
        y.append(x @ w + noise * rng.standard_normal(n))
    return X, y


def related_regression(
    num_tasks: int = 5,
    n_per_task: int = 50,
    dim: int = 10,
    relatedness: float = 0.8,
    noise: float = 0.1,
    seed: int = 0,
) -> RelatedRegression:
    r"""Linear regression tasks whose true weights have correlation ``relatedness``.

    With :math:`\rho` = ``relatedness``, the weights are

    .. math::

        w_t = \sqrt{\rho}\, w_0 + \sqrt{1-\rho}\, v_t,
        \qquad w_0, v_1, \dots, v_T \overset{iid}{\sim} \mathcal N(0, I/d),

    so every coordinate of :math:`w_t` has variance :math:`1/d`
    (:math:`E\|w_t\|^2 = 1`) and, for :math:`s \ne t`,
    :math:`\operatorname{Cov}(w_{t,j}, w_{s,j}) = \rho/d`: the correlation
    between the tasks' weights is exactly :math:`\rho` in expectation.
    :math:`\rho = 1` gives identical tasks, :math:`\rho = 0` independent ones.
    ``shared`` is :math:`\sqrt{\rho}\, w_0`. Each task then gets its own
    inputs :math:`x \sim \mathcal N(0, I_d)` and targets
    :math:`y = x^\top w_t + \text{noise}\cdot\varepsilon`,
    :math:`\varepsilon \sim \mathcal N(0, 1)`.

    Args:
        num_tasks: number of tasks ``T >= 1``.
        n_per_task: training pairs per task.
        dim: input dimension ``d``.
        relatedness: ``rho`` in ``[0, 1]``.
        noise: standard deviation of the label noise, ``>= 0``.
        seed: seed of the weights and of the training data.
    """
    num_tasks = positive_int(num_tasks, "num_tasks")
    n_per_task = positive_int(n_per_task, "n_per_task")
    dim = positive_int(dim, "dim")
    rho = check_real(relatedness, "relatedness", 0.0, 1.0)
    noise = check_real(noise, "noise", 0.0)
    rng = as_generator(positive_int(seed, "seed", 0))

    scale = 1.0 / math.sqrt(dim)
    w0 = scale * rng.standard_normal(dim)
    own = scale * rng.standard_normal((num_tasks, dim))
    shared = math.sqrt(rho) * w0
    weights = shared + math.sqrt(1.0 - rho) * own
    X, y = draw_linear_tasks(weights, n_per_task, noise, rng)
    return RelatedRegression(X=X, y=y, weights=weights, shared=shared, noise=noise)


def shared_subspace_regression(
    num_tasks: int = 10,
    n_per_task: int = 20,
    dim: int = 20,
    rank: int = 2,
    shared: bool = True,
    noise: float = 0.5,
    seed: int = 0,
) -> RelatedRegression:
    r"""Linear tasks related through shared *features*: ``w_t = B' a_t`` with ``B`` of rank ``rank``.

    With ``shared=True`` one matrix :math:`B \in \mathbb R^{k \times d}` with
    orthonormal rows serves every task; each task has its own coefficients
    :math:`a_t \sim \mathcal N(0, I_k / k)`, so :math:`E\|w_t\|^2 = 1` and every
    :math:`w_t` lies in the same ``k``-dimensional subspace. This is the
    structure a hard-shared network assumes: a common representation
    :math:`Bx` and a small head per task (the low-rank model of multi-task
    feature learning, chapter 3). With ``shared=False`` every task draws its
    own :math:`B_t`: same per-task complexity, no common features (for
    :math:`T k \ge d` the tasks jointly span the whole input space).

    Inputs are :math:`x \sim \mathcal N(0, I_d)` and targets
    :math:`y = w_t^\top x + \text{noise}\cdot\varepsilon`, as in
    :func:`related_regression`, whose container this returns
    (``shared`` there is the zero vector: no single weight vector is common to
    the tasks, only a subspace).
    """
    num_tasks, n_per_task = positive_int(num_tasks, "num_tasks"), positive_int(n_per_task, "n_per_task")
    dim, rank = positive_int(dim, "dim"), positive_int(rank, "rank")
    if rank > dim:
        raise ValueError(f"rank ({rank}) cannot exceed dim ({dim})")
    noise = check_real(noise, "noise", 0.0)
    rng = as_generator(positive_int(seed, "seed", 0))

    def basis() -> np.ndarray:  # k orthonormal rows in R^d
        q, _ = np.linalg.qr(rng.standard_normal((dim, rank)))
        return q.T

    common = basis() if shared else None
    weights = np.stack([
        (rng.standard_normal(rank) / np.sqrt(rank)) @ (common if shared else basis())
        for _ in range(num_tasks)
    ])
    X = [rng.standard_normal((n_per_task, dim)) for _ in weights]
    y = [x @ w + noise * rng.standard_normal(n_per_task) for x, w in zip(X, weights)]
    return RelatedRegression(X=X, y=y, weights=weights, shared=np.zeros(dim), noise=float(noise))


# --------------------------------------------------------------------------
# Ma et al., KDD 2018: two regression tasks with a correlation knob
# --------------------------------------------------------------------------


def mmoe_synthetic(
    n: int = 10000,
    dim: int = 100,
    correlation: float = 0.5,
    seed: int = 0,
    num_sin: int = 10,
    scale: float = 1.0,
    noise: float = 0.1,
) -> MultiTaskSplit:
    r"""Two regression tasks whose relatedness is set by ``correlation``.

    The synthetic data of Ma, Zhao, Yi, Chen, Hong and Chi, "Modeling Task
    Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts",
    KDD 2018, section 3.2. With :math:`p` = ``correlation``, :math:`c` =
    ``scale`` and :math:`m` = ``num_sin``:

    1. draw orthogonal unit vectors :math:`u_1, u_2 \in \mathbb R^d`;
    2. :math:`w_1 = c\,u_1`, :math:`w_2 = c\,(p\,u_1 + \sqrt{1-p^2}\,u_2)`,
       so the cosine of the two weight vectors is :math:`p`;
    3. :math:`x \sim \mathcal N(0, I_d)`;
    4. :math:`y_i = w_i^\top x + \sum_{j=1}^{m} \sin(\alpha_j w_i^\top x + \beta_j)
       + \varepsilon_i`.

    The paper calls :math:`\alpha_j, \beta_j` "given parameters" without their
    values; this package draws them once per seed, iid :math:`\mathcal N(0, 1)`,
    and shares them by both tasks (as the formula does). The paper writes
    :math:`\varepsilon_i \sim \mathcal N(0, 0.01)`; reading 0.01 as the
    variance, ``noise`` (a standard deviation) defaults to 0.1.

    Because of the sines, the Pearson correlation of :math:`y_1` and
    :math:`y_2` is not :math:`p`, but it grows with :math:`p` - the knob the
    paper turns. For a fixed ``seed``, only :math:`w_2` depends on
    ``correlation`` (same :math:`u`, :math:`\alpha`, :math:`\beta`, :math:`x`
    and noise), so a sweep over ``correlation`` is a controlled experiment.

    Returns:
        ``MultiTaskSplit`` with ``x`` float32 ``(n, dim)`` and tasks ``"task1"``,
        ``"task2"``, float32 ``(n,)``.
    """
    n = positive_int(n, "n")
    dim = positive_int(dim, "dim", 2)
    p = check_real(correlation, "correlation", -1.0, 1.0)
    num_sin = positive_int(num_sin, "num_sin", 0)
    scale = check_real(scale, "scale")
    noise = check_real(noise, "noise", 0.0)
    rng = as_generator(positive_int(seed, "seed", 0))

    u, _ = np.linalg.qr(rng.standard_normal((dim, 2)))
    w1 = scale * u[:, 0]
    w2 = scale * (p * u[:, 0] + math.sqrt(1.0 - p * p) * u[:, 1])
    alpha = rng.standard_normal(num_sin)
    beta = rng.standard_normal(num_sin)
    x = rng.standard_normal((n, dim))
    eps = noise * rng.standard_normal((2, n))

    targets = {}
    for name, w, e in (("task1", w1, eps[0]), ("task2", w2, eps[1])):
        z = x @ w
        waves = np.sin(np.outer(z, alpha) + beta).sum(axis=1)
        targets[name] = as_float32(f"with scale={scale} and noise={noise}, the targets of {name}",
                                    z + waves + e)
    return MultiTaskSplit(x.astype(np.float32), targets)


# --------------------------------------------------------------------------
# Chen et al., ICML 2018 (GradNorm): tasks of very different scales
# --------------------------------------------------------------------------


def gradnorm_toy(
    num_tasks: int = 10,
    sigmas: Sequence[float] | np.ndarray | None = None,
    n: int = 3000,
    seed: int = 0,
    input_dim: int = 250,
    output_dim: int = 100,
) -> Splits:
    r"""Regression tasks that share structure but differ in scale.

    The toy problem of Chen, Badrinarayanan, Lee and Rabinovich, "GradNorm:
    Gradient Normalization for Adaptive Loss Balancing in Deep Multitask
    Networks", ICML 2018, section 4:

    .. math::

        f_i(x) = \sigma_i \tanh\big((B + \epsilon_i)\, x\big),
        \quad x \sim \mathcal N(0, I_{250}),

    with :math:`B` (``output_dim x input_dim``) shared by all tasks, entries iid
    :math:`\mathcal N(0, 10)`, and :math:`\epsilon_i` task specific, entries
    iid :math:`\mathcal N(0, 3.5)` (second arguments read as variances). The
    scales :math:`\sigma_i` make the losses differ by orders of magnitude,
    which is what loss weighting must cope with.

    As in the paper, the inputs are not rescaled, so the pre-activations have
    a standard deviation of about :math:`\sqrt{250 \cdot 13.5} \approx 58` and
    :math:`\tanh` is mostly saturated: targets are close to
    :math:`\pm\sigma_i`.

    ``sigmas`` defaults to ``np.linspace(1, 100, num_tasks)``: this package's
    choice (the paper's two-task example uses 1 and 100).

    Args:
        num_tasks: number of tasks ``T``; tasks are named ``"t0"`` ... ``"t{T-1}"``.
        sigmas: the ``T`` positive scales.
        n: total number of examples, split 60 / 20 / 20 into train, val, test.
        seed: seed of ``B``, the ``epsilon_i`` and the inputs.
        input_dim, output_dim: sizes of ``x`` and of each ``f_i(x)``.

    Returns:
        ``Splits`` of ``MultiTaskSplit``: ``x`` float32 ``(m, input_dim)``,
        each task float32 ``(m, output_dim)``.
    """
    num_tasks = positive_int(num_tasks, "num_tasks")
    n = positive_int(n, "n", 5)
    input_dim = positive_int(input_dim, "input_dim")
    output_dim = positive_int(output_dim, "output_dim")
    if sigmas is None:
        sigmas = np.linspace(1.0, 100.0, num_tasks)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if sigmas.shape != (num_tasks,):
        raise ValueError(f"sigmas must have shape ({num_tasks},), got {sigmas.shape}")
    if not np.all(np.isfinite(sigmas)) or np.any(sigmas <= 0):
        raise ValueError(f"sigmas must be finite and positive, got {sigmas}")
    rng = as_generator(positive_int(seed, "seed", 0))

    B = math.sqrt(10.0) * rng.standard_normal((output_dim, input_dim))
    eps = math.sqrt(3.5) * rng.standard_normal((num_tasks, output_dim, input_dim))
    x = rng.standard_normal((n, input_dim))
    y = {
        f"t{i}": as_float32(f"with sigma={sigma:g}, the targets of t{i}", sigma * np.tanh(x @ (B + e).T))
        for i, (sigma, e) in enumerate(zip(sigmas, eps))
    }
    data = MultiTaskSplit(x.astype(np.float32), y)
    n_train, n_val = int(0.6 * n), int(0.2 * n)
    return Splits(
        train=data.subset(slice(0, n_train)),
        val=data.subset(slice(n_train, n_train + n_val)),
        test=data.subset(slice(n_train + n_val, n)),
    )
