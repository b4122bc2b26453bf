"""Tests of the lookahead task affinity and task grouping (chapter 10).

Covers mtl_course.core.affinity (formula, partitions, grouping), the planted-group
data of mtl_course.data.groups, mtl_course.torch.affinity.task_affinity (against a
step computed by hand) and its TensorFlow twin (parity).
"""

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import mtl_course.tf  # noqa: F401  (before tensorflow)
from mtl_course import parity
from mtl_course import torch as mtl
from mtl_course.core.affinity import (
    AffinityTrace,
    group_tasks,
    grouping_score,
    lookahead_affinity,
    set_partitions,
)
from mtl_course.data.groups import grouped_regression
from mtl_course.data.types import MultiTaskSplit
from mtl_course.torch.affinity import task_affinity

BELL = [1, 1, 2, 5, 15, 52, 203, 877]


# ------------------------------------------------------------------ core math


def test_lookahead_affinity_by_hand():
    before = np.array([0.5, 0.8])
    after = np.array([[0.4, 0.84], [0.45, 0.6]])
    Z = lookahead_affinity(before, after)
    np.testing.assert_allclose(Z, [[0.2, -0.05], [0.1, 0.25]], atol=1e-12)


def test_lookahead_affinity_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        lookahead_affinity(np.ones(2), np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-empty"):
        lookahead_affinity(np.ones(0), np.ones((0, 0)))
    with pytest.raises(ValueError, match="NaN or inf"):
        lookahead_affinity(np.array([1.0, np.nan]), np.ones((2, 2)))
    with pytest.raises(ValueError, match="positive"):
        lookahead_affinity(np.array([1.0, 0.0]), np.ones((2, 2)))


@pytest.mark.parametrize("n", range(1, 8))
def test_set_partitions_are_the_bell_number_many_distinct_partitions(n):
    seen = set()
    for groups in set_partitions(n):
        assert sorted(i for g in groups for i in g) == list(range(n))
        seen.add(tuple(tuple(g) for g in groups))
    assert len(seen) == BELL[n]
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        next(set_partitions(0))


def test_grouping_score_by_hand():
    Z = np.array([[0.0, 0.2, -0.1], [0.4, 0.0, 0.3], [0.1, -0.2, 0.0]])
    # {0, 1}: onto 0 from 1 is 0.4, onto 1 from 0 is 0.2; {2} alone scores 0
    assert grouping_score(Z, [[0, 1], [2]]) == pytest.approx(0.6)
    # one group: onto 0 (0.4 + 0.1) / 2, onto 1 (0.2 - 0.2) / 2, onto 2 (-0.1 + 0.3) / 2
    assert grouping_score(Z, [[0, 1, 2]]) == pytest.approx(0.25 + 0.0 + 0.1)
    assert grouping_score(Z, [[0], [1], [2]]) == 0.0
    with pytest.raises(ValueError, match="partition"):
        grouping_score(Z, [[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="partition"):
        grouping_score(Z, [[0, 1]])


def test_group_tasks_recovers_a_planted_block_structure():
    Z = np.full((5, 5), -0.05)
    for block in ([0, 2], [1, 3, 4]):
        Z[np.ix_(block, block)] = 0.1
    result = group_tasks(Z, task_names=list("abcde"))
    assert result.groups == [["a", "c"], ["b", "d", "e"]]
    assert result.score == pytest.approx(5 * 0.1)
    # with one network only, everything goes together
    assert group_tasks(Z, max_groups=1).groups == [[0, 1, 2, 3, 4]]


def test_group_tasks_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        group_tasks(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        group_tasks(np.full((2, 2), np.inf))
    with pytest.raises(ValueError, match="limited to 10"):
        group_tasks(np.zeros((11, 11)))
    with pytest.raises(ValueError, match="max_groups"):
        group_tasks(np.zeros((2, 2)), max_groups=0)
    with pytest.raises(ValueError, match="task names"):
        group_tasks(np.zeros((2, 2)), task_names=["a"])


@settings(max_examples=30, deadline=None)
@given(Z=arrays(np.float64, (5, 5), elements=st.floats(-1, 1)), data=st.data())
def test_group_tasks_beats_every_partition(Z, data):
    best = group_tasks(Z, max_groups=3)
    assert len(best.groups) <= 3
    assert best.score == pytest.approx(grouping_score(Z, best.groups))
    partitions = [p for p in set_partitions(5) if len(p) <= 3]
    other = data.draw(st.sampled_from(partitions))
    assert best.score >= grouping_score(Z, other) - 1e-12


def test_affinity_trace():
    steps = np.array([[[0.0, 0.2], [-0.1, 0.0]], [[0.0, 0.4], [0.1, 0.0]]])
    trace = AffinityTrace(("a", "b"), steps, np.ones((2, 2)))
    np.testing.assert_allclose(trace.affinity, [[0.0, 0.3], [0.0, 0.0]])
    assert trace.onto("b") == {"a": pytest.approx(0.3)}
    with pytest.raises(ValueError, match="unknown task"):
        trace.onto("c")


# ------------------------------------------------------------------ data


def test_grouped_regression():
    data = grouped_regression(group_sizes=(2, 1), n_train=20, n_val=5, n_test=7, dim=3, noise=[1.0, 0.0, 0.0])
    assert data.groups == [["a0", "a1"], ["b0"]]
    assert data.task_names == ("a0", "a1", "b0")
    assert [len(s) for s in data.splits] == [20, 5, 7]
    assert data.splits.train.x.dtype == np.float32 and data.splits.train.x.shape == (20, 3)
    assert data.noise == {"a0": 1.0, "a1": 0.0, "b0": 0.0}
    # own=0 and no noise: tasks of one group are identical, of two groups are not
    same = grouped_regression(group_sizes=(2, 1), own=0.0, noise=0.0, n_train=50)
    y = same.splits.train.y
    np.testing.assert_array_equal(y["a0"], y["a1"])
    assert abs(np.corrcoef(y["a0"], y["b0"])[0, 1]) < 0.9
    np.testing.assert_array_equal(grouped_regression(seed=3).splits.test.y["b1"],
                                  grouped_regression(seed=3).splits.test.y["b1"])
    with pytest.raises(ValueError, match="one per task"):
        grouped_regression(group_sizes=(2,), noise=[0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="noise of task a1"):
        grouped_regression(group_sizes=(2,), noise=[0.1, -1.0])
    with pytest.raises(ValueError, match="group size"):
        grouped_regression(group_sizes=(2, 0))


# ------------------------------------------------------------------ torch


def _tiny(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    data = MultiTaskSplit(x, {"a": x[:, 0] + 1.0, "b": -x[:, 0] + x[:, 1], "c": np.sin(x[:, 2])})
    mtl.seed_everything(seed)
    model = mtl.HardSharing(mtl.mlp([3, 4]), {n: mtl.mlp([4, 1]) for n in "abc"})
    return model, data


def _losses(model, data):
    out = model(torch.from_numpy(data.x))
    return [torch.mean((out[n].reshape(-1) - torch.from_numpy(data.y[n])) ** 2) for n in "abc"]


def test_task_affinity_equals_the_lookahead_step_by_hand():
    model, data = _tiny()
    reference = copy.deepcopy(model)
    lr = 0.1
    trace = task_affinity(model, data, {n: "mse" for n in "abc"}, epochs=1, batch_size=16, lr=lr)
    assert trace.steps.shape == (1, 3, 3) and trace.task_names == ("a", "b", "c")

    before = torch.stack(_losses(reference, data)).detach().numpy()
    after = np.empty((3, 3))
    for i in range(3):
        moved = copy.deepcopy(reference)
        grads = torch.autograd.grad(_losses(moved, data)[i], moved.shared_parameters())
        with torch.no_grad():
            for p, g in zip(moved.shared_parameters(), grads):
                p -= lr * g
            after[i] = [float(v) for v in _losses(moved, data)]
    np.testing.assert_allclose(trace.steps[0], 1.0 - after / before, atol=1e-6)
    np.testing.assert_allclose(trace.losses[0], before, rtol=1e-6)

    # the real step is SGD on the sum of the losses
    grads = torch.autograd.grad(torch.stack(_losses(reference, data)).sum(), list(reference.parameters()))
    for p_ref, g, p in zip(reference.parameters(), grads, model.parameters()):
        torch.testing.assert_close(p, (p_ref - lr * g).detach())


def test_task_affinity_is_deterministic_and_respects_every():
    model, data = _tiny()
    first = task_affinity(model, data, {n: "mse" for n in "abc"}, epochs=2, batch_size=4, every=3)
    assert first.steps.shape == (3, 3, 3)  # 8 steps, recorded at 0, 3, 6
    model, data = _tiny()
    second = task_affinity(model, data, {n: "mse" for n in "abc"}, epochs=2, batch_size=4, every=3)
    np.testing.assert_array_equal(first.steps, second.steps)


def test_task_affinity_rejects_bad_arguments():
    model, data = _tiny()
    tasks = {n: "mse" for n in "abc"}
    with pytest.raises(ValueError, match="lr"):
        task_affinity(model, data, tasks, lr=0.0)
    with pytest.raises(ValueError, match="every"):
        task_affinity(model, data, tasks, every=0)
    with pytest.raises(ValueError, match="epochs"):
        task_affinity(model, data, tasks, epochs=True)
    with pytest.raises(ValueError, match="no targets"):
        task_affinity(model, data, {"z": "mse"})
    bad = MultiTaskSplit(data.x, {**data.y, "a": np.full(16, np.nan, dtype=np.float32)})
    with pytest.raises(ValueError, match="NaN or inf"):
        task_affinity(model, bad, tasks)
    empty = mtl.HardSharing(torch.nn.Identity(), {n: mtl.mlp([3, 1]) for n in "abc"})
    with pytest.raises(ValueError, match="no shared parameters"):
        task_affinity(empty, data, tasks)


def test_task_affinity_recovers_planted_groups():
    data = grouped_regression(group_sizes=(2, 2), n_train=256, seed=0)
    names = data.task_names
    mtl.seed_everything(0)
    model = mtl.HardSharing(mtl.mlp([8, 16, 16]), {n: mtl.mlp([16, 1]) for n in names})
    trace = task_affinity(model, data.splits.train, {n: "mse" for n in names}, epochs=4, batch_size=32)
    Z = trace.affinity
    assert Z[0, 1] > 0 and Z[1, 0] > 0 and Z[2, 3] > 0 and Z[3, 2] > 0
    assert group_tasks(Z, task_names=names).groups == data.groups


# ------------------------------------------------------------------ tensorflow parity


def test_tf_task_affinity_matches_torch():

    from mtl_course import tf as mtf
    from mtl_course.tf.affinity import task_affinity as tf_task_affinity

    model, data = _tiny()
    keras_model = mtf.HardSharing(mtf.mlp([3, 4]), {n: mtf.mlp([4, 1]) for n in "abc"})
    keras_model(data.x[:1])
    parity.copy_torch_to_tf(model, keras_model)
    tasks = {n: "mse" for n in "abc"}
    expected = task_affinity(model, data, tasks, epochs=1, batch_size=8, lr=0.1)
    got = tf_task_affinity(keras_model, data, tasks, epochs=1, batch_size=8, lr=0.1)
    assert got.task_names == expected.task_names
    np.testing.assert_allclose(got.losses, expected.losses, rtol=1e-5)
    np.testing.assert_allclose(got.steps, expected.steps, atol=1e-5)
    for p, v in zip(model.shared_parameters(), keras_model.shared_parameters()):
        np.testing.assert_allclose(np.asarray(v).T if v.ndim == 2 else np.asarray(v),
                                   p.detach().numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="lr"):
        tf_task_affinity(keras_model, data, tasks, lr=-1.0)
