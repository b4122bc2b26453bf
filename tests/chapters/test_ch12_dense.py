"""Dense prediction (chapter 12): the torch and tf models, their losses, the metrics, the experiment."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import jaccard_score

from mtl_course.chapters.ch12_dense import (
    HIGHER_IS_BETTER,
    dense_experiment,
    dense_scores,
    depth_abs_rel,
    depth_rmse,
    mean_iou,
    pixel_accuracy,
)
from mtl_course.data.shapes import shapes_scenes
from mtl_course.torch import dense as tdense
from mtl_course.torch.runtime import seed_everything

# ---- metrics, hand-checked -------------------------------------------------------------------

def test_metrics_hand_computed():
    true = np.array([[0, 0, 1], [1, 2, 2]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    assert pixel_accuracy(pred, true) == pytest.approx(4 / 6)
    # class 0: inter 1, union 3; class 1: inter 2, union 3; class 2: inter 1, union 2.
    assert mean_iou(pred, true, 3) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    # class 3 never occurs: left out of the mean, not counted as 0.
    assert mean_iou(pred, true, 4) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    d_true = np.array([1.0, 2.0, 4.0])
    d_pred = np.array([1.5, 2.0, 3.0])
    assert depth_abs_rel(d_pred, d_true) == pytest.approx((0.5 + 0 + 0.25) / 3)
    assert depth_rmse(d_pred, d_true) == pytest.approx(np.sqrt((0.25 + 1) / 3))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_mean_iou_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 4, size=(3, 5, 5))
    pred = rng.integers(0, 4, size=(3, 5, 5))
    labels = np.union1d(np.unique(true), np.unique(pred))
    expected = jaccard_score(true.ravel(), pred.ravel(), labels=labels, average="macro")
    assert mean_iou(pred, true, 4) == pytest.approx(expected)
    assert mean_iou(true, true, 4) == 1.0


def test_metrics_bad_input():
    with pytest.raises(ValueError, match="shape"):
        pixel_accuracy(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="outside"):
        mean_iou(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(TypeError, match="integer"):
        mean_iou(np.array([0.0, 1.0]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="positive"):
        depth_abs_rel(np.array([1.0]), np.array([0.0]))
    with pytest.raises(ValueError, match="NaN"):
        depth_rmse(np.array([np.nan]), np.array([1.0]))
    with pytest.raises(ValueError, match="empty"):
        depth_rmse(np.array([]), np.array([]))


# ---- the torch model ---------------------------------------------------------------------------

def test_torch_model_shapes_and_sharing():
    seed_everything(0)
    model = tdense.dense_prediction_model(1, 4, width=4)
    out = model(torch.zeros(2, 1, 16, 12))
    assert out["segmentation"].shape == (2, 4, 16, 12) and out["depth"].shape == (2, 1, 16, 12)
    # Encoder: 1*4*9+4 + 4*8*9+8; each decoder: 8*4*9+4 + 4*4*9+4 + 4*out+out.
    encoder = 40 + 296
    decoder = 292 + 148
    assert sum(p.numel() for p in model.shared_parameters()) == encoder
    assert sum(p.numel() for p in model.task_parameters("segmentation")) == decoder + 4 * 4 + 4
    assert sum(p.numel() for p in model.task_parameters("depth")) == decoder + 4 + 1
    single = tdense.dense_prediction_model(1, 4, width=4, tasks=("depth",))
    assert single.task_names == ("depth",)


def test_torch_segmentation_loss_hand_computed():
    logits = torch.tensor([[[[2.0]], [[0.0]]]])  # (1, 2, 1, 1)
    expected = -np.log(np.exp(0.0) / (np.exp(2.0) + np.exp(0.0)))
    assert float(tdense.segmentation_loss(logits, torch.tensor([[[1]]]))) == pytest.approx(expected)
    with pytest.raises(ValueError, match="logits"):
        tdense.segmentation_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("kwargs, match", [
    ({"in_channels": 0}, "in_channels"), ({"num_classes": 1}, "num_classes"),
    ({"width": True}, "width"), ({"tasks": ("normals",)}, "unknown"), ({"tasks": ()}, "empty"),
])
def test_dense_model_bad_arguments(kwargs, match):
    args = {"in_channels": 1, "num_classes": 3, "width": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        tdense.dense_prediction_model(**args)


# ---- parity torch vs tf -------------------------------------------------------------------------

def test_parity_torch_tf_with_copied_weights():
    import tensorflow as tf

    from mtl_course.tf import dense as kdense
    from mtl_course.tf.runtime import seed_everything as tf_seed

    seed_everything(1)
    tf_seed(1)
    t_model = tdense.dense_prediction_model(1, 3, width=4)
    k_model = kdense.copy_dense_torch_to_tf(t_model, kdense.dense_prediction_model(1, 3, width=4))
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 12)).astype(np.float32)
    with torch.no_grad():
        t_out = t_model(torch.as_tensor(x))
    k_out = k_model(x)
    for name in ("segmentation", "depth"):
        assert tuple(k_out[name].shape) == tuple(t_out[name].shape)
        np.testing.assert_allclose(k_out[name].numpy(), t_out[name].numpy(), rtol=1e-4, atol=1e-5)
    labels = np.random.default_rng(1).integers(0, 3, size=(2, 8, 12))
    t_loss = float(tdense.segmentation_loss(t_out["segmentation"], torch.as_tensor(labels)))
    k_loss = float(kdense.segmentation_loss(k_out["segmentation"], tf.constant(labels)))
    assert k_loss == pytest.approx(t_loss, rel=1e-5)
    assert t_loss == pytest.approx(float(F.cross_entropy(t_out["segmentation"], torch.as_tensor(labels))))
    with pytest.raises(ValueError, match="task names"):
        kdense.copy_dense_torch_to_tf(tdense.dense_prediction_model(1, 3, 4, tasks=("depth",)), k_model)
    with pytest.raises(ValueError, match="logits"):
        kdense.segmentation_loss(tf.zeros((2, 3)), tf.zeros((2,), tf.int64))


# ---- the experiment ------------------------------------------------------------------------------

def test_dense_scores_and_delta_m_structure():
    split = shapes_scenes(n_train=2, n_val=1, n_test=1, size=16, seed=0).train
    logits = np.eye(4, dtype=np.float32)[split.y["segmentation"]].transpose(0, 3, 1, 2)  # perfect
    scores = dense_scores({"segmentation": logits, "depth": split.y["depth"][:, None]}, split, 4)
    assert scores == {"segmentation": {"mIoU": 1.0, "pixel_acc": 1.0}, "depth": {"abs_rel": 0.0, "rmse": 0.0}}
    assert set(HIGHER_IS_BETTER) == set(scores)
    with pytest.raises(ValueError, match="no dense task"):
        dense_scores({"other": logits}, split, 4)


def test_dense_experiment_runs_and_is_deterministic():
    from mtl_course import torch as mtl

    splits = shapes_scenes(n_train=16, n_val=1, n_test=4, size=16, seed=0)
    runs = [dense_experiment(mtl, splits, 4, width=2, epochs=1, batch_size=8) for _ in range(2)]
    assert runs[0]["scores"] == runs[1]["scores"]
    assert runs[0]["parameters"]["multi_task"] < runs[0]["parameters"]["single_task"]
    assert set(runs[0]["models"]) == {"multi_task", "segmentation", "depth"}
    assert np.isfinite(runs[0]["delta_m"])


def test_dense_experiment_stops_early_and_keeps_each_networks_best_validation_epoch():
    from mtl_course import torch as mtl
    from mtl_course.chapters.ch12_dense import dense_tasks

    splits = shapes_scenes(n_train=16, n_val=8, n_test=4, size=16, seed=0)
    run = dense_experiment(mtl, splits, 4, width=2, epochs=30, batch_size=8, lr=0.3, patience=2)  # lr too large: stops
    for name, history in run["histories"].items():
        total = np.sum([history.val_loss[t] for t in history.task_names], axis=0)
        assert history.best_epoch == int(np.argmin(total)) and history.epochs < 30
        assert history.epochs - 1 - history.best_epoch == 2  # stopped after 2 epochs without improvement
        tasks = ("segmentation", "depth") if name == "multi_task" else (name,)
        _, losses = mtl.evaluate(run["models"][name], splits.val, dense_tasks(mtl.dense, 4, tasks), return_losses=True)
        assert sum(losses.values()) == pytest.approx(total[history.best_epoch], rel=1e-5)  # the best epoch's weights
    without = dense_experiment(mtl, splits, 4, width=2, epochs=3, batch_size=8)
    assert all(h.epochs == 3 and h.best_epoch is None for h in without["histories"].values())


def test_dense_experiment_runs_in_tensorflow():
    from mtl_course import tf as mtl_tf

    splits = shapes_scenes(n_train=8, n_val=1, n_test=2, size=16, seed=0)
    run = dense_experiment(mtl_tf, splits, 4, width=2, epochs=1, batch_size=8)
    assert set(run["scores"]["multi_task"]) == {"segmentation", "depth"}
    assert np.isfinite(run["delta_m"])


def test_twins_have_the_same_signatures():
    import inspect

    from mtl_course.tf import dense as kdense

    for name in ("dense_prediction_model", "segmentation_loss"):
        t_params = inspect.signature(getattr(tdense, name)).parameters.values()
        k_params = inspect.signature(getattr(kdense, name)).parameters.values()
        assert [(p.name, p.default) for p in t_params] == [(p.name, p.default) for p in k_params]


def test_dense_experiment_uses_the_framework_modules_dense_attribute():
    import types

    from mtl_course import torch as mtl

    # a framework module is used through its attributes, not re-imported by name: a wrapper with another
    # __name__ works (the old importlib lookup of f"{mtl.__name__}.dense" failed on it) ...
    wrapped = types.SimpleNamespace(__name__="wrapped", dense=mtl.dense, seed_everything=mtl.seed_everything,
                                    fit=mtl.fit, predict=mtl.predict)
    splits = shapes_scenes(n_train=8, n_val=1, n_test=2, size=16, seed=0)
    run = dense_experiment(wrapped, splits, 4, width=2, epochs=1, batch_size=8)
    assert run["scores"] == dense_experiment(mtl, splits, 4, width=2, epochs=1, batch_size=8)["scores"]
    # ... and a module without one is refused with a message that names the problem
    with pytest.raises(TypeError, match="dense submodule"):
        dense_experiment(types.SimpleNamespace(__name__="numpy"), splits, 4)


# ---- every seed at once ---------------------------------------------------------------------------

def _initial_models(tasks, seeds, width=4):
    models = []
    for s in seeds:
        seed_everything(s)
        models.append(tdense.dense_prediction_model(1, 4, width, tasks=tasks))
    return models


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("tasks", [("segmentation", "depth"), ("depth",)])
def test_fit_dense_stacked_equals_fit_one_seed_at_a_time(tasks):
    from mtl_course import torch as mtl
    from mtl_course.chapters.ch12_dense import dense_tasks, fit_dense_stacked

    # a large learning rate on 16 scenes: the seeds stop early, at different epochs (dropped from the stack)
    splits = shapes_scenes(n_train=16, n_val=8, n_test=8, size=16, seed=0)
    seeds = (0, 1, 2, 3)
    models = _initial_models(tasks, seeds)
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in models]
    stacked = fit_dense_stacked(models, splits, seeds, lr=0.1, batch_size=8, max_epochs=30, patience=2)
    assert len(set(stacked.epochs.tolist())) > 1  # the seeds stopped at different epochs
    assert stacked.val_loss.shape == (len(seeds), stacked.epochs.max(), len(tasks))
    for i, s in enumerate(seeds):
        assert all(torch.equal(v, models[i].state_dict()[k]) for k, v in before[i].items())  # left unchanged
        seed_everything(s)
        model = tdense.dense_prediction_model(1, 4, 4, tasks=tasks)
        history = mtl.fit(model, splits.train, dense_tasks(mtl.dense, 4, tasks), epochs=30, batch_size=8, lr=0.1,
                          val_data=splits.val, seed=s, progress=False, patience=2)
        assert (stacked.best_epoch[i], stacked.epochs[i]) == (history.best_epoch + 1, history.epochs)
        curve = np.array([history.val_loss[t] for t in tasks]).T
        np.testing.assert_allclose(stacked.val_loss[i, :history.epochs], curve, rtol=1e-4, atol=1e-5)
        assert np.isnan(stacked.val_loss[i, history.epochs:]).all()
        one, many = mtl.predict(model, splits.test.x), mtl.predict(stacked.models[i], splits.test.x)
        for t in tasks:  # the kept weights are the best epoch's, as fit's
            np.testing.assert_allclose(many[t], one[t], rtol=1e-3, atol=1e-3)


def test_fit_dense_stacked_bad_input():
    from mtl_course.chapters.ch12_dense import fit_dense_stacked

    splits = shapes_scenes(n_train=8, n_val=2, n_test=2, size=16, seed=0)
    models = _initial_models(("depth",), (0, 1))
    with pytest.raises(ValueError, match="same positive length"):
        fit_dense_stacked(models, splits, (0,))
    with pytest.raises(ValueError, match="same tasks"):
        fit_dense_stacked([models[0], *_initial_models(("segmentation",), (1,))], splits, (0, 1))
    with pytest.raises(ValueError, match="lr"):
        fit_dense_stacked(models, splits, (0, 1), lr=0.0)
    with pytest.raises(ValueError, match="patience"):
        fit_dense_stacked(models, splits, (0, 1), patience=0)
    odd = [tdense.dense_prediction_model(1, 4, 2, tasks=("depth",)) for _ in range(2)]
    for m in odd:
        m.trunk[1] = torch.nn.Tanh()
    with pytest.raises(TypeError, match="Tanh"):
        fit_dense_stacked(odd, splits, (0, 1), max_epochs=1)


@pytest.mark.usefixtures("one_torch_thread")
def test_dense_seeds_scores_every_seed_of_every_network():
    from mtl_course.chapters.ch12_dense import NETWORKS, dense_seeds
    from mtl_course.metrics import delta_m

    splits = shapes_scenes(n_train=16, n_val=4, n_test=4, size=16, seed=0)
    rates = {"multi_task": 1e-2, "segmentation": 3e-3, "depth": 1e-2}
    run = dense_seeds(splits, 4, seeds=(3, 5), width=2, lr=rates, batch_size=8, max_epochs=2)
    assert run["seeds"] == (3, 5) and set(run["fits"]) == set(NETWORKS)
    assert all(fit.epochs.tolist() == [2, 2] for fit in run["fits"].values())
    for i in range(2):
        multi = {t: {m: run["scores"]["multi_task"][t][m][i] for m in HIGHER_IS_BETTER[t]} for t in HIGHER_IS_BETTER}
        single = {t: {m: run["scores"]["single_task"][t][m][i] for m in HIGHER_IS_BETTER[t]} for t in HIGHER_IS_BETTER}
        assert run["delta_m"][i] == pytest.approx(delta_m(multi, single, HIGHER_IS_BETTER))
        depth = run["fits"]["depth"].models[i]
        expected = dense_scores(mtl_predict(depth, splits.test.x), splits.test, 4)["depth"]
        assert single["depth"] == expected
    with pytest.raises(ValueError, match="one rate for each"):
        dense_seeds(splits, 4, seeds=(0, 1), lr={"multi_task": 1e-2})


def mtl_predict(model, x):
    from mtl_course.torch.train import predict

    return predict(model, x)
