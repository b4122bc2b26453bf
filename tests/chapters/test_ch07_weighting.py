"""Tests of mtl_course.chapters.ch07_weighting (chapter 7's experiments), on tiny problems."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_course import torch as mtl
from mtl_course.chapters import ch07_weighting as W
from mtl_course.data.types import MultiTaskSplit

TINY = dict(num_tasks=3, sigmas=(1.0, 10.0, 100.0), n=100, input_dim=6, output_dim=2, seed=0)
RUN = dict(epochs=2, batch_size=30, hidden=8, depth=2)


@pytest.fixture(scope="module")
def tiny():
    return W.toy_splits(**TINY)


def test_grid_search_cost():
    assert W.grid_search_cost(2, 5) == 5
    assert W.grid_search_cost(4, 5) == 125
    assert W.grid_search_cost(1, 7) == 1
    with pytest.raises(ValueError, match="num_tasks"):
        W.grid_search_cost(0, 5)
    with pytest.raises(ValueError, match="values_per_weight"):
        W.grid_search_cost(3, 2.5)


def test_relative_weights():
    np.testing.assert_allclose(W.relative_weights([1.0, 3.0]), [0.5, 1.5])
    np.testing.assert_allclose(W.relative_weights([[0.25, 0.25], [0.1, 0.3]]), [[1, 1], [0.5, 1.5]])
    with pytest.raises(ValueError, match="positive sum"):
        W.relative_weights([0.0, 0.0])
    with pytest.raises(ValueError, match="finite"):
        W.relative_weights([np.nan, 1.0])


def test_relative_error_by_hand():
    y = np.array([[1.0], [3.0]])  # variance 1
    split = MultiTaskSplit(np.zeros((2, 1)), {"a": y, "b": y})
    err = W.relative_error({"a": np.array([[2.0], [2.0]]), "b": np.array([[1.0], [5.0]])}, split)
    np.testing.assert_allclose(err, [1.0, 2.0])  # the mean predicts with error = variance; b: (0 + 4) / 2 / 1


def test_make_weighting_static_is_inverse_initial_loss():
    w = W.make_weighting(mtl, "static", ["a", "b"], initial_losses=np.array([1.0, 3.0]))
    np.testing.assert_allclose(w.weights, [1.5, 0.5])  # (1, 1/3) scaled to sum 2
    with pytest.raises(ValueError, match="initial losses"):
        W.make_weighting(mtl, "static", ["a", "b"])
    with pytest.raises(ValueError, match="positive"):
        W.make_weighting(mtl, "static", ["a", "b"], initial_losses=np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="unknown weighting"):
        W.make_weighting(mtl, "pcgrad", ["a", "b"])
    assert type(W.make_weighting(mtl, "gradnorm", ["a", "b"], alpha=0.5)).__name__ == "GradNorm"


def test_train_weighting_is_deterministic_and_records_weights(tiny):
    a = W.train_weighting(mtl, "gradnorm", tiny, seed=1, **RUN)
    b = W.train_weighting(mtl, "gradnorm", tiny, seed=1, **RUN)
    assert a.weights.shape == (3, 3) and a.train_loss.shape == (2, 3) and a.test_error.shape == (3,)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.test_error, b.test_error)
    np.testing.assert_allclose(a.weights[0], 1.0)  # GradNorm starts from equal weights
    np.testing.assert_allclose(a.weights.sum(axis=1), 3.0)  # and keeps them summing to K
    assert not np.allclose(a.weights[-1], 1.0)
    equal = W.train_weighting(mtl, "equal", tiny, seed=1, **RUN)
    np.testing.assert_allclose(equal.weights, 1.0)
    assert equal.log_vars is None


def test_uncertainty_weighting_lr_moves_the_log_variances(tiny):
    slow = W.train_weighting(mtl, "uncertainty", tiny, seed=0, lr=1e-3, **RUN)
    fast = W.train_weighting(mtl, "uncertainty", tiny, seed=0, lr=1e-3, weighting_lr=0.1, **RUN)
    # 4 Adam steps move each s_i by at most about lr per step
    assert np.abs(slow.log_vars).max() <= 4 * 1e-3 * 1.01
    assert np.abs(fast.log_vars).max() > 0.2
    # the large-scale tasks have large losses: their s_i grow, their weights fall
    assert fast.log_vars[2] > fast.log_vars[0]
    np.testing.assert_allclose(fast.weights[-1], 0.5 * np.exp(-fast.log_vars))
    # with no weighting parameters, weighting_lr leaves the run unchanged
    a = W.train_weighting(mtl, "equal", tiny, seed=0, **RUN)
    b = W.train_weighting(mtl, "equal", tiny, seed=0, weighting_lr=0.1, **RUN)
    np.testing.assert_array_equal(a.test_error, b.test_error)


def test_compare_weightings_and_table(tiny):
    cmp = W.compare_weightings(mtl, ("equal", "static"), seeds=(0, 1), splits=tiny, **RUN)
    assert cmp.test_error().shape == (2, 2, 3)
    assert cmp.weights("static").shape == (3, 3)
    np.testing.assert_allclose(cmp.weights("static").sum(axis=1), 3.0)
    # static weights are inverse initial losses: the largest-scale task gets the smallest weight
    assert np.argmin(cmp.weights("static")[0]) == 2
    table = cmp.table()
    assert table.splitlines()[0].split()[:4] == ["method", "t0", "t1", "t2"]
    assert len(table.splitlines()) == 3
    with pytest.raises(ValueError, match="unknown weighting"):
        W.compare_weightings(mtl, ("mgda",), splits=tiny)
    with pytest.raises(ValueError, match="at least one"):
        W.compare_weightings(mtl, (), splits=tiny)


def test_static_grid_search(tiny):
    two = W.toy_splits(num_tasks=2, sigmas=(1.0, 100.0), n=100, input_dim=6, output_dim=2, seed=0)
    grid = W.static_grid_search(mtl, (1e-3, 1.0), two, seeds=(0, 1), max_epochs=3, patience=None,
                                batch_size=30, hidden=8, depth=2)
    assert grid.runs == 4 and grid.val_error.shape == (2, 2, 2) and grid.test_error.shape == (2, 2, 2)
    assert grid.best == int(np.argmin(grid.val_error.mean(axis=(1, 2))))
    # a tiny weight on the large task: its error is worse than with equal weights, on every seed
    assert np.all(grid.test_error[0, :, 1] > grid.test_error[1, :, 1])
    with pytest.raises(ValueError, match="two tasks"):
        W.static_grid_search(mtl, (1.0,), tiny)
    with pytest.raises(ValueError, match="positive"):
        W.static_grid_search(mtl, (0.0,), two)


@pytest.mark.parametrize("method", W.METHODS)
def test_train_stacked_matches_fit_with_the_package_weightings(tiny, method):
    """The stacked trainer (many runs at once) takes the same steps as ``fit`` with the package's
    weighting classes: same initial model, batches, weights and Adam, to float32 rounding."""
    kwargs = dict(batch_size=30, hidden=8, depth=2, alpha=1.5, gradnorm_lr=0.025)
    stacked = W.train_stacked(mtl, (method,), tiny, seeds=(1,), lrs=(4e-3,), max_epochs=2, patience=None,
                              weighting_lr=0.1, dtype="float32", **kwargs)
    run = W.train_weighting(mtl, method, tiny, seed=1, epochs=2, lr=4e-3, weighting_lr=0.1, **kwargs)
    np.testing.assert_allclose(stacked.weights[0, 0, 0], run.weights, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stacked.test_error[0, 0, 0], run.test_error, rtol=1e-4)
    if method == "uncertainty":
        np.testing.assert_allclose(stacked.log_vars[0, 0, 0], run.log_vars, rtol=1e-4, atol=1e-6)


def test_train_stacked_runs_are_independent_and_stop_early(tiny):
    """A run's result does not depend on which other runs are stacked with it; early stopping keeps
    the epoch with the lowest mean validation error, and the tuned lr is the one with the lowest
    validation error."""
    kwargs = dict(batch_size=30, hidden=8, depth=2, max_epochs=15, patience=3)
    both = W.train_stacked(mtl, ("equal", "gradnorm"), tiny, seeds=(0, 1), lrs=(1e-3, 3e-2), **kwargs)
    alone = W.train_stacked(mtl, ("gradnorm",), tiny, seeds=(1,), lrs=(3e-2,), **kwargs)
    np.testing.assert_allclose(both.test_error[1, 1, 1], alone.test_error[0, 0, 0], rtol=1e-10)
    assert both.best_epoch[1, 1, 1] == alone.best_epoch[0, 0, 0]
    assert np.all(both.best_epoch <= both.stopped_epoch)
    stopped_early = both.stopped_epoch < 15
    assert np.all(both.stopped_epoch[stopped_early] - both.best_epoch[stopped_early] == 3)
    tuned = both.tuned()
    for m, method in enumerate(both.methods):
        assert tuned[method] == int(np.argmin(both.val_error[m].mean(axis=(1, 2))))
    assert both.table().splitlines()[0].split()[:3] == ["method", "lr", "t0"]
    with pytest.raises(ValueError, match="PyTorch"):
        import mtl_course.tf as tf_mtl
        W.train_stacked(tf_mtl, ("equal",), tiny, seeds=(0,))
    with pytest.raises(ValueError, match="unknown weighting"):
        W.train_stacked(mtl, ("mgda",), tiny, seeds=(0,))


def test_torch_tf_parity(tiny):
    import mtl_course.tf  # noqa: F401

    for method in ("equal", "uncertainty", "gradnorm", "dwa", "rlw", "static"):
        twins = W.train_twins(method, tiny, seed=0, **RUN)
        torch_run, tf_run = twins["torch"], twins["tf"]
        np.testing.assert_allclose(tf_run.weights, torch_run.weights, rtol=1e-4, atol=1e-5, err_msg=method)
        np.testing.assert_allclose(tf_run.test_error, torch_run.test_error, rtol=1e-3, err_msg=method)
        np.testing.assert_allclose(tf_run.train_loss, torch_run.train_loss, rtol=1e-3, err_msg=method)
    with pytest.raises(ValueError, match="torch"):
        import mtl_course.tf as tf_mtl
        W.train_weighting(tf_mtl, "uncertainty", tiny, weighting_lr=0.1, **RUN)


def _runs_from_errors(errors: dict[str, list[list[float]]]) -> W.StackedRuns:
    """A StackedRuns with one learning rate whose test errors are ``errors[method]`` (seed, task)."""
    test = np.array([[e] for e in errors.values()], dtype=float)  # (method, lr, seed, task)
    m, _, s, t = test.shape
    return W.StackedRuns(tuple(errors), (1e-3,), tuple(range(s)), tuple(f"t{i}" for i in range(t)),
                         val_error=test.copy(), test_error=test, weights=np.ones((m, 1, s, 2, t)),
                         best_epoch=np.ones((m, 1, s), int), stopped_epoch=np.ones((m, 1, s), int),
                         log_vars=np.full((m, 1, s, t), np.nan), final_train_loss=np.ones((m, 1, s, t)))


def test_difference_table_by_hand():
    """Differences are taken seed by seed; digits come from the spread of the differences, not of the
    errors (which is 25 times larger here); a mean within half a spread of 0 prints as an unsigned 0."""
    equal = [[1.0, 0.5], [1.2, 0.6], [0.8, 0.4]]
    better = [[0.69, 0.501], [0.91, 0.599], [0.50, 0.4]]  # t0: -0.31, -0.29, -0.30; t1: +0.001, -0.001, 0
    worse = [[1.5, 0.5], [1.7, 0.6], [1.3, 0.4]]  # t0: +0.5 on every seed (no spread), t1: 0
    runs = _runs_from_errors({"equal": equal, "better": better, "worse": worse})
    d = runs.paired_differences("equal")
    np.testing.assert_allclose(d["better"][:, 0], [-0.31, -0.29, -0.30])
    np.testing.assert_allclose(d["better"][:, 2], (np.array(better) - np.array(equal)).mean(axis=1))
    rows = {line.split()[0]: line.split()[1:] for line in runs.difference_table().splitlines()[1:]}
    # t0: mean -0.30, std 0.008 -> 3 decimals, but -0.300 lies within 0.004 of the boundary -0.3005 -> 2
    # t1: mean 0, std 0.0008 -> "0.000"; task mean -0.15 (std 0.004, near -0.1505) -> 2 decimals
    assert rows["better"] == ["-0.30", "0.000", "-0.15"]
    assert rows["worse"] == ["+0.500000", "0.00000", "+0.250000"]  # no spread: the most decimals (0: one fewer)
    assert "equal" not in rows
    assert runs.difference_table().splitlines()[0].split() == ["method", "t0", "t1", "task", "mean"]
