"""Tests of mtl_course.chapters.ch04_hard_sharing (chapter 4's driver) and of the parameter counts in mtl_course.metrics."""

import json
import os
import subprocess
import sys

import mtl_course.tf as mtl_tf  # before tensorflow

# isort: split
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_course import metrics
from mtl_course import torch as mtl_torch
from mtl_course.chapters import ch04_hard_sharing as S
from mtl_course.data import multi_digits
from mtl_course.torch.runtime import float64_numpy_init

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
        assert all(e == 2 for e in result["best_epoch"].values())
    with pytest.raises(ValueError, match="flatten_images"):
        S.separate_vs_hard(mtl, multi_digits(seed=0, n_train=8, n_val=4, n_test=4), outputs, tasks,
                           (8,), {"hard": (8,)}, epochs=1)


@pytest.mark.parametrize("mtl", FRAMEWORKS, ids=["torch", "tf"])
def test_early_stopping_scores_the_best_epoch(mtl):
    # with patience, the scored weights are those of the epoch with the best mean validation accuracy:
    # retraining from the same seed for exactly that many epochs gives the same test scores
    splits = S.flatten_images(multi_digits(seed=1, n_train=60, n_val=30, n_test=30))
    outputs = {"left": 10, "parity": 2}
    tasks = {name: "cross_entropy" for name in outputs}
    common = dict(head_hidden=(4,), seed=1, lr=1e-2, batch_size=16)
    stopped = S.separate_vs_hard(mtl, splits, outputs, tasks, (8,), {"hard": (8,)}, epochs=40, patience=3, **common)
    for label, result in stopped.items():
        for name in outputs:
            curve = result["val_curve"][name]
            assert len(curve) < 40  # it stopped early
        if label == "hard":
            best = result["best_epoch"]["left"]
            assert result["best_epoch"] == {"left": best, "parity": best}
            mean = np.mean([result["val_curve"][n] for n in outputs], axis=0)
            assert best == int(np.argmax(mean)) + 1  # the first epoch with the best mean validation accuracy
            assert len(mean) == best + 3  # patience 3: three epochs without improvement, then stop
            again = S.separate_vs_hard(mtl, splits, outputs, tasks, (8,), {"hard": (8,)}, epochs=best,
                                       validate=False, **common)["hard"]
            assert again["test"] == result["test"]
            assert again["best_epoch"] == {"left": best, "parity": best}
        else:
            for name in outputs:
                curve = result["val_curve"][name]
                assert result["best_epoch"][name] == int(np.argmax(curve)) + 1


def test_early_stopping_needs_validation():
    splits = S.flatten_images(multi_digits(seed=0, n_train=20, n_val=10, n_test=10))
    outputs, tasks = {"left": 10}, {"left": "cross_entropy"}
    with pytest.raises(ValueError, match="needs validate=True"):
        S.separate_vs_hard(mtl_torch, splits, outputs, tasks, (4,), {}, epochs=3, patience=2, validate=False)
    with pytest.raises(ValueError, match="patience must be positive"):
        S.separate_vs_hard(mtl_torch, splits, outputs, tasks, (4,), {}, epochs=3, patience=0)


def _fake_runs(separate, shared):
    return {s: {"separate": {"test": dict(zip(("a", "b"), sep))}, "hard": {"test": dict(zip(("a", "b"), sh))}}
            for s, (sep, sh) in enumerate(zip(separate, shared))}


def test_paired_comparison_by_hand():
    # seed 0: a 0.5 -> 0.6 (+20 %), b 0.8 -> 0.8 (0 %): delta_m +10 %; seed 1: +10 % and -20 %: -5 %;
    # seed 2: +20 % and +10 %: +15 %
    runs = _fake_runs([(0.5, 0.8), (0.5, 0.5), (0.5, 0.5)], [(0.6, 0.8), (0.55, 0.4), (0.6, 0.55)])
    result = S.paired_comparison(runs, "hard")
    np.testing.assert_allclose(result["delta_m"], [10.0, -5.0, 15.0], atol=1e-9)
    verdicts = result["verdicts"]
    assert set(verdicts) == {"delta_m", "a", "b"}
    from scipy import stats
    low, high = stats.t.interval(0.95, 2, loc=np.mean([10, -5, 15]), scale=stats.sem([10, -5, 15]))
    assert verdicts["delta_m"].low == pytest.approx(low) and verdicts["delta_m"].high == pytest.approx(high)
    assert verdicts["delta_m"].winner is None and verdicts["delta_m"].wins == 2
    # task a: differences 0.1, 0.05, 0.1: the shared model wins (higher accuracy is better)
    assert verdicts["a"].winner == "hard" and verdicts["a"].wins == 3
    assert verdicts["a"].mean_difference == pytest.approx(0.25 / 3)
    # the reference's own delta_m is 0: a model always better on every task is the winner on delta_m
    better = S.paired_comparison(_fake_runs([(0.5, 0.5)] * 3, [(0.6, 0.6), (0.7, 0.55), (0.55, 0.6)]), "hard")
    assert better["verdicts"]["delta_m"].winner == "hard"
    with pytest.raises(ValueError, match="at least 2 seeds"):
        S.paired_comparison({0: runs[0]}, "hard")
    with pytest.raises(ValueError, match="no results for 'soft'"):
        S.paired_comparison(runs, "soft")


def test_float64_numpy_init_draws_every_linear_layer_with_numpy():
    mtl_torch.seed_everything(0)
    model = S.build_sharing_model(mtl_torch, "hard", 5, (4,), {"a": 3, "b": 2}, head_hidden=(2,))
    copy = float64_numpy_init(model, seed=7)
    params = list(copy.parameters())
    assert all(p.dtype == torch.float64 for p in params)
    # module order: the trunk (5 -> 4), then head a (4 -> 2 -> 3) and head b (4 -> 2 -> 2); a weight, then its bias
    rng = np.random.default_rng(7)
    for param, fan_in in zip(params, (5, 5, 4, 4, 2, 2, 4, 4, 2, 2), strict=True):
        bound = 1.0 / np.sqrt(fan_in)
        np.testing.assert_array_equal(param.detach().numpy(), rng.uniform(-bound, bound, size=tuple(param.shape)))
    # a single-task network of the same seed starts from the same trunk, as after seed_everything(seed)
    single = float64_numpy_init(S.build_sharing_model(mtl_torch, "hard", 5, (4,), {"a": 3}), seed=7)
    assert torch.equal(next(single.parameters()), params[0])
    out = copy(torch.ones(2, 5, dtype=torch.float64))
    assert out["a"].dtype == torch.float64 and out["a"].shape == (2, 3)


_PORTABLE_RUN = """
import hashlib, json
import torch
from mtl_course import torch as mtl
from mtl_course.chapters import ch04_hard_sharing as S
from mtl_course.data import multi_digits

torch.set_num_threads(1)
mtl.seed_everything(0)
from mtl_course.torch.runtime import float64_numpy_init
model = float64_numpy_init(S.build_sharing_model(mtl, "hard", 128, (16,), {"left": 10, "parity": 2}, head_hidden=(8,)), 3)
weights = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
splits = S.flatten_images(multi_digits(seed=3, n_train=120, n_val=60, n_test=60))
outputs = {"left": 10, "parity": 2}
results = S.separate_vs_hard(mtl, splits, outputs, dict.fromkeys(outputs, "cross_entropy"), (16,), {"hard": (16,)},
                             epochs=30, patience=5, head_hidden=(8,), seed=3, lr=1e-2, batch_size=32, float64=True)
print(json.dumps({"weights": weights, "results": {k: [v["test"], v["val_curve"], v["best_epoch"]]
                                                  for k, v in results.items()}}))
"""


def test_float64_runs_are_the_same_under_other_cpu_kernels():
    # PyTorch's generic kernels (ATEN_CPU_CAPABILITY=default) round the last bits of float32 sums and of
    # uniform_ differently from its AVX2/AVX-512 ones; with float64=True the initial weights are the same
    # bits and every accuracy of a run with early stopping is the same as with the kernels this process uses
    runs = []
    for capability in (None, "default"):
        env = dict(os.environ)
        if capability is not None:
            env["ATEN_CPU_CAPABILITY"] = capability
        run = subprocess.run([sys.executable, "-c", _PORTABLE_RUN], env=env, capture_output=True, text=True,
                             timeout=300, check=True)
        runs.append(run.stdout.strip().splitlines()[-1])
    assert runs[0] == runs[1]
    results = json.loads(runs[0])["results"]
    # models stopped early, so the comparison covers the stopping epochs too
    assert any(len(curve) < 30 for _, curves, _ in results.values() for curve in curves.values())


def test_float64_is_for_pytorch():
    splits = S.flatten_images(multi_digits(seed=0, n_train=20, n_val=10, n_test=10))
    with pytest.raises(ValueError, match="float64=True is for mtl_course.torch"):
        S.separate_vs_hard(mtl_tf, splits, {"left": 10}, {"left": "cross_entropy"}, (4,), {}, epochs=1, float64=True)
