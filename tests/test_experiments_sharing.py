"""Tests of mtl_course.experiments.sharing (the drivers of chapters 4 and 5)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mtl_course.tf as mtl_tf  # before tensorflow
from mtl_course import torch as mtl_torch
from mtl_course.data import multi_digits
from mtl_course.experiments import sharing as S

OUTPUTS = {"a": 3, "b": 2}
FRAMEWORKS = [mtl_torch, mtl_tf]


def test_mlp_parameter_count_by_hand():
    # (3 + 1) * 4 + (4 + 1) * 2
    assert S.mlp_parameter_count((3, 4, 2)) == 26
    with pytest.raises(ValueError, match="input and an output"):
        S.mlp_parameter_count((3,))


def test_hard_and_separate_counts_by_hand():
    # trunk (5, 4): 24; heads (4, 3): 15 and (4, 2): 10
    assert S.hard_sharing_parameter_count(5, (4,), OUTPUTS) == 24 + 15 + 10
    # heads with a hidden layer (4, 2, C): 10 + 3 * 3 = 19 and 10 + 3 * 2 = 16
    assert S.hard_sharing_parameter_count(5, (4,), OUTPUTS, head_hidden=(2,)) == 24 + 19 + 16
    assert S.separate_parameter_count(5, (4,), OUTPUTS) == (24 + 15) + (24 + 10)


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
        expected = S.hard_sharing_parameter_count(5, (4, 3), outputs, head_hidden=(2,))
    else:
        expected = S.separate_parameter_count(5, (4, 3), outputs)
        if kind == "cross_stitch":
            expected += 2 * 2 * 2  # two 2 x 2 cross-stitch units
    assert S.count_parameters(model) == expected


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
        S.count_parameters(object())
    with pytest.raises(TypeError, match="mtl_course.torch or mtl_course.tf"):
        S.train_and_score(np, None, None, {}, 1)
    with pytest.raises(ValueError, match="outputs\\['a'\\] must be positive"):
        S.hard_sharing_parameter_count(5, (4,), {"a": 0})
    with pytest.raises(ValueError, match="coupling"):
        S.coupling_sweep(mtl_torch, [0.0], 0.5, coupling="hard")


@settings(max_examples=40, deadline=None)
@given(d_in=st.integers(1, 200), depth=st.integers(1, 3), budget=st.integers(1, 200_000),
       head=st.sampled_from([(), (8,)]))
def test_width_for_budget_is_the_closest_width(d_in, depth, budget, head):
    outputs = {"a": 10, "b": 2}
    width = S.width_for_budget(d_in, depth, outputs, budget, head)

    def gap(w):
        return abs(S.hard_sharing_parameter_count(d_in, [w] * depth, outputs, head) - budget)

    assert width >= 1
    assert gap(width) <= gap(width + 1)
    if width > 1:
        assert gap(width) <= gap(width - 1)


def test_width_for_budget_by_hand():
    # trunk (10, H) + heads (H, 1) twice: 11 H + 2 (H + 1) = 13 H + 2; 13 * 7 + 2 = 93
    assert S.width_for_budget(10, 1, {"a": 1, "b": 1}, 93) == 7
    assert S.width_for_budget(10, 1, {"a": 1, "b": 1}, 99) == 7  # 93 is closer than 106


def test_mmoe_splits_sizes_and_controlled_correlation():
    high = S.mmoe_splits(0.9, 3, 20, 5, 7, dim=4, num_sin=2)
    low = S.mmoe_splits(0.1, 3, 20, 5, 7, dim=4, num_sin=2)
    assert [len(s) for s in high] == [20, 5, 7]
    for a, b in zip(high, low):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y["task1"], b.y["task1"])
        assert not np.allclose(a.y["task2"], b.y["task2"])


def test_tower_distance_is_the_root_of_the_unscaled_l2_penalty():
    torch.manual_seed(0)
    model = S.build_sharing_model(mtl_torch, "soft_l2", 5, (4,), {"a": 1, "b": 1}, strength=0.5)
    assert S.tower_distance(model) == pytest.approx(float(torch.sqrt(model.penalty().detach() / 0.5)), rel=1e-6)
    three = S.build_sharing_model(mtl_torch, "soft_l2", 5, (4,), {"a": 1, "b": 1, "c": 1})
    with pytest.raises(ValueError, match="exactly two"):
        S.tower_distance(three)


@pytest.mark.parametrize("mtl", FRAMEWORKS, ids=["torch", "tf"])
def test_relatedness_sweep_rows_are_finite_and_reproducible(mtl):
    kwargs = dict(kinds=("separate", "hard"), seeds=(0,), n_train=32, n_val=8, n_test=16, dim=4,
                  hidden=(4,), epochs=2, batch_size=16, num_sin=2)
    rows = S.relatedness_sweep(mtl, [1.0, 0.0], **kwargs)
    assert [(r["correlation"], r["kind"]) for r in rows] == [(1.0, "separate"), (1.0, "hard"),
                                                             (0.0, "separate"), (0.0, "hard")]
    for r in rows:
        assert np.isfinite([r["task1"], r["task2"]]).all()
        assert r["mean"] == pytest.approx((r["task1"] + r["task2"]) / 2)
    assert S.relatedness_sweep(mtl, [1.0, 0.0], **kwargs) == rows  # seeded: bit-identical


@pytest.mark.parametrize("mtl", FRAMEWORKS, ids=["torch", "tf"])
def test_strong_coupling_pulls_the_towers_together(mtl):
    rows = S.coupling_sweep(mtl, [0.0, 10.0], 0.5, seeds=(0,), n_train=64, n_val=8, n_test=16, dim=4,
                            hidden=(4,), epochs=10, batch_size=16, lr=3e-2, num_sin=2)
    free, coupled = rows
    assert coupled["distance"] < 0.25 * free["distance"]


@pytest.mark.parametrize("mtl", FRAMEWORKS, ids=["torch", "tf"])
def test_separate_vs_hard_reports_counts_and_curves(mtl):
    splits = S.flatten_images(multi_digits(seed=0, n_train=40, n_val=20, n_test=20))
    assert splits.train.x.shape == (40, 128)
    outputs = {"left": 10, "parity": 2}
    tasks = {name: "cross_entropy" for name in outputs}
    results = S.separate_vs_hard(mtl, splits, outputs, tasks, (8,), {"hard": (8,)}, epochs=2,
                                 head_hidden=(4,))
    assert set(results) == {"separate", "hard"}
    assert results["separate"]["parameters"] == S.separate_parameter_count(128, (8,), outputs, (4,))
    assert results["hard"]["parameters"] == S.hard_sharing_parameter_count(128, (8,), outputs, (4,))
    for result in results.values():
        assert set(result["test"]) == set(outputs)
        assert all(0.0 <= v <= 1.0 for v in result["test"].values())
        assert all(len(curve) == 2 for curve in result["val_curve"].values())
    with pytest.raises(ValueError, match="flatten_images"):
        S.separate_vs_hard(mtl, multi_digits(seed=0, n_train=8, n_val=4, n_test=4), outputs, tasks,
                           (8,), {"hard": (8,)}, epochs=1)
