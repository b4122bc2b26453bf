"""Compare multi-task estimators fairly: tune one strength on validation data, score on test data."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from mtl_course.classical.base import MultiTaskLinearModel
from mtl_course.data.planted import PlantedTasks

ArrayList = list[np.ndarray]


@dataclass(frozen=True)
class Method:
    """An estimator family with one strength to tune.

    Attributes:
        make: ``strength -> unfitted estimator``, e.g.
            ``lambda s: IndependentRidge(alpha=s)``.
        grid: the strengths tried on the validation data (a non-empty 1-D
            sequence of finite numbers).
    """

    make: Callable[[float], MultiTaskLinearModel]
    grid: Sequence[float]

    def __post_init__(self) -> None:
        values = np.asarray(self.grid, dtype=float)
        if values.ndim != 1:
            raise ValueError(f"Method.grid must be a 1-D sequence of strengths, got shape {values.shape}")
        if values.size == 0:
            raise ValueError("Method.grid is empty: give at least one strength")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"Method.grid must hold finite strengths, got {values}")


def tune_and_score(
    method: Method,
    train: tuple[Sequence[np.ndarray], Sequence[np.ndarray]],
    val: tuple[Sequence[np.ndarray], Sequence[np.ndarray]],
    test: tuple[Sequence[np.ndarray], Sequence[np.ndarray]],
) -> tuple[float, float]:
    """Fit every strength of ``method.grid`` on ``train``; keep the best on ``val``; score it on ``test``.

    The criterion is the mean validation MSE over tasks; ties go to the first
    strength in the grid. The chosen model is scored as fitted (no refit on
    train + validation). ``train``, ``val`` and ``test`` are ``(X_list, y_list)`` pairs.

    Returns:
        ``(best strength, mean test MSE over tasks)``.

    Raises:
        ValueError: when a fitted model's validation error is not finite (the
            strength grid or the data are broken).
    """
    best_strength, best_val, best_model = None, np.inf, None
    for strength in method.grid:
        model = method.make(float(strength)).fit(*train)
        val_mse = float(np.mean(model.score(*val)))
        if not np.isfinite(val_mse):
            raise ValueError(f"validation error is {val_mse} at strength {strength}")
        if val_mse < best_val:
            best_strength, best_val, best_model = float(strength), val_mse, model
    return best_strength, float(np.mean(best_model.score(*test)))


def learning_curves(
    methods: Mapping[str, Method],
    make_tasks: Callable[[int, int], PlantedTasks],
    sample_sizes: Sequence[int],
    seeds: Sequence[int],
    *,
    n_val: int = 50,
    n_test: int = 500,
) -> dict[str, np.ndarray]:
    """Test MSE of each method as the number of training samples per task grows.

    For every ``n`` in ``sample_sizes`` and every seed, ``make_tasks(n, seed)``
    draws the training data; validation (``n_val`` per task) and test (``n_test``
    per task) data come from the same tasks with seeds derived from ``seed``.

    Returns:
        name -> array ``(len(sample_sizes), len(seeds))`` of mean test MSE over tasks.
    """
    results = {name: np.empty((len(sample_sizes), len(seeds))) for name in methods}
    # The matrices are tiny: BLAS threads only add overhead, and on a busy CPU a lot of it.
    with threadpool_limits(limits=1, user_api="blas"):
        _fill_curves(results, methods, make_tasks, sample_sizes, seeds, n_val, n_test)
    return results


def _fill_curves(results, methods, make_tasks, sample_sizes, seeds, n_val, n_test) -> None:
    for i, n in enumerate(sample_sizes):
        for j, seed in enumerate(seeds):
            tasks = make_tasks(int(n), int(seed))
            train = (tasks.X, tasks.y)
            val = tasks.sample(n_val, seed=10_000 + int(seed))
            test = tasks.sample(n_test, seed=20_000 + int(seed))
            for name, method in methods.items():
                results[name][i, j] = tune_and_score(method, train, val, test)[1]


def split_tasks(
    X_list: Sequence[np.ndarray],
    y_list: Sequence[np.ndarray],
    *,
    train_fraction: float,
    val_fraction: float,
    seed: int,
) -> tuple[tuple[ArrayList, ArrayList], tuple[ArrayList, ArrayList], tuple[ArrayList, ArrayList]]:
    """Split every task at random into train, validation and test parts (the rest).

    Each task is split on its own, so every task appears in all three parts.
    Raises ValueError unless both fractions are positive and sum to less than 1.
    """
    if not (train_fraction > 0 and val_fraction > 0 and train_fraction + val_fraction < 1):
        raise ValueError(
            f"need train_fraction > 0, val_fraction > 0 and a sum < 1, got {train_fraction} and {val_fraction}"
        )
    rng = np.random.default_rng(seed)
    parts: list[tuple[list, list]] = [([], []), ([], []), ([], [])]
    for t, (X, y) in enumerate(zip(X_list, y_list)):
        order = rng.permutation(len(y))
        n_train = int(round(train_fraction * len(y)))
        n_val = int(round(val_fraction * len(y)))
        if n_train < 1 or n_val < 1 or n_train + n_val >= len(y):
            raise ValueError(f"task {t} has {len(y)} samples: too few for these fractions")
        for part, rows in zip(parts, np.split(order, [n_train, n_train + n_val])):
            part[0].append(X[rows])
            part[1].append(y[rows])
    return parts[0], parts[1], parts[2]


def compare_on_splits(
    methods: Mapping[str, Method],
    X_list: Sequence[np.ndarray],
    y_list: Sequence[np.ndarray],
    *,
    n_splits: int,
    train_fraction: float,
    val_fraction: float,
) -> dict[str, np.ndarray]:
    """Mean test MSE over tasks of each method on ``n_splits`` random splits (seeds ``0 .. n_splits - 1``).

    The methods see the same splits, so their errors can be compared split by split.

    Returns:
        name -> array ``(n_splits,)``.
    """
    results = {name: np.empty(n_splits) for name in methods}
    with threadpool_limits(limits=1, user_api="blas"):
        for seed in range(n_splits):
            train, val, test = split_tasks(
                X_list, y_list, train_fraction=train_fraction, val_fraction=val_fraction, seed=seed
            )
            for name, method in methods.items():
                results[name][seed] = tune_and_score(method, train, val, test)[1]
    return results
