"""The measured experiment of chapter 1: test error against samples per task.

Chapter 1 asks whether learning related tasks together needs fewer samples
per task than learning each alone, and what happens on unrelated tasks. This
module runs that experiment for any set of :mod:`mtl_course.classical`
estimators on the tasks of :func:`mtl_course.data.related_regression`:

* every estimator (a :class:`~mtl_course.classical.comparison.Method`) gets
  its regularization strength chosen on a validation sample
  (:func:`~mtl_course.classical.comparison.tune_and_score`), so the
  comparison is between models at their best, not between arbitrary settings;
* training sets of growing size are nested prefixes of one draw, so a curve's
  steps show the effect of more data, not of a new draw;
* the whole experiment is repeated over seeds (:func:`sample_efficiency`).

The tasks of the chapter's deep-network section come from
:func:`mtl_course.data.synthetic.shared_subspace_regression`.

Numpy only; no deep-learning framework is imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mtl_course.classical.comparison import Method, tune_and_score
from mtl_course.data.synthetic import related_regression

__all__ = [
    "SampleEfficiencyResult",
    "sample_efficiency",
]

#: Offsets added to an experiment seed to draw the validation and test samples,
#: so they never reuse the training draw's seed.
VALIDATION_SEED_OFFSET = 1_000_000
TEST_SEED_OFFSET = 2_000_000


@dataclass(frozen=True)
class SampleEfficiencyResult:
    """Test errors of :func:`sample_efficiency`.

    Attributes:
        n_per_task: the training-set sizes, shape ``(k,)``.
        test_mse: model name -> ``(num_seeds, k)`` task-averaged test MSE.
        strength: model name -> ``(num_seeds, k)`` strength chosen on validation.
        noise: label noise standard deviation; ``noise**2`` is the lowest
            test MSE any model can reach.
    """

    n_per_task: np.ndarray
    test_mse: dict[str, np.ndarray]
    strength: dict[str, np.ndarray]
    noise: float

    def mean(self, name: str) -> np.ndarray:
        """Mean test MSE over seeds, one value per training-set size."""
        return self.test_mse[name].mean(axis=0)

    def std(self, name: str) -> np.ndarray:
        """Standard deviation over seeds of the test MSE."""
        return self.test_mse[name].std(axis=0)


def sample_efficiency(
    models: Mapping[str, Method],
    n_per_task: Sequence[int],
    *,
    relatedness: float,
    num_tasks: int = 10,
    dim: int = 20,
    noise: float = 0.5,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    n_val: int = 50,
    n_test: int = 1000,
) -> SampleEfficiencyResult:
    """Task-averaged test MSE against training samples per task, for each model.

    For each seed, one :func:`~mtl_course.data.related_regression` draw with
    ``max(n_per_task)`` examples per task provides the training sets (the first
    ``n`` rows of every task); fresh validation (``n_val`` per task) and test
    (``n_test`` per task) samples of the same tasks come from
    :meth:`~mtl_course.data.synthetic.RelatedRegression.sample` with the seed
    plus :data:`VALIDATION_SEED_OFFSET` / :data:`TEST_SEED_OFFSET`. Each model
    is tuned with :func:`~mtl_course.classical.comparison.tune_and_score`.

    Raises:
        ValueError: no models, no sizes, a non-positive size, no seeds.
    """
    if not models:
        raise ValueError("sample_efficiency needs at least one model")
    sizes = np.asarray(n_per_task)
    if sizes.ndim != 1 or sizes.size == 0:
        raise ValueError("n_per_task must be a non-empty sequence of training-set sizes")
    if not np.issubdtype(sizes.dtype, np.integer) or np.any(sizes < 1):
        raise ValueError(f"training-set sizes must be positive integers, got {sizes}")
    if len(seeds) == 0:
        raise ValueError("sample_efficiency needs at least one seed")

    errors = {name: np.empty((len(seeds), sizes.size)) for name in models}
    strengths = {name: np.empty((len(seeds), sizes.size)) for name in models}
    for i, seed in enumerate(seeds):
        tasks = related_regression(num_tasks, int(sizes.max()), dim, relatedness, noise, seed)
        val = tasks.sample(n_val, seed + VALIDATION_SEED_OFFSET)
        test = tasks.sample(n_test, seed + TEST_SEED_OFFSET)
        for j, n in enumerate(sizes):
            train = ([x[:n] for x in tasks.X], [v[:n] for v in tasks.y])
            for name, spec in models.items():
                strengths[name][i, j], errors[name][i, j] = tune_and_score(spec, train, val, test)
    return SampleEfficiencyResult(sizes.copy(), errors, strengths, float(noise))
