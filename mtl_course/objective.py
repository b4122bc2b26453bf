"""The multi-task objective and its Pareto geometry (chapter 2), in numpy.

Chapter 2 writes the multi-task objective as a weighted sum of task losses
plus a regularizer (equation ``ch2-objective``)::

    min_theta  sum_t alpha_t * L_t(theta_sh, theta_t; D_t) + Omega(theta)

This module holds the framework-free math of that chapter:

* :func:`weighted_sum` evaluates the objective from the task losses;
* :func:`dominates`, :func:`non_dominated_mask` and :func:`pareto_front`
  compare loss vectors in the Pareto sense;
* :func:`weight_grid` and :func:`linear_scalarization_reach` sweep the
  weight of a two-task linear scalarization and report which points it picks;
* two two-task problems with analytic losses and gradients:
  :class:`LeastSquaresTasks` (one linear model shared by regression tasks, a
  convex front) and :class:`FonsecaFleming` (a non-convex, concave front);
* :func:`scalarized_gradient_descent`, the plain gradient-descent loop that
  the chapter writes in PyTorch and TensorFlow, here in numpy as reference;
* :func:`normalize_by_initial`, the simplest cure for mismatched loss scales.

All losses are minimized: a smaller loss vector is a better one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from mtl_course.checks import positive_int

__all__ = [
    "weighted_sum",
    "dominates",
    "non_dominated_mask",
    "pareto_front",
    "weight_grid",
    "linear_scalarization_reach",
    "MultiObjective",
    "LeastSquaresTasks",
    "FonsecaFleming",
    "scalarized_gradient_descent",
    "normalize_by_initial",
]


# --------------------------------------------------------------------------
# input checks


def _loss_vector(values: ArrayLike, name: str) -> np.ndarray:
    """A non-empty, finite, 1-D float array, or a ValueError naming ``name``."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence (one entry per task), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: a multi-task objective needs at least one task")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf: {array}")
    return array


def _weight_vector(weights: ArrayLike, num_tasks: int) -> np.ndarray:
    """Non-negative finite weights, one per task, not all zero."""
    array = _loss_vector(weights, "weights")
    if array.size != num_tasks:
        raise ValueError(f"got {array.size} weights for {num_tasks} tasks")
    if np.any(array < 0):
        raise ValueError(f"weights must be non-negative, got {array}")
    if not np.any(array > 0):
        raise ValueError("all weights are zero: the objective would ignore every task")
    return array


def _point_matrix(points: ArrayLike) -> np.ndarray:
    """A finite ``(n, T)`` matrix of loss vectors with n >= 1 and T >= 1."""
    array = np.asarray(points, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"points must have shape (n_points, n_tasks), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"points is empty (shape {array.shape})")
    if not np.all(np.isfinite(array)):
        raise ValueError("points contains NaN or inf")
    return array


# --------------------------------------------------------------------------
# the objective


def weighted_sum(losses: ArrayLike, weights: ArrayLike, regularizer: float = 0.0) -> float:
    """The multi-task objective ``sum_t alpha_t L_t + Omega`` (equation ch2-objective).

    This is *linear scalarization*: a vector of task losses becomes one number
    that an optimizer can minimize (Boyd and Vandenberghe, *Convex
    Optimization*, Cambridge University Press 2004, section 4.7.4).

    Args:
        losses: the task losses ``L_1, ..., L_T``.
        weights: the task weights ``alpha_1, ..., alpha_T`` (non-negative, not
            all zero; they need not sum to one).
        regularizer: the value of ``Omega(theta)`` (default 0).

    Raises:
        ValueError: empty or non-finite losses, a weight count that differs
            from the task count, negative or all-zero weights, a non-finite
            regularizer.

    Examples:
        >>> weighted_sum([1.0, 4.0], [0.5, 0.25], regularizer=0.1)
        1.6
    """
    losses = _loss_vector(losses, "losses")
    alphas = _weight_vector(weights, losses.size)
    if not np.isfinite(regularizer):
        raise ValueError(f"regularizer must be finite, got {regularizer}")
    return float(alphas @ losses + regularizer)


# --------------------------------------------------------------------------
# Pareto dominance


def dominates(a: ArrayLike, b: ArrayLike) -> bool:
    """Whether loss vector ``a`` Pareto-dominates loss vector ``b``.

    ``a`` dominates ``b`` when it is no worse on every task and strictly better
    on at least one: ``a_t <= b_t`` for all ``t`` and ``a_t < b_t`` for some
    ``t`` (Miettinen, *Nonlinear Multiobjective Optimization*, Kluwer 1999).
    A vector never dominates itself.

    Examples:
        >>> dominates([1.0, 2.0], [1.0, 3.0]), dominates([1.0, 2.0], [2.0, 1.0]), dominates([1.0, 2.0], [1.0, 2.0])
        (True, False, False)
    """
    a = _loss_vector(a, "a")
    b = _loss_vector(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a has {a.size} tasks but b has {b.size}")
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated_mask(points: ArrayLike) -> np.ndarray:
    """Boolean mask of the rows of ``points`` that no other row dominates.

    ``points`` has one loss vector per row, shape ``(n, T)``. The rows where
    the mask is ``True`` are the *Pareto optimal* points of the finite set.
    Duplicated rows do not dominate each other, so all copies of a
    non-dominated vector are kept. Cost ``O(n^2 T)``: fine for the few
    thousand points the chapters use.

    Examples:
        >>> non_dominated_mask([[1.0, 3.0], [2.0, 2.0], [2.0, 3.0], [3.0, 1.0]])
        array([ True,  True, False,  True])
    """
    points = _point_matrix(points)
    # no_worse[i, j]: row j is <= row i everywhere; better[i, j]: < somewhere.
    no_worse = np.all(points[None, :, :] <= points[:, None, :], axis=2)
    better = np.any(points[None, :, :] < points[:, None, :], axis=2)
    dominated = np.any(no_worse & better, axis=1)
    return ~dominated


def pareto_front(points: ArrayLike) -> np.ndarray:
    """The non-dominated rows of ``points``, sorted by the first loss.

    For two tasks the result traces the front from the best point of task 1
    (smallest first loss) to the best point of task 2, ready to draw as a
    line. Ties in the first loss are broken by the following losses.

    Examples:
        >>> pareto_front([[3.0, 1.0], [2.0, 3.0], [1.0, 3.0], [2.0, 2.0]])
        array([[1., 3.],
               [2., 2.],
               [3., 1.]])
    """
    points = _point_matrix(points)
    front = points[non_dominated_mask(points)]
    order = np.lexsort(front.T[::-1])
    return front[order]


# --------------------------------------------------------------------------
# linear scalarization of two tasks


def weight_grid(num: int) -> np.ndarray:
    """``num`` weight pairs ``(alpha, 1 - alpha)`` with ``alpha`` evenly spaced in [0, 1].

    Returns an array of shape ``(num, 2)``; the first row is ``(0, 1)`` (only
    task 2 counts), the last ``(1, 0)`` (only task 1 counts).

    Examples:
        >>> weight_grid(3)
        array([[0. , 1. ],
               [0.5, 0.5],
               [1. , 0. ]])
    """
    num = positive_int(num, "num (at least 2, to include both ends)", minimum=2)
    alpha = np.linspace(0.0, 1.0, int(num))
    return np.stack([alpha, 1.0 - alpha], axis=1)


def linear_scalarization_reach(points: ArrayLike, weights: ArrayLike) -> np.ndarray:
    """For each weight vector, the index of the point that minimizes ``w . L``.

    ``points`` is a finite set of loss vectors ``(n, T)`` (for example a dense
    sample of a Pareto front) and ``weights`` a ``(k, T)`` array of
    non-negative weight vectors. Row ``i`` of the result is
    ``argmin_j weights[i] @ points[j]`` (the first index on ties).

    Geometrically, a weight vector is the normal of a line (a hyperplane for
    more tasks) pushed towards the origin until it touches the set; only points
    on the lower-left convex hull can be touched. The points of a non-convex
    front that lie inside that hull are never returned, whatever the weights
    (Das and Dennis, Structural Optimization 14, 1997).

    Examples:
        >>> import numpy as np
        >>> points = np.array([[0.0, 1.0], [0.6, 0.6], [1.0, 0.0]])  # the middle point is above the chord
        >>> linear_scalarization_reach(points, weight_grid(5))  # no weight picks index 1
        array([2, 2, 0, 0, 0])
    """
    points = _point_matrix(points)
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2 or weights.shape[1] != points.shape[1]:
        raise ValueError(
            f"weights must have shape (k, {points.shape[1]}) for {points.shape[1]} tasks, "
            f"got shape {weights.shape}"
        )
    for row in weights:
        _weight_vector(row, points.shape[1])
    return np.argmin(points @ weights.T, axis=0)


# --------------------------------------------------------------------------
# two-task problems with analytic losses and gradients


class MultiObjective(Protocol):
    """A vector of task losses of one parameter vector ``theta``.

    ``losses(theta)`` returns the ``T`` task losses, ``jacobian(theta)`` their
    gradients as a ``(T, d)`` matrix (row ``t`` is ``grad L_t(theta)``).

    Examples:
        >>> import numpy as np
        >>> class TwoTargets:  # L_t = (theta - c_t)^2 with c = (1, -1)
        ...     num_tasks, dim = 2, 1
        ...     def losses(self, theta):
        ...         return np.array([(theta[0] - 1) ** 2, (theta[0] + 1) ** 2])
        ...     def jacobian(self, theta):
        ...         return np.array([[2 * (theta[0] - 1)], [2 * (theta[0] + 1)]])
        >>> scalarized_gradient_descent(TwoTargets(), [0.75, 0.25], theta0=[3.0], lr=0.1, steps=100).round(4)
        array([0.5])
    """

    num_tasks: int
    dim: int

    def losses(self, theta: ArrayLike) -> np.ndarray: ...

    def jacobian(self, theta: ArrayLike) -> np.ndarray: ...


def _parameter(theta: ArrayLike, dim: int) -> np.ndarray:
    theta = np.asarray(theta, dtype=float)
    if theta.shape != (dim,):
        raise ValueError(f"theta must have shape ({dim},), got {theta.shape}")
    if not np.all(np.isfinite(theta)):
        raise ValueError(f"theta contains NaN or inf: {theta}")
    return theta


class LeastSquaresTasks:
    """Regression tasks that share one linear model ``x -> x @ theta``.

    Task ``t`` has data ``(X_t, y_t)`` and the mean squared error loss::

        L_t(theta) = ||X_t theta - y_t||^2 / (2 n_t)
                   = theta' A_t theta / 2 - b_t' theta + c_t,

    with ``A_t = X_t' X_t / n_t``, ``b_t = X_t' y_t / n_t`` and
    ``c_t = y_t' y_t / (2 n_t)``. Every loss is a convex quadratic, so the
    weighted sum has the closed-form minimizer
    ``theta(alpha) = (sum_t alpha_t A_t)^{-1} sum_t alpha_t b_t`` and the
    Pareto front is convex: linear scalarization reaches all of it.

    Sharing *all* parameters is the extreme case of hard sharing (no task
    heads); it makes the conflict between tasks visible in two dimensions.

    Examples:
        >>> import numpy as np
        >>> X = [np.eye(2), np.eye(2)]
        >>> problem = LeastSquaresTasks(X, [np.array([1.0, 0.0]), np.array([0.0, 1.0])])
        >>> problem.losses(np.zeros(2))  # ||y_t||^2 / (2 n_t)
        array([0.25, 0.25])
        >>> problem.jacobian(np.zeros(2))
        array([[-0.5,  0. ],
               [ 0. , -0.5]])
    """

    def __init__(self, X: Sequence[ArrayLike], y: Sequence[ArrayLike]) -> None:
        if len(X) == 0:
            raise ValueError("LeastSquaresTasks needs at least one task")
        if len(X) != len(y):
            raise ValueError(f"got {len(X)} input matrices but {len(y)} target vectors")
        xs, ys = [], []
        for t, (x_t, y_t) in enumerate(zip(X, y)):
            x_t = np.asarray(x_t, dtype=float)
            y_t = np.asarray(y_t, dtype=float)
            if x_t.ndim != 2 or y_t.ndim != 1 or len(x_t) != len(y_t) or len(x_t) == 0:
                raise ValueError(
                    f"task {t}: X must be (n, d) and y (n,) with n >= 1, "
                    f"got {x_t.shape} and {y_t.shape}"
                )
            if not (np.all(np.isfinite(x_t)) and np.all(np.isfinite(y_t))):
                raise ValueError(f"task {t}: data contains NaN or inf")
            xs.append(x_t)
            ys.append(y_t)
        if len({x_t.shape[1] for x_t in xs}) != 1:
            raise ValueError("all tasks must have the same number of input features")
        self.X: tuple[np.ndarray, ...] = tuple(xs)
        self.y: tuple[np.ndarray, ...] = tuple(ys)
        self.A = np.stack([x.T @ x / len(x) for x in xs])
        self.b = np.stack([x.T @ v / len(x) for x, v in zip(xs, ys)])
        self.c = np.array([v @ v / (2 * len(v)) for v in ys])

    @property
    def num_tasks(self) -> int:
        return len(self.X)

    @property
    def dim(self) -> int:
        return self.X[0].shape[1]

    def losses(self, theta: ArrayLike) -> np.ndarray:
        """The task losses ``L_t(theta) = ||X_t theta - y_t||^2 / (2 n_t)``."""
        theta = _parameter(theta, self.dim)
        return np.array([np.mean((x @ theta - v) ** 2) / 2 for x, v in zip(self.X, self.y)])

    def jacobian(self, theta: ArrayLike) -> np.ndarray:
        """Row ``t`` is ``grad L_t(theta) = A_t theta - b_t``."""
        theta = _parameter(theta, self.dim)
        return self.A @ theta - self.b

    def scalarized_minimizer(self, weights: ArrayLike) -> np.ndarray:
        """The exact minimizer of ``sum_t w_t L_t``: ``(sum w_t A_t)^{-1} sum w_t b_t``.

        Raises ValueError when the weighted Hessian is singular (for example a
        weight of zero on the only task whose inputs span some direction).
        """
        w = _weight_vector(weights, self.num_tasks)
        hessian = np.tensordot(w, self.A, axes=1)
        if np.linalg.cond(hessian) > 1e12:
            raise ValueError("the weighted objective has no unique minimizer (singular Hessian)")
        return np.linalg.solve(hessian, w @ self.b)

    def front(self, num: int = 201) -> np.ndarray:
        """``num`` points of the Pareto front of two tasks, ``(num, 2)``, task-2 end first.

        Each point is the loss pair at :meth:`scalarized_minimizer` for
        ``(alpha, 1 - alpha)`` with ``alpha`` on an even grid of [0, 1]. For
        convex losses every Pareto optimal point is reached this way.
        """
        if self.num_tasks != 2:
            raise ValueError(f"front() is for two tasks, this problem has {self.num_tasks}")
        return np.stack([self.losses(self.scalarized_minimizer(w)) for w in weight_grid(num)])


@dataclass(frozen=True)
class FonsecaFleming:
    """Two tasks whose Pareto front is concave, so linear scalarization misses its middle.

    With ``e = (1, ..., 1) / sqrt(d)`` (a unit vector)::

        L_1(theta) = 1 - exp(-||theta - e||^2),
        L_2(theta) = 1 - exp(-||theta + e||^2).

    The Pareto optimal parameters are the segment ``theta = u e`` with
    ``u`` in [-1, 1], where the losses are
    ``(1 - exp(-(u - 1)^2), 1 - exp(-(u + 1)^2))`` (:meth:`front`). Minimizing
    ``alpha L_1 + (1 - alpha) L_2`` only ever lands near the two ends of the
    front. The test function is from Fonseca and Fleming (Evolutionary
    Computation 3(1), 1995); Lin et al. (Pareto Multi-Task Learning, NeurIPS
    2019) use it to show this failure of linear scalarization.

    Examples:
        >>> import numpy as np
        >>> problem = FonsecaFleming(dim=2)
        >>> problem.losses(np.zeros(2)).round(4)  # the middle of the front: 1 - exp(-1) each
        array([0.6321, 0.6321])
        >>> problem.front(num=3).round(4)
        array([[0.9817, 0.    ],
               [0.6321, 0.6321],
               [0.    , 0.9817]])
    """

    dim: int = 2
    num_tasks: int = field(default=2, init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.dim, (int, np.integer)) or isinstance(self.dim, bool) or self.dim < 1:
            raise ValueError(f"dim must be a positive int, got {self.dim!r}")

    @property
    def e(self) -> np.ndarray:
        return np.full(self.dim, 1.0 / np.sqrt(self.dim))

    def losses(self, theta: ArrayLike) -> np.ndarray:
        theta = _parameter(theta, self.dim)
        return 1.0 - np.exp(-np.array([np.sum((theta - self.e) ** 2), np.sum((theta + self.e) ** 2)]))

    def jacobian(self, theta: ArrayLike) -> np.ndarray:
        """``grad L_1 = 2 (theta - e) exp(-||theta - e||^2)``, and likewise for ``L_2``."""
        theta = _parameter(theta, self.dim)
        diffs = np.stack([theta - self.e, theta + self.e])
        return 2.0 * diffs * np.exp(-np.sum(diffs**2, axis=1))[:, None]

    def pareto_set(self, num: int = 201) -> np.ndarray:
        """``num`` Pareto optimal parameters ``u e``, ``u`` from -1 to 1, shape ``(num, dim)``."""
        if num < 2:
            raise ValueError(f"num must be at least 2, got {num}")
        return np.linspace(-1.0, 1.0, num)[:, None] * self.e[None, :]

    def front(self, num: int = 201) -> np.ndarray:
        """The analytic Pareto front, ``(num, 2)``, from the task-2 end (u = -1) to the task-1 end."""
        if num < 2:
            raise ValueError(f"num must be at least 2, got {num}")
        u = np.linspace(-1.0, 1.0, num)
        return np.stack([1.0 - np.exp(-((u - 1.0) ** 2)), 1.0 - np.exp(-((u + 1.0) ** 2))], axis=1)


# --------------------------------------------------------------------------
# optimizing the scalarized objective


def scalarized_gradient_descent(
    problem: MultiObjective,
    weights: ArrayLike,
    theta0: ArrayLike,
    lr: float,
    steps: int,
) -> np.ndarray:
    """Plain gradient descent on ``sum_t w_t L_t(theta)`` from ``theta0``.

    ``theta <- theta - lr * sum_t w_t grad L_t(theta)``, ``steps`` times; this
    is the reference for the PyTorch and TensorFlow loops of chapter 2. On a
    non-convex problem it finds *a* stationary point near ``theta0``, not
    necessarily the global minimizer of the weighted sum.

    Raises:
        ValueError: bad weights, ``lr <= 0``, ``steps < 0``, a wrong-shaped
            ``theta0``, or an iterate that becomes non-finite (the step size
            is too large for this problem).

    Examples:
        >>> import numpy as np
        >>> problem = LeastSquaresTasks([np.eye(2), np.eye(2)], [np.array([1.0, 0.0]), np.array([0.0, 1.0])])
        >>> scalarized_gradient_descent(problem, [0.5, 0.5], theta0=np.zeros(2), lr=0.5, steps=50).round(4)
        array([0.5, 0.5])
    """
    w = _weight_vector(weights, problem.num_tasks)
    theta = _parameter(theta0, problem.dim).copy()
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    for _ in range(int(steps)):
        # overflow is detected below and reported as divergence, not warned about
        with np.errstate(over="ignore", invalid="ignore"):
            theta = theta - lr * (w @ problem.jacobian(theta))
        if not np.all(np.isfinite(theta)):
            raise ValueError(f"gradient descent diverged (lr={lr} is too large)")
    return theta


def normalize_by_initial(losses: ArrayLike, initial_losses: ArrayLike) -> np.ndarray:
    """Each loss divided by its value at the start of training: ``L_t / L_t(theta_0)``.

    Multiplying a task's loss by a constant ``c > 0`` (a change of units, a sum
    instead of a mean) multiplies its initial value by ``c`` too, so the
    normalized losses, and the minimizer of their weighted sum, do not change.
    Every normalized loss starts at 1.

    Raises:
        ValueError: mismatched lengths, non-finite values, or an initial loss
            that is not strictly positive (nothing sensible to divide by).

    Examples:
        >>> normalize_by_initial([0.5, 30.0], [2.0, 60.0])
        array([0.25, 0.5 ])
    """
    losses = _loss_vector(losses, "losses")
    initial = _loss_vector(initial_losses, "initial_losses")
    if losses.shape != initial.shape:
        raise ValueError(f"got {losses.size} losses but {initial.size} initial losses")
    if np.any(initial <= 0):
        raise ValueError(f"initial losses must be > 0 to normalize by them, got {initial}")
    return losses / initial
