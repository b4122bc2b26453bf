"""Chapter 5's driver: the stacked trainer equals fit, the sweep is seeded and tunes on validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mtl_course.torch as mtl
from mtl_course.chapters import ch05_soft_sharing as ss
from mtl_course.metrics import count_parameters

TINY = dict(n_train=40, n_val=20, n_test=30, dim=4, num_sin=2, noise=0.5)


def tiny_splits(seed: int, correlation: float = 0.5):
    return ss.relatedness_splits(correlation, seed, **TINY)


def test_parameter_counts_by_hand():
    # one tower (16, 32, 16, 1): 17*32 + 33*16 + 17*1 = 1089 parameters, two towers 2178
    counts = {}
    for method in ss.METHODS:
        mtl.seed_everything(0)
        counts[method] = count_parameters(ss.build_method(mtl, method, 16, (32, 16), 0.5))
    assert counts["separate"] == counts["separate_wd"] == counts["soft_l2"] == counts["soft_trace"] == 2178
    # hard, same width: trunk 17*32 + 33*16 = 1072, heads 2 * 17 = 34
    assert counts["hard_width"] == 1106
    # hard, same budget: trunk (16, 50, 25): 17*50 + 51*25 = 2125, heads 2 * 26 = 52 -> 2177
    assert counts["hard_budget"] == 2177
    assert counts["cross_stitch"] == 2178 + 2 * 4  # one 2x2 unit after each hidden layer


def test_build_method_values():
    mtl.seed_everything(0)
    model = ss.build_method(mtl, "separate_wd", 4, (3,), 0.25)
    assert model.coupling == "weight_decay" and model.strength == 0.25
    stitch = ss.build_method(mtl, "cross_stitch", 4, (3,), 0.7)
    np.testing.assert_allclose(stitch.units[0].alpha.detach().numpy(), [[0.7, 0.3], [0.3, 0.7]], rtol=1e-6)
    with pytest.raises(ValueError, match="needs a value"):
        ss.build_method(mtl, "soft_l2", 4, (3,))
    with pytest.raises(ValueError, match="unknown method"):
        ss.build_method(mtl, "soft_l1", 4, (3,), 1.0)


@pytest.mark.parametrize("method, values", [("soft_l2", [0.0, 0.1, 1.0]), ("cross_stitch", [0.9, 0.5, 1.0]),
                                            ("separate_wd", [0.3, 0.01, 0.0])])
def test_stacked_training_equals_fit_one_by_one(method, values):
    seeds = [0, 1, 2]
    data = [tiny_splits(s) for s in seeds]
    models = []
    for s, v in zip(seeds, values):
        mtl.seed_everything(s)
        models.append(ss.build_method(mtl, method, 4, (6, 5), v))
    strengths = values if method != "cross_stitch" else None
    fit = ss.fit_stacked(models, data, seeds, strengths, lr=1e-2, batch_size=16, max_epochs=6, patience=10)
    assert fit.epochs == 6 and fit.val_curve.shape == (3, 6)
    tasks = {"task1": "mse", "task2": "mse"}
    for i, (s, v) in enumerate(zip(seeds, values)):
        # the input models are unchanged: retrain each with fit for the best epoch found
        mtl.seed_everything(s)
        model = ss.build_method(mtl, method, 4, (6, 5), v)
        for p, q in zip(model.parameters(), models[i].parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
        history = mtl.fit(model, data[i].train, tasks, epochs=int(fit.best_epoch[i]), lr=1e-2, batch_size=16,
                          seed=s, val_data=data[i].val, progress=False)
        val = np.mean([history.val_metric[t] for t in tasks], axis=0)
        np.testing.assert_allclose(fit.val_curve[i, :len(val)], val, rtol=2e-5)
        test = mtl.evaluate(model, data[i].test, tasks)
        np.testing.assert_allclose(fit.test[i], [test["task1"], test["task2"]], rtol=2e-5)
        assert fit.val[i] == pytest.approx(val[-1], rel=2e-5) and fit.val[i] == pytest.approx(val.min(), rel=2e-5)
        if method != "cross_stitch":  # the unscaled penalty at the best weights
            model.strength = 1.0
            assert fit.penalty[i] == pytest.approx(model.penalty().item(), rel=2e-5)


def test_early_stopping_by_hand_with_a_frozen_model():
    # lr = 0: the weights never move, so epoch 1 is the best and training stops after 1 + patience epochs
    data = [tiny_splits(0)]
    mtl.seed_everything(0)
    model = ss.build_method(mtl, "separate", 4, (6,))
    fit = ss.fit_stacked([model], data, [0], lr=0.0, batch_size=16, max_epochs=50, patience=3)
    assert fit.epochs == 4 and fit.best_epoch.tolist() == [1]
    with torch.no_grad():
        out = model(torch.from_numpy(data[0].test.x))
    expected = [float(((out[t][:, 0] - torch.from_numpy(data[0].test.y[t])) ** 2).mean()) for t in ("task1", "task2")]
    np.testing.assert_allclose(fit.test[0], expected, rtol=1e-6)
    assert np.ptp(fit.val_curve) == 0.0


def test_fit_stacked_rejects_bad_input():
    data = [tiny_splits(0), tiny_splits(1)]
    mtl.seed_everything(0)
    models = [ss.build_method(mtl, "soft_l2", 4, (3,), 0.1) for _ in range(2)]
    with pytest.raises(ValueError, match="same positive length"):
        ss.fit_stacked(models, data[:1], [0, 1])
    with pytest.raises(ValueError, match="one value per model"):
        ss.fit_stacked(models, data, [0, 1], [0.1])
    with pytest.raises(ValueError, match="patience"):
        ss.fit_stacked(models, data, [0, 1], patience=0)
    other = ss.relatedness_splits(0.5, 2, n_train=41, n_val=20, n_test=30, dim=4, num_sin=2, noise=0.5)
    with pytest.raises(ValueError, match="same sizes"):
        ss.fit_stacked(models, [data[0], other], [0, 1])


SWEEP = dict(TINY, hidden=(6, 5), batch_size=16, max_epochs=8, patience=3,
             grids={"soft_l2": (0.01, 1.0), "separate_wd": (0.01, 1.0), "soft_trace": (0.01, 1.0),
                    "cross_stitch": (0.9, 0.5)})


def test_sweep_is_seeded_and_tunes_on_validation():
    first = ss.relatedness_sweep((1.0, 0.0), (0, 1), **SWEEP)
    second = ss.relatedness_sweep((1.0, 0.0), (0, 1), **SWEEP)
    np.testing.assert_array_equal(first.test, second.test)  # same seeds: bit-identical
    np.testing.assert_array_equal(first.chosen, second.chosen)
    assert first.test.shape == (2, len(ss.METHODS), 2) and np.isfinite(first.test).all()
    for j, method in enumerate(first.methods):
        if first.grids[method] is None:
            assert np.isnan(first.chosen[:, j]).all()
            continue
        pick = first.grid_val[method].argmin(-1)  # (correlation, seed)
        np.testing.assert_array_equal(first.chosen[:, j], np.asarray(first.grids[method])[pick])
        np.testing.assert_array_equal(first.test[:, j], np.take_along_axis(first.grid_test[method],
                                                                           pick[..., None], -1)[..., 0])
    verdict = first.verdict(1.0, "soft_l2", "separate_wd")
    assert verdict.names == ("soft L2", "separate + weight decay") and verdict.n == 2
    with pytest.raises(ValueError, match="non-empty"):
        ss.relatedness_sweep((), (0,), **SWEEP)
    with pytest.raises(ValueError, match="unknown"):
        ss.relatedness_sweep((1.0,), (0,), methods=("soft_l1",), **SWEEP)


def test_tf_twin_starts_from_the_same_weights_and_trains_as_long():
    pytest.importorskip("tensorflow")
    settings = {k: v for k, v in SWEEP.items() if k not in ("max_epochs", "patience", "grids")}
    result = ss.relatedness_sweep((0.5,), (0, 1), methods=("separate_wd", "cross_stitch"), **SWEEP)
    rows = ss.tf_twin(result, 0.5, 1, **settings)
    assert list(rows) == ["separate_wd", "cross_stitch"]
    for method, row in rows.items():
        assert row["epochs"] == result.best_epoch[0, result.methods.index(method), 1]
        assert row["torch"] == pytest.approx(row["sweep"], rel=1e-5)
        assert row["tf"] == pytest.approx(row["torch"], rel=2e-2)
