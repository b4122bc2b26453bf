"""The two container types of mtl_course.data and the converters between their layouts."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_course.core.tasks import Task, prepare_targets
from mtl_course.data import MultiTaskSplit, TaskData, diabetes_tasks
from mtl_course.data.planted import PlantedTasks, low_rank_tasks
from mtl_course.data.synthetic import (
    RelatedRegression,
    related_regression,
    shared_subspace_regression,
)


def _task_data(sizes, dim=3, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return TaskData(X=[rng.standard_normal((n, dim)).astype(dtype) for n in sizes],
                    y=[rng.standard_normal(n).astype(dtype) for n in sizes])


def _assert_same_task_data(a: TaskData, b: TaskData) -> None:
    assert a.task_names == b.task_names and a.feature_names == b.feature_names
    assert len(a.X) == len(b.X)
    for xa, xb, ya, yb in zip(a.X, b.X, a.y, b.y):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
        assert xa.dtype == xb.dtype


def test_task_data_default_names_and_sizes():
    data = _task_data([2, 5], dim=4)
    assert data.task_names == ("t0", "t1") and data.feature_names == ("x0", "x1", "x2", "x3")
    assert data.num_tasks == 2 and data.dim == 4
    named = TaskData(X=data.X, y=data.y, task_names=["a", "b"], feature_names=list("pqrs"))
    assert named.task_names == ("a", "b") and named.feature_names == ("p", "q", "r", "s")


@pytest.mark.parametrize("kwargs, match", [
    ({"X": [], "y": []}, "at least one task"),
    ({"X": [np.ones((2, 3))], "y": [np.ones(2), np.ones(2)]}, "1 input arrays but 2 target"),
    ({"X": [np.ones(3)], "y": [np.ones(3)]}, r"task 0: X must be \(n, d\)"),
    ({"X": [np.ones((2, 3))], "y": [np.ones(3)]}, r"task 0: X must be \(n, d\) and y \(n,\)"),
    ({"X": [np.ones((2, 3))], "y": [np.ones((2, 1))]}, r"task 0: X must be"),
    ({"X": [np.ones((0, 3))], "y": [np.ones(0)]}, "n >= 1"),
    ({"X": [np.ones((2, 3)), np.ones((2, 4))], "y": [np.ones(2)] * 2}, r"same number of input columns, got \[3, 4\]"),
    ({"X": [np.ones((2, 3))] * 2, "y": [np.ones(2)] * 2, "task_names": ("a", "a")}, "2 distinct names"),
    ({"X": [np.ones((2, 3))] * 2, "y": [np.ones(2)] * 2, "task_names": ("a",)}, "2 distinct names"),
    ({"X": [np.ones((2, 3))], "y": [np.ones(2)], "feature_names": ("a", "b")}, "3 names"),
])
def test_task_data_rejects_bad_layouts(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TaskData(**kwargs)


def test_to_split_stacks_the_tasks_and_marks_other_tasks_rows_nan():
    data = TaskData(X=[np.array([[1.0], [2.0]]), np.array([[3.0]])],
                    y=[np.array([10.0, 20.0]), np.array([30.0])], task_names=("a", "b"))
    split = data.to_split()
    np.testing.assert_array_equal(split.x, [[1.0], [2.0], [3.0]])
    np.testing.assert_array_equal(split.y["a"], [10.0, 20.0, np.nan])
    np.testing.assert_array_equal(split.y["b"], [np.nan, np.nan, 30.0])
    assert split.task_names == ("a", "b")


def test_to_split_labels_are_the_missing_labels_of_fit():
    # fit's target preparation must see exactly each task's own rows as labelled
    data = _task_data([3, 1, 4])
    targets, masks = prepare_targets(data.to_split(), {name: Task("mse") for name in data.task_names})
    owner = np.repeat(np.arange(3), [3, 1, 4])
    for t, name in enumerate(data.task_names):
        np.testing.assert_array_equal(masks[name], owner == t)
        np.testing.assert_allclose(targets[name][owner == t], data.y[t].astype(np.float32))
        assert np.all(targets[name][owner != t] == 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_from_task_data_is_exact(dtype):
    data = _task_data([4, 1, 3], dtype=dtype, seed=1)
    split = data.to_split()
    assert split.x.dtype == dtype and all(v.dtype == dtype for v in split.y.values())
    _assert_same_task_data(TaskData.from_split(split, feature_names=data.feature_names), data)


def test_integer_targets_become_float64_with_nan():
    data = TaskData(X=[np.ones((2, 1)), np.zeros((1, 1))], y=[np.array([0, 2]), np.array([1])])
    split = data.to_split()
    assert split.y["t0"].dtype == np.float64
    np.testing.assert_array_equal(split.y["t0"], [0.0, 2.0, np.nan])
    back = TaskData.from_split(split)
    np.testing.assert_array_equal(back.y[0], [0.0, 2.0])


@settings(max_examples=40, deadline=None)
@given(owner=st.lists(st.integers(0, 2), min_size=1, max_size=20), seed=st.integers(0, 2**32 - 1))
def test_round_trip_from_a_split_with_one_label_per_row(owner, seed):
    """A split whose rows each belong to one task comes back row for row, up to the row order."""
    owner = np.array(owner)
    tasks = np.unique(owner)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(owner), 2))
    y = {f"task{t}": np.where(owner == t, rng.standard_normal(len(owner)), np.nan) for t in tasks}
    split = MultiTaskSplit(x, y)
    data = TaskData.from_split(split)
    assert data.task_names == split.task_names
    for t, name in enumerate(data.task_names):
        rows = np.flatnonzero(owner == tasks[t])
        np.testing.assert_array_equal(data.X[t], x[rows])
        np.testing.assert_array_equal(data.y[t], y[name][rows])
    order = np.concatenate([np.flatnonzero(owner == t) for t in tasks])  # to_split stacks task by task
    back = data.to_split()
    np.testing.assert_array_equal(back.x, x[order])
    for name in split.task_names:
        np.testing.assert_array_equal(back.y[name], y[name][order])


def test_from_split_copies_a_row_labelled_for_several_tasks():
    split = MultiTaskSplit(np.arange(6.0).reshape(3, 2), {"a": np.array([1.0, 2.0, 3.0]),
                                                           "b": np.array([np.nan, 5.0, 6.0])})
    data = TaskData.from_split(split)
    np.testing.assert_array_equal(data.X[0], split.x)
    np.testing.assert_array_equal(data.X[1], split.x[1:])
    np.testing.assert_array_equal(data.y[1], [5.0, 6.0])
    assert len(data.to_split()) == 5  # each (row, task) example once


def test_from_split_reads_masked_entries_as_missing():
    target = np.ma.MaskedArray([1, 2, 3], mask=[False, True, False])
    data = TaskData.from_split(MultiTaskSplit(np.arange(3.0)[:, None], {"a": target}))
    np.testing.assert_array_equal(data.X[0].ravel(), [0.0, 2.0])
    np.testing.assert_array_equal(data.y[0], [1, 3])
    assert not np.ma.isMaskedArray(data.y[0])


@pytest.mark.parametrize("split, match", [
    (MultiTaskSplit(np.ones((2, 1, 2)), {"a": np.ones(2)}), r"\(n, d\) inputs.*\(2, 1, 2\)"),
    (MultiTaskSplit(np.ones((2, 3)), {"a": np.ones((2, 4))}), r"task 'a' has shape \(2, 4\)"),
    (MultiTaskSplit(np.ones((2, 3)), {"a": np.ones(2), "b": np.full(2, np.nan)}), "task 'b' has no labelled row"),
])
def test_from_split_rejects_what_task_data_cannot_hold(split, match):
    with pytest.raises(ValueError, match=match):
        TaskData.from_split(split)


def test_to_split_refuses_nan_targets():
    data = TaskData(X=[np.ones((2, 1))], y=[np.array([1.0, np.nan])], task_names=("price",))
    with pytest.raises(ValueError, match="task 'price' has NaN targets"):
        data.to_split()


def test_the_generators_return_task_data():
    planted = low_rank_tasks(num_tasks=3, n_per_task=4, dim=5, rank=2, seed=0)
    related = related_regression(num_tasks=2, n_per_task=3, dim=4, seed=0)
    subspace = shared_subspace_regression(num_tasks=2, n_per_task=3, dim=4, rank=1, seed=0)
    for data, kind in ((planted, PlantedTasks), (related, RelatedRegression), (subspace, RelatedRegression),
                       (diabetes_tasks(), TaskData)):
        assert isinstance(data, TaskData) and isinstance(data, kind)
        back = TaskData.from_split(data.to_split(), feature_names=data.feature_names)
        _assert_same_task_data(back, TaskData(X=data.X, y=data.y, task_names=data.task_names,
                                              feature_names=data.feature_names))
    assert planted.num_tasks == 3 and planted.dim == 5 and related.dim == 4
    with pytest.raises(ValueError, match="same number of input columns"):
        RelatedRegression(X=[np.ones((1, 2)), np.ones((1, 3))], y=[np.ones(1)] * 2,
                          weights=np.ones((2, 2)), shared=np.zeros(2), noise=0.0)
