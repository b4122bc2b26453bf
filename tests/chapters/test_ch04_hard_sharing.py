"""Tests of mtl_course.chapters.ch04_hard_sharing (chapter 4's driver) and of the parameter counts in mtl_course.metrics."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mtl_course.tf as mtl_tf  # before tensorflow
from mtl_course import metrics
from mtl_course import torch as mtl_torch
from mtl_course.data import multi_digits
from mtl_course.chapters import ch04_hard_sharing as S

OUTPUTS = {"a": 3, "b": 2}
FRAMEWORKS = [mtl_torch, mtl_tf]


def test_mlp_parameter_count_by_hand():
    # (3 + 1) * 4 + (4 + 1) * 2
    assert metrics.mlp_parameter_count((3, 4, 2)) == 26
    with pytest.raises(ValueError, match="input and an output"):
        metrics.mlp_parameter_count((3,))


def test_hard_and_separate_counts_by_hand():
    # trunk (5, 4): 24; heads (4, 3): 15 and (4, 2): 10
    assert metrics.hard_sharing_parameter_count(5, (4,), OUTPUTS) == 24 + 15 + 10
    # heads with a hidden layer (4, 2, C): 10 + 3 * 3 = 19 and 10 + 3 * 2 = 16
    assert metrics.hard_sharing_parameter_count(5, (4,), OUTPUTS, head_hidden=(2,)) == 24 + 19 + 16
    assert metrics.separate_parameter_count(5, (4,), OUTPUTS) == (24 + 15) + (24 + 10)


@pytest.mark.parametrize("mtl", FRAMEWORKS, ids=["torch", "tf"])
@pytest.mark.parametrize("kind", S.SHARING_KINDS)
def test_models_have_the_counted_parameters_and_outputs(mtl, kind):
    outputs = {"a": 2, "b": 2}
    mtl.seed_everything(0)
    model = S.build_sharing_model(mtl, kind, 5, (4, 3), outputs, head_hidden=(2,))
    x = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    out = model(torch.from_numpy(x) if mtl is mtl_torch else x)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"a": (7, 2), "b": (7, 2)}
    if kind == "hard":
        expected = metrics.hard_sharing_parameter_count(5, (4, 3), outputs, head_hidden=(2,))
    else:
        expected = metrics.separate_parameter_count(5, (4, 3), outputs)
        if kind == "cross_stitch":
            expected += 2 * 2 * 2  # two 2 x 2 cross-stitch units
    assert metrics.count_parameters(model) == expected


def test_separate_is_uncoupled_soft_sharing():
    model = S.build_sharing_model(mtl_torch, "separate", 5, (4,), {"a": 1, "b": 1})
    assert model.strength == 0.0 and float(model.penalty().detach()) == 0.0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown kind"):
        S.build_sharing_model(mtl_torch, "medium", 5, (4,), OUTPUTS)
    with pytest.raises(ValueError, match="output sizes differ"):
        S.build_sharing_model(mtl_torch, "soft_l2", 5, (4,), OUTPUTS)
    with pytest.raises(ValueError, match="output sizes differ"):
        S.build_sharing_model(mtl_torch, "separate", 5, (4,), OUTPUTS)
    with pytest.raises(TypeError, match="torch.nn.Module or a Keras"):
        metrics.count_parameters(object())
    with pytest.raises(TypeError, match="mtl_course.torch or mtl_course.tf"):
        S.train_and_score(np, None, None, {}, 1)
    with pytest.raises(ValueError, match="outputs\\['a'\\] must be positive"):
        metrics.hard_sharing_parameter_count(5, (4,), {"a": 0})


@settings(max_examples=40, deadline=None)
@given(d_in=st.integers(1, 200), depth=st.integers(1, 3), budget=st.integers(1, 200_000),
       head=st.sampled_from([(), (8,)]))
def test_width_for_budget_is_the_closest_width(d_in, depth, budget, head):
    outputs = {"a": 10, "b": 2}
    width = metrics.width_for_budget(d_in, depth, outputs, budget, head)

    def gap(w):
        return abs(metrics.hard_sharing_parameter_count(d_in, [w] * depth, outputs, head) - budget)

    assert width >= 1
    assert gap(width) <= gap(width + 1)
    if width > 1:
        assert gap(width) <= gap(width - 1)


def test_width_for_budget_by_hand():
    # trunk (10, H) + heads (H, 1) twice: 11 H + 2 (H + 1) = 13 H + 2; 13 * 7 + 2 = 93
    assert metrics.width_for_budget(10, 1, {"a": 1, "b": 1}, 93) == 7
    assert metrics.width_for_budget(10, 1, {"a": 1, "b": 1}, 99) == 7  # 93 is closer than 106


@pytest.mark.parametrize("mtl", FRAMEWORKS, ids=["torch", "tf"])
def test_separate_vs_hard_reports_counts_and_curves(mtl):
    splits = S.flatten_images(multi_digits(seed=0, n_train=40, n_val=20, n_test=20))
    assert splits.train.x.shape == (40, 128)
    outputs = {"left": 10, "parity": 2}
    tasks = {name: "cross_entropy" for name in outputs}
    results = S.separate_vs_hard(mtl, splits, outputs, tasks, (8,), {"hard": (8,)}, epochs=2,
                                 head_hidden=(4,))
    assert set(results) == {"separate", "hard"}
    assert results["separate"]["parameters"] == metrics.separate_parameter_count(128, (8,), outputs, (4,))
    assert results["hard"]["parameters"] == metrics.hard_sharing_parameter_count(128, (8,), outputs, (4,))
    for result in results.values():
        assert set(result["test"]) == set(outputs)
        assert all(0.0 <= v <= 1.0 for v in result["test"].values())
        assert all(len(curve) == 2 for curve in result["val_curve"].values())
    with pytest.raises(ValueError, match="flatten_images"):
        S.separate_vs_hard(mtl, multi_digits(seed=0, n_train=8, n_val=4, n_test=4), outputs, tasks,
                           (8,), {"hard": (8,)}, epochs=1)
