"""The PyTorch training loop: fit with weightings and aggregators, evaluate, save/load, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_course.core.tasks import History, Task, aligned_shape, batch_indices
from mtl_course.data.types import MultiTaskSplit
from mtl_course.metrics import accuracy, mse
from mtl_course.torch.models import HardSharing, SoftSharing, mlp
from mtl_course.torch.train import evaluate, fit, load, predict, save
from mtl_course.torch.weighting import RLW, UncertaintyWeighting

TASKS = {"r": Task("mse"), "c": Task("cross_entropy")}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def problem(n: int = 96, seed: int = 0) -> MultiTaskSplit:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return MultiTaskSplit(x, {"r": (x @ np.array([1.0, -2.0, 0.5, 0.0])).astype(np.float32),
                              "c": (x[:, 0] + x[:, 1] > 0).astype(np.int64)})


def hard_model(seed: int = 0) -> HardSharing:
    torch.manual_seed(seed)
    return HardSharing(mlp([4, 16, 8]), {"r": mlp([8, 1]), "c": mlp([8, 2])})


def without_time(history: History) -> dict:
    record = history.to_dict()
    record.pop("epoch_time")
    return record


@pytest.mark.parametrize("method", ["equal", "uncertainty", "gradnorm", "dwa", "rlw", "mgda", "pcgrad"])
def test_fit_decreases_the_training_loss(method):
    data = problem()
    history = fit(hard_model(), data, TASKS, method=method, epochs=6, batch_size=32, lr=1e-2,
                  progress=False, device="cpu")
    assert history.epochs == 6
    for name in TASKS:
        assert history.train_loss[name][-1] < history.train_loss[name][0]
    assert all(len(w) == 2 for w in history.weights)
    if method == "mgda":  # the logged aggregator weights: a convex combination
        assert all(min(w) >= -1e-9 and abs(sum(w) - 1) < 1e-6 for w in history.weights)


def test_history_structure_and_validation_metrics_match_evaluate():
    data = problem()
    val = problem(40, seed=1)
    model = hard_model()
    history = fit(model, (data.x, data.y), TASKS, epochs=2, val_data=val, progress=False, device="cpu")
    record = history.to_dict()
    assert set(record) == {"task_names", "train_loss", "val_loss", "val_metric", "weights", "epoch_time",
                           "metric_names", "best_epoch"}
    assert record["metric_names"] == {"r": "mse", "c": "accuracy"} and record["best_epoch"] is None
    assert record["task_names"] == ["r", "c"]
    metrics, losses = evaluate(model, val, TASKS, return_losses=True)
    assert record["val_metric"]["r"][-1] == metrics["r"]
    assert record["val_loss"]["c"][-1] == losses["c"]
    out = predict(model, val.x, batch_size=7)
    assert out["r"].shape == (40, 1) and out["c"].shape == (40, 2)
    assert metrics["r"] == pytest.approx(mse(out["r"][:, 0], val.y["r"]))
    assert metrics["c"] == pytest.approx(accuracy(out["c"], val.y["c"]))
    assert losses["r"] == pytest.approx(metrics["r"], rel=1e-5)  # the mse loss is the mse metric


def test_same_seed_gives_identical_history_and_other_seed_differs():
    data = problem()
    runs = [without_time(fit(hard_model(), data, TASKS, method="rlw", epochs=3, batch_size=16,
                             seed=seed, progress=False, device="cpu")) for seed in (4, 4, 5)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_aggregator_mean_equals_equal_weighting_up_to_the_task_count():
    # mean(J) = (1/T) sum_t grad L_t on the shared params; with SGD this is the equal-weighting
    # step at lr/T on the shared trunk, and the same step on each head.
    from mtl_course.torch.aggregators import mean

    data = problem(32)
    a, b = hard_model(), hard_model()
    fit(a, data, TASKS, method=mean, epochs=1, batch_size=32, optimizer="sgd", lr=0.1, progress=False,
        device="cpu")
    opt = torch.optim.SGD([{"params": b.trunk.parameters(), "lr": 0.05}, {"params": b.heads.parameters()}],
                          lr=0.1)
    fit(b, data, TASKS, method="equal", epochs=1, batch_size=32, optimizer=opt, progress=False, device="cpu")
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_soft_sharing_penalty_pulls_the_towers_together():
    data = problem(64)

    def distance(model):
        pairs = zip(model.towers["r"].parameters(), model.towers["c"].parameters())
        return sum(float((p - q).detach().pow(2).sum()) for p, q in pairs)

    def towers(strength):
        torch.manual_seed(0)
        return SoftSharing({"r": mlp([4, 8, 1]), "c": mlp([4, 8, 1])}, strength=strength)

    loose, tight = towers(0.0), towers(10.0)
    start = distance(loose)
    for model in (loose, tight):
        fit(model, data, {"r": Task("mse"), "c": Task("bce")}, epochs=3,
            optimizer="sgd", lr=0.01, progress=False, device="cpu")
    assert distance(tight) < 0.5 * start
    assert distance(loose) > 0.9 * start


def test_save_load_round_trip_is_exact_and_training_continues_identically(tmp_path):
    data = problem()
    model = hard_model()
    method = UncertaintyWeighting(["r", "c"], kinds=["regression", "classification"])
    opt = torch.optim.Adam(list(model.parameters()) + list(method.parameters()), lr=1e-2)
    fit(model, data, TASKS, method=method, epochs=2, optimizer=opt, progress=False, device="cpu")
    path = tmp_path / "checkpoint.pt"
    save(path, model, method, opt)

    fresh = hard_model(seed=1)
    fresh_method = UncertaintyWeighting(["r", "c"], kinds=["regression", "classification"])
    fresh_opt = torch.optim.Adam(list(fresh.parameters()) + list(fresh_method.parameters()), lr=1e-2)
    load(path, fresh, fresh_method, fresh_opt)
    x = torch.as_tensor(data.x)
    with torch.no_grad():
        for name, out in model(x).items():
            torch.testing.assert_close(fresh(x)[name], out, rtol=0, atol=0)
    np.testing.assert_array_equal(fresh_method.weights, method.weights)

    again = fit(model, data, TASKS, method=method, epochs=2, optimizer=opt, progress=False, device="cpu")
    resumed = fit(fresh, data, TASKS, method=fresh_method, epochs=2, optimizer=fresh_opt, progress=False,
                  device="cpu")
    assert without_time(again) == without_time(resumed)


def test_rlw_state_survives_save_and_load(tmp_path):
    model, method = hard_model(), RLW(generator=0)
    fit(model, problem(), TASKS, method=method, epochs=1, progress=False, device="cpu")
    save(tmp_path / "rlw.pt", model, method)
    fresh_model, fresh_method = hard_model(), RLW(generator=1)
    load(tmp_path / "rlw.pt", fresh_model, fresh_method)
    np.testing.assert_array_equal(fresh_method.weights, method.weights)
    assert fresh_method.generator.standard_normal() == method.generator.standard_normal()


def test_progress_bar_is_silenced(capsys):
    fit(hard_model(), problem(32), TASKS, epochs=1, progress=False, device="cpu")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_bar_shows_losses(capsys, monkeypatch):
    import tqdm

    monkeypatch.setattr(tqdm.tqdm, "__init__", _with_disable(tqdm.tqdm.__init__))
    fit(hard_model(), problem(32), TASKS, epochs=1, progress=True, device="cpu")
    err = capsys.readouterr().err
    assert "r=" in err and "c=" in err


def _with_disable(init):
    # The test environment may set TQDM_DISABLE=1; force the bar on to see its postfix.
    def wrapped(self, *args, **kwargs):
        kwargs["disable"] = False
        init(self, *args, **kwargs)
    return wrapped


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"method": "nope"}, ValueError, "unknown method"),
        ({"method": 3}, TypeError, "method must be"),
        ({"tasks": {"r": Task("mse"), "zz": Task("mse")}}, ValueError, "no targets"),
        ({"tasks": {}}, ValueError, "non-empty"),
        ({"epochs": -1}, ValueError, "epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"optimizer": "lbfgs"}, ValueError, "optimizer"),
        ({"method": UncertaintyWeighting(["r", "c"]), "optimizer": "own"}, ValueError, "must also own"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error, message):
    model = hard_model()
    args = {"tasks": TASKS, "epochs": 1, "progress": False, "device": "cpu", **kwargs}
    if args.get("optimizer") == "own":
        args["optimizer"] = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(error, match=message):
        fit(model, problem(16), **args)


def test_fit_names_the_task_with_a_non_finite_loss():
    data = problem(16)
    data.y["r"][3] = np.inf  # (NaN marks a missing label; inf is refused)
    with pytest.raises(ValueError, match="'r'.*finite"):
        fit(hard_model(), data, TASKS, epochs=1, progress=False, device="cpu")
    for method in ("equal", "mgda"):
        model = hard_model()
        with torch.no_grad():
            model.heads["r"][0].bias.fill_(float("nan"))
        with pytest.raises(ValueError, match="'r'"):
            fit(model, problem(16), TASKS, method=method, epochs=1, progress=False, device="cpu")


def test_task_spec_and_shape_rules():
    assert Task("mse").metric == "mse" and Task("mse").higher_is_better is False
    assert Task("cross_entropy").metric == "accuracy" and Task("cross_entropy").higher_is_better
    assert Task("bce").kind == "classification" and Task("mse").kind == "regression"
    with pytest.raises(ValueError, match="unknown loss"):
        Task("hinge")
    with pytest.raises(ValueError, match="higher_is_better"):
        Task("mse", metric=lambda p, y: 0.0)
    with pytest.raises(ValueError, match="explicit metric"):
        Task(lambda p, y: p.sum())
    assert aligned_shape("t", (5, 1), (5,), "mse") == (5,)
    with pytest.raises(ValueError, match="does not match"):
        aligned_shape("t", (5, 2), (5,), "mse")
    with pytest.raises(ValueError, match="cross_entropy"):
        aligned_shape("t", (5,), (5,), "cross_entropy")
    batches = list(batch_indices(10, 4, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(10))


def test_fit_rejects_empty_training_data():
    empty = MultiTaskSplit(np.zeros((0, 4), np.float32), {"r": np.zeros(0, np.float32), "c": np.zeros(0, np.int64)})
    with pytest.raises(ValueError, match="empty"):
        fit(hard_model(), empty, TASKS, epochs=1, progress=False, device="cpu")


@pytest.mark.cuda
def test_fit_and_evaluate_on_cuda():
    model = hard_model()
    history = fit(model, problem(), TASKS, method="uncertainty", epochs=2, val_data=problem(20, 1), progress=False,
                  device="cuda")
    assert next(model.parameters()).is_cuda
    assert np.isfinite(history.val_metric["c"][-1])


def test_tqdm_disable_environment_variable_silences_the_bar():
    import os
    import subprocess
    import sys

    script = (
        "import numpy as np, torch\n"
        "from mtl_course.core.tasks import Task\n"
        "from mtl_course.torch.models import HardSharing, mlp\n"
        "from mtl_course.torch.train import fit\n"
        "x = np.zeros((8, 2), np.float32)\n"
        "model = HardSharing(mlp([2, 3]), {'r': mlp([3, 1])})\n"
        "fit(model, (x, {'r': np.zeros(8, np.float32)}), {'r': Task('mse')}, epochs=2, device='cpu')\n"
        "print('ok')\n"
    )
    env = {**os.environ, "TQDM_DISABLE": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n" and done.stderr == ""


def test_fit_with_pcgrad_by_name_is_reproducible_from_its_seed():
    # Three tasks with conflicting targets: PCGrad's random task order matters.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    data = MultiTaskSplit(x, {"a": x[:, 0], "b": -x[:, 0] + x[:, 1], "c": x[:, 2] - x[:, 1]})
    tasks = {name: Task("mse") for name in "abc"}

    def run(seed: int) -> dict:
        torch.manual_seed(0)
        model = HardSharing(mlp([4, 8]), {name: mlp([8, 1]) for name in "abc"})
        return without_time(fit(model, data, tasks, method="pcgrad", epochs=3, batch_size=16,
                                lr=1e-1, seed=seed, progress=False, device="cpu"))

    assert run(0) == run(0)
    assert run(0) != run(1)
