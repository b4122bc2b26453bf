"""Tests of mtl_course.chapters.ch06_experts (chapter 6's experiments), both frameworks.

Training runs here are tiny (a few steps on a few hundred rows): they check
shapes, determinism, parity and the bookkeeping, not the chapter's findings.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mtl_course.tf as mtl_tf  # first: it quiets TensorFlow before TensorFlow is imported
import mtl_course.torch as mtl
from mtl_course.chapters import ch06_experts as ex
from mtl_course.data.types import MultiTaskSplit
from mtl_course.parity import copy_torch_to_tf
from mtl_course.torch import models as tm

TINY = dict(n_train=200, n_val=100, n_test=100, dim=6, max_epochs=3, batch_size=100)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- models


def test_moe_model_kinds_and_sizes():
    shared = ex.moe_model(mtl, "shared-bottom", 16, num_experts=4, expert_hidden=8, tower_hidden=8)
    omoe = ex.moe_model(mtl, "OMoE", 16, num_experts=4, expert_hidden=8, tower_hidden=8)
    mmoe = ex.moe_model(mtl, "MMoE", 16, num_experts=4, expert_hidden=8, tower_hidden=8)
    ple = ex.moe_model(mtl, "PLE", 16, num_experts=4, expert_hidden=8, tower_hidden=8)
    assert isinstance(shared, tm.HardSharing) and isinstance(mmoe, tm.MMoE) and isinstance(ple, tm.PLE)
    # hand counts: bottom 16*32+32, towers 2*(32*8+8 + 8+1)
    assert n_params(shared) == 544 + 2 * 273
    # experts 4*(16*8+8), gates (16*4+4) each, towers 2*(8*8+8 + 8+1)
    assert n_params(omoe) == 544 + 68 + 162
    assert n_params(mmoe) == 544 + 2 * 68 + 162
    assert len(omoe.gate_layers) == 1 and len(mmoe.gate_layers) == 2
    # PLE: one expert per task + two shared = 4 experts, gates over 3 experts each
    assert len(ple.levels[0].shared_experts) == 2
    assert all(len(e) == 1 for e in ple.levels[0].task_experts.values())


def test_moe_model_tf_twin_has_same_size():
    for kind in ("shared-bottom", "OMoE", "MMoE", "PLE"):
        torch_model = ex.moe_model(mtl, kind, 6)
        tf_model = ex.moe_model(mtl_tf, kind, 6)
        tf_model(np.zeros((1, 6), np.float32))
        assert sum(int(np.prod(v.shape)) for v in tf_model.trainable_variables) == n_params(torch_model)


def test_moe_model_rejects_unknown_names():
    with pytest.raises(ValueError, match="kind"):
        ex.moe_model(mtl, "moe", 4)
    for bad in ("torch", np, None):  # the framework is the module mtl_course.torch or mtl_course.tf
        with pytest.raises(TypeError, match="mtl must be the module"):
            ex.moe_model(bad, "MMoE", 4)


# ---------------------------------------------------------------- data and scores


def test_synthetic_splits_standardizes_with_training_statistics():
    train, val, test = ex.synthetic_splits(0.5, seed=3, n_train=300, n_val=40, n_test=50, dim=5)
    assert len(train) == 300 and len(val) == 40 and len(test) == 50 and train.x.shape == (300, 5)
    for t in ("task1", "task2"):
        assert abs(float(train.y[t].mean())) < 1e-5
        assert float(train.y[t].std()) == pytest.approx(1.0, abs=1e-5)
        assert train.y[t].dtype == np.float32
        assert abs(float(val.y[t].mean())) > 1e-4  # standardized with the training statistics, not its own
    again, _, _ = ex.synthetic_splits(0.5, seed=3, n_train=300, n_val=40, n_test=50, dim=5)
    np.testing.assert_array_equal(train.y["task2"], again.y["task2"])
    assert not np.any(np.isin(val.x[:, 0], train.x[:, 0])) and not np.any(np.isin(test.x[:, 0], val.x[:, 0]))
    with pytest.raises(ValueError, match="at least 2 rows"):
        ex.synthetic_splits(0.5, seed=3, n_train=300, n_val=0, n_test=50)


def test_relative_mse_hand_values():
    test = MultiTaskSplit(np.zeros((4, 1), np.float32), {"a": np.array([0.0, 1, 2, 3]), "b": np.array([1.0, 1, 3, 3])})
    mean_prediction = {"a": np.full((4, 1), 1.5), "b": np.full(4, 2.0)}
    assert ex.relative_mse(mean_prediction, test) == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
    # errors (1, -1, 0, 0) on b: MSE 0.5, var 1
    assert ex.relative_mse({"a": test.y["a"], "b": np.array([2.0, 0, 3, 3])}, test) == {"a": 0.0, "b": 0.5}


def test_relative_mse_rejects_bad_input():
    test = MultiTaskSplit(np.zeros((3, 1), np.float32), {"a": np.array([1.0, 2, 3])})
    with pytest.raises(ValueError, match="no predictions"):
        ex.relative_mse({"b": np.zeros(3)}, test)
    with pytest.raises(ValueError, match="2 predictions for 3 targets"):
        ex.relative_mse({"a": np.zeros(2)}, test)
    constant = MultiTaskSplit(np.zeros((3, 1), np.float32), {"a": np.ones(3)})
    with pytest.raises(ValueError, match="constant"):
        ex.relative_mse({"a": np.ones(3)}, constant)


# ---------------------------------------------------------------- gates


def test_mean_gate_weights_sum_to_one_and_omoe_gates_agree():
    x = np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32)
    torch.manual_seed(0)
    mmoe = ex.moe_model(mtl, "MMoE", 6)
    omoe = ex.moe_model(mtl, "OMoE", 6)
    ple = ex.moe_model(mtl, "PLE", 6)
    for model, experts in ((mmoe, 4), (omoe, 4), (ple, 3)):
        weights = ex.mean_gate_weights(model, x)
        assert set(weights) == {"task1", "task2"}
        for w in weights.values():
            assert w.shape == (experts,) and w.sum() == pytest.approx(1.0) and np.all(w > 0)
    omoe_weights = ex.mean_gate_weights(omoe, x)
    np.testing.assert_array_equal(omoe_weights["task1"], omoe_weights["task2"])
    mmoe_weights = ex.mean_gate_weights(mmoe, x)
    assert not np.allclose(mmoe_weights["task1"], mmoe_weights["task2"])


def test_mean_gate_weights_torch_tf_parity():
    x = np.random.default_rng(1).normal(size=(16, 6)).astype(np.float32)
    torch.manual_seed(1)
    for kind in ("MMoE", "PLE"):
        torch_model = ex.moe_model(mtl, kind, 6)
        tf_model = ex.moe_model(mtl_tf, kind, 6)
        tf_model(x[:1])
        copy_torch_to_tf(torch_model, tf_model)
        a, b = ex.mean_gate_weights(torch_model, x), ex.mean_gate_weights(tf_model, x)
        for t in a:
            np.testing.assert_allclose(a[t], b[t], atol=1e-6)


def test_gate_weights_rows_and_mean():
    x = np.random.default_rng(2).normal(size=(10, 6)).astype(np.float32)
    torch.manual_seed(2)
    model = ex.moe_model(mtl, "MMoE", 6)
    weights = ex.gate_weights(model, x)
    assert all(w.shape == (10, 4) for w in weights.values())
    np.testing.assert_allclose(weights["task1"].sum(axis=1), 1.0, atol=1e-6)
    mean = ex.mean_gate_weights(model, x)
    np.testing.assert_allclose(mean["task2"], weights["task2"].mean(axis=0))


def test_gate_disagreement_hand_values():
    a = np.array([[1.0, 0.0], [0.5, 0.5]])
    b = np.array([[0.0, 1.0], [0.5, 0.5]])
    assert ex.gate_disagreement({"a": a, "b": b}) == pytest.approx(0.5)  # distances 1 and 0
    assert ex.gate_disagreement({"a": a, "b": a}) == 0.0
    # three tasks: pairs (a,b)=0.5, (a,c)=0, (b,c)=0.5
    assert ex.gate_disagreement({"a": a, "b": b, "c": a}) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="two tasks"):
        ex.gate_disagreement({"a": a})
    with pytest.raises(ValueError, match="same experts"):
        ex.gate_disagreement({"a": a, "b": np.ones((2, 3)) / 3})


def test_mean_gate_weights_needs_gates():
    with pytest.raises(TypeError, match="gates"):
        ex.mean_gate_weights(ex.moe_model(mtl, "shared-bottom", 6), np.zeros((2, 6), np.float32))


# ---------------------------------------------------------------- sweep


def test_correlation_sweep_shapes_and_determinism():
    args = dict(correlations=(1.0, 0.0), seeds=(0, 1), models=("shared-bottom", "MMoE"), **TINY)
    first = ex.correlation_sweep(mtl, **args)
    second = ex.correlation_sweep(mtl, **args)
    assert first.relative_mse.shape == (2, 2, 2, 2) and first.val_curve.shape[:3] == (2, 2, 2)
    np.testing.assert_array_equal(first.relative_mse, second.relative_mse)
    assert np.all(np.isfinite(first.relative_mse)) and np.all(first.relative_mse > 0)
    assert first.mean().shape == (2, 2) and first.std().shape == (2, 2)
    np.testing.assert_allclose(first.mean(), first.relative_mse.mean(axis=(2, 3)))
    assert np.all((first.best_epoch >= 1) & (first.best_epoch <= 3)) and first.max_epochs == 3
    table = first.table()
    assert "shared-bottom" in table and "MMoE" in table and "corr 1.00" in table
    np.testing.assert_array_equal(first.scores("MMoE", 0.0), first.task_mean()[1, 1])
    with pytest.raises(ValueError, match="unknown model"):
        first.scores("PLE", 0.0)
    with pytest.raises(ValueError, match="unknown correlation"):
        first.scores("MMoE", 0.5)


def test_correlation_sweep_verdicts_pair_the_seeds():
    relative = np.zeros((2, 2, 3, 2))
    relative[0, 0] = [[0.10, 0.10], [0.20, 0.20], [0.30, 0.30]]  # model a at p = 1
    relative[1, 0] = [[0.05, 0.05], [0.16, 0.16], [0.24, 0.24]]  # model b: better on every seed
    relative[0, 1] = relative[0, 0] + 0.1  # model a at p = 0: worse by 0.1 on every seed
    relative[1, 1] = relative[1, 0]
    sweep = ex.CorrelationSweep(("a", "b"), (1.0, 0.0), (0, 1, 2), relative, np.zeros((2, 2, 3, 1)),
                                np.ones((2, 2, 3), int), 1)
    verdict = sweep.verdict("b", "a", 1.0)
    assert verdict.winner == "b" and verdict.wins == 3
    assert verdict.mean_difference == pytest.approx(-0.05)
    drift = sweep.drift_verdict("a", 1.0, 0.0)
    assert drift.winner == "a at p = 1" and drift.low == pytest.approx(-0.1) == drift.high
    assert sweep.drift_verdict("b", 1.0, 0.0).winner is None  # the same scores: no difference


def test_correlation_sweep_runs_match_single_runs():
    # the stacked (vmap) trainer of the torch sweep equals train_on_synthetic, run by run
    sweep = ex.correlation_sweep(mtl, correlations=(0.5,), seeds=(2, 3), models=("OMoE", "PLE"), **TINY)
    for m, kind in enumerate(("OMoE", "PLE")):
        for j, seed in enumerate((2, 3)):
            model, history, test = ex.train_on_synthetic(mtl, kind, 0.5, seed, patience=10, **TINY)
            scores = ex.relative_mse(mtl.predict(model, test.x), test)
            np.testing.assert_allclose(sweep.relative_mse[m, 0, j], [scores["task1"], scores["task2"]], rtol=1e-9)
            assert sweep.best_epoch[m, 0, j] == history.best_epoch + 1


def test_torch_runs_train_in_float64_unless_told_otherwise():
    model, _, test = ex.train_on_synthetic(mtl, "MMoE", 0.0, 0, **TINY)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    weights = ex.gate_weights(model, test.x)  # float32 inputs are cast to the model's dtype
    np.testing.assert_allclose(weights["task1"].sum(axis=1), 1.0, atol=1e-12)
    single, _, _ = ex.train_on_synthetic(mtl, "MMoE", 0.0, 0, float64=False, **TINY)
    assert all(p.dtype == torch.float32 for p in single.parameters())
    tf_model, _, _ = ex.train_on_synthetic(mtl_tf, "MMoE", 0.0, 0, **TINY)  # the Keras twin stays float32
    assert all(v.dtype == "float32" for v in tf_model.trainable_variables)


def test_torch_weights_are_drawn_by_numpy_within_the_default_bounds():
    # numpy's generator gives the same numbers on every CPU; torch's uniform_ differs in the last bits
    model, _, _ = ex.train_on_synthetic(mtl, "shared-bottom", 0.0, 7, **{**TINY, "max_epochs": 1})
    fresh = ex._precision(mtl, ex.moe_model(mtl, "shared-bottom", TINY["dim"]), True, 7)
    rng = np.random.default_rng(7)
    linears = [m for m in fresh.modules() if isinstance(m, torch.nn.Linear)]
    first = linears[0]
    bound = 1 / np.sqrt(first.in_features)
    np.testing.assert_array_equal(first.weight.detach().numpy(), rng.uniform(-bound, bound, size=tuple(first.weight.shape)))
    for layer in linears:
        b = 1 / np.sqrt(layer.in_features)
        assert float(layer.weight.detach().abs().max()) <= b and float(layer.bias.detach().abs().max()) <= b
    again = ex._precision(mtl, ex.moe_model(mtl, "shared-bottom", TINY["dim"]), True, 7)
    for a, b in zip(fresh.parameters(), again.parameters()):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(fresh.parameters(), model.parameters()))  # it was trained


def test_correlation_sweep_tf_matches_torch_bookkeeping():
    sweep = ex.correlation_sweep(mtl_tf, correlations=(0.0,), seeds=(0,), models=("MMoE",), n_train=100, n_val=50,
                                 n_test=50, dim=6, max_epochs=2, batch_size=100)
    assert sweep.relative_mse.shape == (1, 1, 1, 2) and np.all(np.isfinite(sweep.relative_mse))
    assert sweep.val_curve.shape == (1, 1, 1, 2) and 1 <= sweep.best_epoch[0, 0, 0] <= 2


@pytest.mark.parametrize("bad", [dict(correlations=()), dict(seeds=()), dict(models=("CNN",))])
def test_correlation_sweep_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        ex.correlation_sweep(mtl, **bad)
    with pytest.raises(TypeError, match="mtl must be the module"):
        ex.correlation_sweep("torch")


def test_gate_study_omoe_never_disagrees_and_mmoe_does():
    study = ex.gate_study(mtl, correlations=(1.0, 0.0), seeds=(0, 1), kind="MMoE", **TINY)
    assert study.disagreement.shape == (2, 2) and np.all((study.disagreement > 0) & (study.disagreement < 1))
    assert set(study.examples) == {(1.0, 0), (0.0, 0)}
    omoe = ex.gate_study(mtl, correlations=(0.0,), seeds=(0, 1), kind="OMoE", **TINY)
    assert np.all(omoe.disagreement == 0.0)
    verdict = study.verdict(1.0, 0.0)
    assert verdict.names == ("p = 0", "p = 1") and not verdict.lower_is_better
    with pytest.raises(ValueError, match="kind"):
        ex.gate_study(mtl, kind="PLE")


def test_train_twins_torch_and_tf_agree():
    results = ex.train_twins("MMoE", 0.0, seed=0, epochs=3, batch_size=100, n_train=200, n_test=100, dim=6)
    for t in ("task1", "task2"):
        np.testing.assert_allclose(results["torch"]["relative_mse"][t], results["tf"]["relative_mse"][t], rtol=1e-3)
        np.testing.assert_allclose(results["torch"]["gates"][t], results["tf"]["gates"][t], atol=1e-4)


# ---------------------------------------------------------------- ESMM


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_esmm_vs_click_only_bookkeeping(framework):
    result = ex.esmm_vs_click_only(mtl if framework == "torch" else mtl_tf, seeds=(0, 1), n_train=1500, n_val=500,
                                   n_test=1000, max_epochs=2)
    assert result.cvr_auc.shape == (2, 2) and result.mean_cvr.shape == (2, 2) and result.best_epoch.shape == (2, 2)
    assert np.all((result.best_epoch >= 0) & (result.best_epoch <= 1))
    np.testing.assert_allclose(result.calibration_error(), np.abs(result.mean_cvr - result.true_mean_cvr[:, None]))
    assert result.auc_verdict().names == ("ESMM", "click-only") and not result.auc_verdict().lower_is_better
    assert np.all((result.cvr_auc > 0) & (result.cvr_auc < 1)) and np.all((result.mean_cvr > 0) & (result.mean_cvr < 1))
    assert 0.7 < result.oracle_auc[0] < 1  # the true pCVR ranks the latent labels well
    # default overlap 0.6 > 0: clicked impressions convert more often than average
    assert result.clicked_mean_cvr[0] > result.true_mean_cvr[0] + 0.05


def test_esmm_vs_click_only_no_selection_bias_without_overlap():
    result = ex.esmm_vs_click_only(mtl, seeds=(0,), n_train=4000, n_test=500, max_epochs=1, overlap=0.0)
    assert result.clicked_mean_cvr[0] == pytest.approx(result.true_mean_cvr[0], abs=0.03)
