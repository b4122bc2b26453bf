"""Linear regression tasks with a planted structure, for chapter 3's classical methods and their tests.

Each generator draws task weights ``W`` (shape ``(T, d)``) with one known kind
of relatedness, then data ``y_t = X_t w_t + noise`` with standard-normal
inputs. The structures are the ones the classical methods look for:

* :func:`shared_mean_tasks`: ``w_t = w_0 + spread * u_t`` (regularized MTL);
* :func:`shared_support_tasks`: all ``w_t`` are zero outside one common set of
  features (L2,1 feature learning);
* :func:`low_rank_tasks`: ``W`` has a given rank (trace norm, shared representation);
* :func:`correlated_tasks`: the rows of ``W`` have a given task correlation
  matrix (task relationship learning).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mtl_course.checks import check_count
from mtl_course.data.synthetic import draw_linear_tasks
from mtl_course.data.types import TaskData


@dataclass(frozen=True, kw_only=True)
class PlantedTasks(TaskData):
    """Training data of ``T`` linear tasks (a :class:`~mtl_course.data.TaskData`) and the truth behind them.

    Attributes:
        X, y, task_names, feature_names: as in :class:`~mtl_course.data.TaskData`:
            ``T`` input arrays ``(n_t, d)`` and target vectors ``(n_t,)``.
        weights: true weights, ``(T, d)``.
        noise: standard deviation of the Gaussian target noise.
        truth: the planted structure (e.g. ``{"support": ...}``, ``{"rank": 2}``).
    """

    weights: np.ndarray
    noise: float
    truth: dict = field(default_factory=dict)

    def sample(self, n_per_task: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Fresh data ``(X_list, y_list)`` from the same tasks (e.g. a test set)."""
        return _draw(self.weights, n_per_task, self.noise, np.random.default_rng(seed))


def _draw(weights: np.ndarray, n_per_task: int, noise: float, rng: np.random.Generator):
    return draw_linear_tasks(weights, check_count(n_per_task, "n_per_task"), noise, rng)


def _planted(weights: np.ndarray, n_per_task: int, noise: float, rng: np.random.Generator, **truth) -> PlantedTasks:
    X, y = _draw(weights, n_per_task, noise, rng)
    return PlantedTasks(X=X, y=y, weights=weights, noise=float(noise), truth=truth)


def shared_mean_tasks(
    num_tasks: int, n_per_task: int, dim: int, *, spread: float = 0.2, noise: float = 0.5, seed: int = 0
) -> PlantedTasks:
    """Tasks ``w_t = w_0 + spread * u_t`` with ``w_0, u_t ~ N(0, I)``; ``truth = {"shared": w_0}``."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal(dim)
    weights = shared + spread * rng.standard_normal((num_tasks, dim))
    return _planted(weights, n_per_task, noise, rng, shared=shared)


def shared_support_tasks(
    num_tasks: int, n_per_task: int, dim: int, *, support_size: int, noise: float = 0.5, seed: int = 0
) -> PlantedTasks:
    """Weights non-zero only on ``support_size`` random features common to all tasks.

    On the support the weights are ``N(0, 1)`` per task (tasks share *which*
    features matter, not their values). ``truth = {"support": sorted indices}``.
    """
    if not 0 < support_size <= dim:
        raise ValueError(f"support_size must be in 1..{dim}, got {support_size}")
    rng = np.random.default_rng(seed)
    support = np.sort(rng.choice(dim, size=support_size, replace=False))
    weights = np.zeros((num_tasks, dim))
    weights[:, support] = rng.standard_normal((num_tasks, support_size))
    return _planted(weights, n_per_task, noise, rng, support=support)


def low_rank_tasks(
    num_tasks: int, n_per_task: int, dim: int, *, rank: int, noise: float = 0.5, seed: int = 0
) -> PlantedTasks:
    """Weights ``W = A B / sqrt(rank)`` with ``A: (T, rank)``, ``B: (rank, d)`` standard normal.

    Every task is a combination of ``rank`` shared directions. ``truth = {"rank": rank}``.
    """
    if not 0 < rank <= min(num_tasks, dim):
        raise ValueError(f"rank must be in 1..{min(num_tasks, dim)}, got {rank}")
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((num_tasks, rank)) @ rng.standard_normal((rank, dim)) / np.sqrt(rank)
    return _planted(weights, n_per_task, noise, rng, rank=rank)


def signed_group_correlation(signs: np.ndarray, rho: float) -> np.ndarray:
    """Task correlation ``rho s s' + (1 - rho) I``: tasks with equal sign correlate by ``+rho``, others by ``-rho``."""
    signs = np.asarray(signs, dtype=np.float64)
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"rho must be in [0, 1), got {rho}")
    return rho * np.outer(signs, signs) + (1.0 - rho) * np.eye(len(signs))


def correlated_tasks(
    num_tasks: int,
    n_per_task: int,
    dim: int,
    *,
    correlation: np.ndarray | None = None,
    noise: float = 0.5,
    seed: int = 0,
) -> PlantedTasks:
    """Weights whose rows have the task correlation matrix ``C``: ``W = C^{1/2} Z``.

    ``Z`` is ``(T, d)`` standard normal, so every feature's column of ``W`` is
    ``N(0, C)`` across tasks. Default ``C``: the first half of the tasks
    correlate by +0.8 with each other and by -0.8 with the second half
    (:func:`signed_group_correlation`). ``truth = {"correlation": C}``.
    """
    if correlation is None:
        signs = np.where(np.arange(num_tasks) < (num_tasks + 1) // 2, 1.0, -1.0)
        correlation = signed_group_correlation(signs, 0.8)
    correlation = np.asarray(correlation, dtype=np.float64)
    if correlation.shape != (num_tasks, num_tasks):
        raise ValueError(f"correlation must be ({num_tasks}, {num_tasks}), got {correlation.shape}")
    rng = np.random.default_rng(seed)
    weights = symmetric_root(correlation) @ rng.standard_normal((num_tasks, dim))
    return _planted(weights, n_per_task, noise, rng, correlation=correlation)


def symmetric_root(C: np.ndarray) -> np.ndarray:
    """The positive semi-definite square root ``C^{1/2} = V diag(sqrt(L)) V'`` of a symmetric PSD ``C``.

    Any ``L`` with ``L L' = C`` gives rows with correlation ``C``, but a factor
    built from the eigenvectors alone (``V diag(sqrt(L))``) is not unique when
    an eigenvalue repeats: its basis of that eigenspace is whatever the LAPACK
    kernel returns, so the planted weights (and every number computed from
    them) would change from one CPU to another. ``C^{1/2}`` is unique, the
    same for every eigenbasis, so the weights agree across machines to rounding.
    """
    given = np.asarray(C)
    eps = np.finfo(given.dtype).eps if np.issubdtype(given.dtype, np.floating) else np.finfo(np.float64).eps
    C = given.astype(np.float64)
    if C.ndim != 2 or C.shape[0] != C.shape[1] or not np.all(np.isfinite(C)):
        raise ValueError(f"C must be a finite square matrix, got shape {C.shape}")
    # Rounding of the input's own dtype is tolerated, nothing more.
    tolerance = max(1e-10, 10 * len(C) * eps) * max(1.0, float(np.abs(C).max(initial=0.0)))
    if not np.allclose(C, C.T, rtol=0.0, atol=tolerance):
        raise ValueError("correlation must be symmetric")
    eigenvalues, eigenvectors = np.linalg.eigh(C)
    if eigenvalues.min(initial=0.0) < -tolerance:
        raise ValueError("correlation must be positive semi-definite")
    root = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T
    return (root + root.T) / 2.0


def to_labels(y_list: list[np.ndarray]) -> list[np.ndarray]:
    """Turn regression targets into classification labels ``sign(y)`` in {-1, +1} (0 -> +1)."""
    return [np.where(np.asarray(y) >= 0, 1.0, -1.0) for y in y_list]
