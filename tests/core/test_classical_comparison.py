"""Tuning/comparison helpers, the diabetes tasks and the chapter-3 figures."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mtl_course.classical import IndependentRidge, PooledRidge  # noqa: E402
from mtl_course.classical.comparison import (  # noqa: E402
    Method,
    compare_on_splits,
    learning_curves,
    split_tasks,
    tune_and_score,
)
from mtl_course.classical.plotting import heatmaps, learning_curve_grid  # noqa: E402
from mtl_course.data.diabetes import diabetes_tasks  # noqa: E402
from mtl_course.data.planted import shared_mean_tasks  # noqa: E402
from mtl_course.data.synthetic import related_regression  # noqa: E402


def test_tune_and_score_picks_the_best_validation_strength():
    planted = shared_mean_tasks(3, 10, 4, spread=0.0, noise=0.1, seed=0)  # identical tasks
    train = (planted.X, planted.y)
    val, test = planted.sample(40, seed=1), planted.sample(40, seed=2)
    grid = [1e-3, 1e4]  # a huge ridge predicts ~the mean: far worse on validation
    best, test_mse = tune_and_score(Method(lambda a: IndependentRidge(a), grid), train, val, test)
    assert best == 1e-3
    assert test_mse == pytest.approx(np.mean(IndependentRidge(1e-3).fit(*train).score(*test)))
    with pytest.raises(ValueError, match="grid is empty"):
        tune_and_score(Method(lambda a: IndependentRidge(a), []), train, val, test)


class ConstantErrorModel:
    """A fake estimator whose validation/test error is a known function of its strength."""

    def __init__(self, strength: float) -> None:
        self.strength = strength

    def fit(self, X_list, y_list):
        return self

    def score(self, X_list, y_list):
        # "validation" data are marked by a first input of 1.0, "test" data by 2.0
        marker = X_list[0][0, 0]
        error = (self.strength - 3.0) ** 2 + (10.0 if marker == 2.0 else 0.0)
        return [error, error]


def _marked(value: float):
    return [np.full((2, 1), value)] * 2, [np.zeros(2)] * 2


def test_tune_and_score_picks_the_best_validation_strength_of_a_known_model():
    spec = Method(ConstantErrorModel, [1.0, 2.0, 3.0, 4.0])
    strength, test_error = tune_and_score(spec, _marked(0.0), _marked(1.0), _marked(2.0))
    assert strength == 3.0
    assert test_error == 10.0


def test_tune_and_score_breaks_ties_towards_the_first_strength():
    spec = Method(ConstantErrorModel, [2.0, 4.0])  # both have validation error 1
    assert tune_and_score(spec, _marked(0.0), _marked(1.0), _marked(2.0))[0] == 2.0


def test_tune_and_score_matches_a_manual_grid_search():
    tasks = related_regression(num_tasks=3, n_per_task=15, dim=4, relatedness=0.5, noise=0.5, seed=3)
    val, test = tasks.sample(40, seed=4), tasks.sample(100, seed=5)
    grid = [0.1, 1.0, 10.0]
    spec = Method(lambda s: IndependentRidge(alpha=s), grid)
    val_errors = [np.mean(IndependentRidge(alpha=s).fit(tasks.X, tasks.y).score(*val)) for s in grid]
    best = grid[int(np.argmin(val_errors))]
    expected = np.mean(IndependentRidge(alpha=best).fit(tasks.X, tasks.y).score(*test))
    assert tune_and_score(spec, (tasks.X, tasks.y), val, test) == (best, pytest.approx(expected))


def test_tune_and_score_rejects_a_nonfinite_validation_error():
    # A strength whose validation error is NaN is an error, not a strength to skip silently.
    class Broken(ConstantErrorModel):
        def score(self, X_list, y_list):
            return [np.nan] if self.strength == 1.0 else super().score(X_list, y_list)

    with pytest.raises(ValueError, match="validation error is nan at strength 1.0"):
        tune_and_score(Method(Broken, [2.0, 1.0]), _marked(0.0), _marked(1.0), _marked(2.0))


@pytest.mark.parametrize("grid, message", [([], "empty"), ([[1.0]], "1-D"), ([np.inf], "finite")])
def test_method_rejects_bad_grids(grid, message):
    with pytest.raises(ValueError, match=message):
        Method(IndependentRidge, grid)


def test_learning_curves_shape_and_pooling_wins_on_identical_tasks():
    methods = {"independent ridge": Method(lambda a: IndependentRidge(a), [0.1]), "pooled ridge": Method(lambda a: PooledRidge(a), [0.1])}
    curves = learning_curves(
        methods, lambda n, s: shared_mean_tasks(4, n, 6, spread=0.0, noise=0.5, seed=s), [4, 8], [0, 1], n_test=100
    )
    assert curves["pooled ridge"].shape == (2, 2)
    assert np.all(curves["pooled ridge"] < curves["independent ridge"])
    again = learning_curves(
        methods, lambda n, s: shared_mean_tasks(4, n, 6, spread=0.0, noise=0.5, seed=s), [4, 8], [0, 1], n_test=100
    )
    assert all(np.array_equal(curves[k], again[k]) for k in curves)


def test_split_tasks_partitions_every_task():
    X = [np.arange(20.0)[:, None], np.arange(10.0)[:, None]]
    y = [np.arange(20.0), np.arange(10.0)]
    train, val, test = split_tasks(X, y, train_fraction=0.3, val_fraction=0.2, seed=0)
    assert [len(t) for t in train[1]] == [6, 3] and [len(t) for t in val[1]] == [4, 2] and [len(t) for t in test[1]] == [10, 5]
    for t in range(2):
        np.testing.assert_array_equal(np.sort(np.concatenate([train[1][t], val[1][t], test[1][t]])), y[t])
        np.testing.assert_array_equal(train[0][t][:, 0], train[1][t])  # rows stay paired
    with pytest.raises(ValueError, match="sum < 1"):
        split_tasks(X, y, train_fraction=0.6, val_fraction=0.4, seed=0)
    with pytest.raises(ValueError, match="too few"):
        split_tasks([np.zeros((2, 1))], [np.zeros(2)], train_fraction=0.3, val_fraction=0.3, seed=0)


def test_diabetes_tasks_and_comparison():
    data = diabetes_tasks()
    assert [len(y) for y in data.y] == [138, 97, 89, 118] and sum(len(y) for y in data.y) == 442
    assert len(data.feature_names) == 9 and "sex" not in data.feature_names
    stacked = np.concatenate(data.X)
    np.testing.assert_allclose(stacked.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(stacked.std(axis=0), 1.0)
    methods = {"independent ridge": Method(lambda a: IndependentRidge(a), [10.0]), "pooled ridge": Method(lambda a: PooledRidge(a), [10.0])}
    results = compare_on_splits(methods, data.X, data.y, n_splits=2, train_fraction=0.2, val_fraction=0.2)
    assert results["pooled ridge"].shape == (2,)
    assert np.all((results["pooled ridge"] > 1000) & (results["pooled ridge"] < 6000))  # the target variance is ~5900


def test_figures_have_one_panel_per_input():
    fig = heatmaps({"a": np.eye(3), "b": -np.eye(3)}, colorbar_label="weight")
    assert len([ax for ax in fig.axes if ax.get_title()]) == 2
    plt.close(fig)
    sizes = [5, 10]
    fig = learning_curve_grid({"s1": {"m": np.ones((2, 3))}, "s2": {"m": np.ones((2, 3))}, "s3": {"m": np.ones((2, 3))}}, sizes)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["s1", "s2", "s3"]
    plt.close(fig)
    with pytest.raises(ValueError, match="at least one"):
        heatmaps({})


def test_learning_curve_grid_bars_span_the_seeds_and_methods_do_not_overlap():
    errors = {"a ridge": np.array([[1.0, 3.0, 2.0], [0.5, 0.5, 0.5]]), "b": np.array([[1.0, 2.0, 3.0], [0.2, 0.4, 0.3]])}
    fig = learning_curve_grid({"s": errors}, [5, 10], ncols=1)
    ax = fig.axes[0]
    assert len(ax.containers) == 2
    for container, (name, err) in zip(ax.containers, errors.items()):
        line, _, (bars,) = container
        np.testing.assert_allclose(line.get_ydata(), err.mean(axis=1))
        segments = bars.get_segments()  # one vertical segment per sample size: min to max over seeds
        np.testing.assert_allclose([seg[:, 1] for seg in segments], np.stack([err.min(1), err.max(1)], axis=1))
        assert container.get_label() == name
    x_a, x_b = (c[0].get_xdata() for c in ax.containers)
    assert np.all(x_a < x_b) and np.allclose(x_a * 1.06 / 0.94, x_b)  # shifted apart, on both sides of n
    assert ax.containers[0][0].get_linestyle() == "--" and ax.containers[1][0].get_linestyle() == "-"
    plt.close(fig)
