"""The PyTorch package on your own data (issue 19, and issue 14 items 11-14): missing labels,
your own model and loop (``wrap``, ``backward``), data loaders and training hooks, bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from mtl_course import torch as mtl
from mtl_course.core.tasks import Task, labelled_mask
from mtl_course.torch.train import task_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def tabular(n: int = 120, seed: int = 0, missing: float = 0.3):
    """The practitioner's problem: regression, binary and 5-class tasks; ``missing`` of the
    regression labels are NaN."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    price = (x @ np.array([1.0, -0.5, 0.3, 0.0, 0.8, -1.2])).astype(np.float32)
    click = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.float32)
    kind = np.digitize(x[:, 2] + x[:, 3], [-1.0, -0.3, 0.3, 1.0]).astype(np.int64)
    gone = rng.random(n) < missing
    price[gone] = np.nan
    return x, {"price": price, "click": click, "kind": kind}, gone


TASKS = {"price": Task("mse"), "click": Task("bce"), "kind": Task("cross_entropy")}


def hard(seed: int = 0, dtype=torch.float32):
    torch.manual_seed(seed)
    return mtl.HardSharing(mtl.mlp((6, 16)), {"price": mtl.mlp((16, 1)), "click": mtl.mlp((16, 1)),
                                               "kind": mtl.mlp((16, 5))}).to(dtype)


# ------------------------------------------------------------------ missing labels

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loss", ["mse", "bce", "cross_entropy"])
def test_masked_loss_equals_the_loss_on_the_labelled_rows(loss, dtype):
    gen = torch.Generator().manual_seed(0)
    n = 10
    pred = torch.randn(n, 3 if loss == "cross_entropy" else 1, generator=gen, dtype=dtype) * 1e3
    target = (torch.randint(0, 3, (n,), generator=gen) if loss == "cross_entropy"
              else torch.randint(0, 2, (n,), generator=gen).to(dtype))
    mask = torch.tensor([True, False] * 5)
    pred.requires_grad_(True)
    raw = target.clone()  # unlabelled entries as a user's loop passes them: -1 or NaN
    raw[~mask] = -1 if loss == "cross_entropy" else float("nan")
    masked = task_loss("t", Task(loss), pred, raw, mask)
    (g_masked,) = torch.autograd.grad(masked, pred)
    rows = task_loss("t", Task(loss), pred[mask], target[mask])
    (g_rows,) = torch.autograd.grad(rows, pred)
    torch.testing.assert_close(masked, rows)
    torch.testing.assert_close(g_masked, g_rows)
    assert torch.all(g_masked[~mask] == 0) and torch.isfinite(g_masked).all()


def test_a_task_without_labels_in_the_batch_has_loss_zero_and_no_gradient():
    pred = torch.randn(4, 1, requires_grad=True)
    loss = task_loss("t", Task("mse"), pred, torch.zeros(4), torch.zeros(4, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(pred.grad == 0)


def test_masks_come_from_nan_ignore_label_or_a_masked_array():
    assert labelled_mask(Task("mse"), np.array([1.0, np.nan])).tolist() == [True, False]
    assert labelled_mask(Task("cross_entropy", ignore_label=-1), np.array([0, -1, 2])).tolist() == [True, False, True]
    masked = np.ma.MaskedArray([1.0, 2.0, 3.0], mask=[False, True, False])
    assert labelled_mask(Task("mse"), masked).tolist() == [True, False, True]
    assert labelled_mask(Task("mse"), np.ones(3)) is None


def test_nan_and_ignored_labels_train_where_they_failed_before():
    """Before: NaN targets raised "non-finite loss for task(s) ['price']" at the first step and
    -1 class labels torch's "IndexError: Target -1 is out of bounds"."""
    x, y, _ = tabular()
    y["kind"][::4] = -1
    tasks = {**TASKS, "kind": Task("cross_entropy", ignore_label=-1)}
    for method in ("equal", "upgrad"):
        history = mtl.fit(hard(), (x, y), tasks, method=method, epochs=3, batch_size=32, lr=1e-2,
                          progress=False, device="cpu")
        assert all(np.isfinite(v).all() for v in history.train_loss.values())
        assert history.train_loss["price"][-1] < history.train_loss["price"][0]


def test_30_percent_missing_equals_training_on_the_labelled_rows_only():
    """One task, full-batch steps: the masked loss is the loss on the labelled rows, so training
    on the partially labelled data gives the same parameters as training on those rows."""
    x, y, gone = tabular(missing=0.3)
    assert 0.2 < gone.mean() < 0.4

    def run(data):
        torch.manual_seed(1)
        model = mtl.HardSharing(mtl.mlp((6, 8)), {"price": mtl.mlp((8, 1))}).double()
        h = mtl.fit(model, data, {"price": "mse"}, epochs=5, batch_size=1000, lr=1e-2, optimizer="sgd",
                    progress=False, device="cpu")
        return model, h

    masked, h_masked = run((x, {"price": y["price"]}))
    subset, h_subset = run((x[~gone], {"price": y["price"][~gone]}))
    for a, b in zip(masked.parameters(), subset.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_masked.train_loss["price"], h_subset.train_loss["price"], rtol=1e-10)


def test_evaluate_scores_the_labelled_rows_only():
    x, y, gone = tabular()
    model = hard()
    scores, losses = mtl.evaluate(model, (x, y), TASKS, return_losses=True)
    only, only_losses = mtl.evaluate(model, (x[~gone], {"price": y["price"][~gone]}), {"price": "mse"},
                                     return_losses=True)
    assert scores["price"] == pytest.approx(only["price"], rel=1e-6)
    assert losses["price"] == pytest.approx(only_losses["price"], rel=1e-6)
    assert scores.metrics == {"price": "mse", "click": "auc", "kind": "accuracy"}
    assert "price: mse=" in repr(scores)


def test_three_tasks_with_missing_labels_learn():
    x, y, _ = tabular(n=400)
    val = tabular(n=200, seed=1)
    history = mtl.fit(hard(), (x, y), TASKS, epochs=15, batch_size=32, lr=1e-2, val_data=val[:2],
                      progress=False, device="cpu")
    assert history.val_metric["kind"][-1] > 0.5  # 5 classes: chance is about 0.2-0.3
    assert history.val_metric["click"][-1] > 0.9
    assert history.val_loss["price"][-1] < 0.5 * history.val_loss["price"][0]


class _Batches:
    """A re-iterable list of batches, as a DataLoader is."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


def test_a_batch_without_labels_leaves_the_task_out_of_the_aggregation():
    x, y, _ = tabular(n=64)
    first = {k: v[:32].copy() for k, v in y.items()}
    first["price"][:] = np.nan  # no price label in the first batch
    second = {k: v[32:] for k, v in y.items()}
    loader = _Batches([(x[32:], second), (x[:32], first)])  # the unlabelled batch is the epoch's last
    history = mtl.fit(hard(), loader, TASKS, method="mgda", epochs=1, progress=False, device="cpu")
    assert history.weights[0][0] == 0.0 and sum(history.weights[0]) == pytest.approx(1.0)
    assert np.isfinite(history.train_loss["price"][0])


# ---------------------------------------------------------------- bad input (issue 14)

def test_empty_evaluation_data_is_refused_or_empty():
    """Before: predict returned {} and evaluate / fit(val_data=<empty>) raised KeyError."""
    model = hard()
    empty = (np.zeros((0, 6), np.float32), {"price": np.zeros(0), "click": np.zeros(0), "kind": np.zeros(0)})
    out = mtl.predict(model, empty[0])
    assert {k: v.shape for k, v in out.items()} == {"price": (0, 1), "click": (0, 1), "kind": (0, 5)}
    with pytest.raises(ValueError, match="evaluation data is empty"):
        mtl.evaluate(model, empty, TASKS)
    x, y, _ = tabular(n=16)
    with pytest.raises(ValueError, match="validation data is empty"):
        mtl.fit(model, (x, y), TASKS, epochs=1, val_data=empty, progress=False, device="cpu")


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_fit_casts_float64_and_integer_inputs(dtype):
    """Before: "mat1 and mat2 must have the same dtype" for a float64 or int64 x."""
    x, y, _ = tabular(n=32)
    x = (x * 10).astype(dtype)
    history = mtl.fit(hard(), (x, y), TASKS, epochs=1, progress=False, device="cpu")
    assert history.epochs == 1
    assert mtl.predict(hard(), x)["kind"].dtype == np.float32


def test_save_is_atomic(tmp_path, monkeypatch):
    """Before: a write that failed midway (full disk) truncated the previous checkpoint."""
    model = hard()
    path = tmp_path / "ckpt.pt"
    mtl.save(path, model)
    good = path.read_bytes()

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space"):
        mtl.save(path, hard(seed=1))
    monkeypatch.undo()
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["ckpt.pt"]
    mtl.load(path, hard(seed=2))


@pytest.mark.parametrize("task, values, message", [
    ("kind", [0, 1.9, 2], "integer class indices"),
    ("kind", [0, -2, 2], "ignore_label=-2"),
    ("kind", [0, 7, 2], "at least 8 output columns"),
    ("click", [0, 2, 1], r"in \[0, 1\]"),
    ("price", [0, np.inf, 1], "finite"),
])
def test_invalid_labels_are_refused(task, values, message):
    """Before: cross-entropy labels like 1.9 were truncated and BCE targets in {0, 2} trained."""
    x, y, _ = tabular(n=30)
    y = {k: v.astype(np.float64) for k, v in y.items()}
    y[task][:3] = values
    with pytest.raises(ValueError, match=f"task '{task}'.*{message}"):
        mtl.fit(hard(), (x, y), TASKS, epochs=1, progress=False, device="cpu")


def test_custom_loss_can_say_its_kind():
    """Before: a task with a custom loss was always "regression" for uncertainty weighting."""
    ce = Task(loss=lambda p, y: nn.functional.cross_entropy(p, y), metric="accuracy", kind="classification")
    assert ce.kind == "classification" and Task(loss=lambda p, y: p.sum(), metric="mse").kind == "regression"
    with pytest.raises(ValueError, match="kind"):
        Task("mse", kind="classification")
    with pytest.raises(ValueError, match="kind"):
        Task(loss=lambda p, y: p.sum(), metric="mse", kind="ranking")
    method = mtl.train.resolve_method("uncertainty", {"a": ce, "b": Task("mse")})
    assert method.kinds == ("classification", "regression")


def test_your_own_weighting_logs_its_weights():
    """Before: a custom subclass logged [1, 1, 1] unless it set the private ``_weights``."""

    class InverseLoss(mtl.Weighting):
        def compute_weights(self, losses):
            return len(losses) * (1 / losses) / (1 / losses).sum()

    x, y, _ = tabular(n=64)
    history = mtl.fit(hard(), (x, y), TASKS, method=InverseLoss(), epochs=2, progress=False, device="cpu")
    last = np.array(history.weights[-1])
    assert not np.allclose(last, 1.0) and last.sum() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="one weight per task"):
        InverseLoss(tasks=2).weights = [1.0, 2.0, 3.0]


# ------------------------------------------------------------------------ your own model

class TupleNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.trunk = nn.Sequential(nn.Linear(6, 16), nn.ReLU())
        self.heads = nn.ModuleList([nn.Linear(16, 1), nn.Linear(16, 1), nn.Linear(16, 5)])

    def forward(self, x):
        z = self.trunk(x)
        return tuple(head(z) for head in self.heads)


def test_model_interface_is_checked_with_a_message_that_says_what_is_needed():
    """Before: "TypeError: tuple indices must be integers" deep inside fit, and
    "AttributeError: ... 'shared_parameters'" only with an aggregator."""
    x, y, _ = tabular(n=32)
    with pytest.raises(TypeError, match="must return a dict.*wrap"):
        mtl.fit(TupleNet(), (x, y), TASKS, epochs=1, progress=False, device="cpu")

    class DictNet(TupleNet):
        def forward(self, x):
            return dict(zip(TASKS, super().forward(x)))

    mtl.fit(DictNet(), (x, y), TASKS, epochs=1, progress=False, device="cpu")  # a weighting needs no more
    with pytest.raises(TypeError, match="shared_parameters.*wrap"):
        mtl.fit(DictNet(), (x, y), TASKS, method="upgrad", epochs=1, progress=False, device="cpu")


def test_wrap_makes_your_module_a_multi_task_model():
    x, y, _ = tabular(n=64)
    net = TupleNet()
    model = mtl.wrap(net, list(TASKS), shared=net.trunk, heads=dict(zip(TASKS, net.heads)))
    assert [p is q for p, q in zip(model.shared_parameters(), net.trunk.parameters())] == [True] * 2
    assert model.task_parameters("kind")[0] is net.heads[2].weight
    history = mtl.fit(model, (x, y), TASKS, method="upgrad", epochs=2, progress=False, device="cpu")
    assert len(history.weights[-1]) == 3
    default = mtl.wrap(TupleNet(), list(TASKS))  # without shared/heads: every parameter is shared
    assert len(default.shared_parameters()) == 8
    with pytest.raises(ValueError, match="3 outputs for 2 tasks"):
        mtl.wrap(TupleNet(), ["a", "b"])(torch.ones(1, 6))


def test_hard_sharing_accepts_a_module_dict():
    """Before: HardSharing(trunk, nn.ModuleDict(...)) was rejected."""
    heads = nn.ModuleDict({"a": nn.Linear(4, 1), "b": nn.Linear(4, 2)})
    model = mtl.HardSharing(nn.Linear(3, 4), heads)
    assert model.task_names == ("a", "b") and set(model(torch.ones(2, 3))) == {"a", "b"}


def test_mmoe_and_ple_take_output_sizes_tower_sizes_and_tower_modules():
    tower = nn.Sequential(nn.Linear(8, 3), nn.ReLU(), nn.Linear(3, 5))
    for model in (mtl.MMoE(6, 3, 8, {"price": 1, "kind": tower}, tower_hidden={"price": (4, 2)}),
                  mtl.PLE(6, {"price": 1, "kind": tower}, 1, 1, 8, tower_hidden={"price": (4, 2)})):
        out = model(torch.ones(2, 6))
        assert out["kind"].shape == (2, 5) and out["price"].shape == (2, 1)
        assert model.towers["kind"] is tower
        assert [m.out_features for m in model.towers["price"] if isinstance(m, nn.Linear)] == [4, 2, 1]
    with pytest.raises(ValueError, match="tower_hidden must name every task"):
        mtl.MMoE(6, 3, 8, {"price": 1, "kind": 5}, tower_hidden={"price": 4})


def test_a_list_of_names_for_a_5_class_task_fails_early_with_advice():
    x, y, _ = tabular(n=32)
    model = mtl.MMoE(6, 2, 8, list(TASKS))  # every task one output: wrong for "kind"
    with pytest.raises(ValueError, match="'kind'.*at least 5 output columns.*MMoE"):
        mtl.fit(model, (x, y), TASKS, epochs=1, progress=False, device="cpu")


# -------------------------------------------------------------------------- your own loop

def test_backward_fills_shared_and_head_gradients_and_returns_the_weights():
    torch.manual_seed(0)
    trunk, heads = nn.Linear(3, 4), [nn.Linear(4, 1) for _ in range(3)]
    x, y = torch.randn(16, 3), torch.randn(16, 3)

    def losses():
        z = trunk(x)
        return [((h(z).squeeze(1) - y[:, t]) ** 2).mean() for t, h in enumerate(heads)]

    shared = list(trunk.parameters())
    L = losses()
    J = mtl.jacobian(L, shared, retain_graph=True)
    expected_shared = mtl.upgrad(J)
    expected_heads = [torch.autograd.grad(L[t], list(h.parameters()), retain_graph=True) for t, h in enumerate(heads)]
    weights = mtl.backward(losses(), trunk.parameters(), "upgrad")  # a generator of parameters is fine
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, expected_shared)
    for h, grads in zip(heads, expected_heads):
        for p, g in zip(h.parameters(), grads):
            torch.testing.assert_close(p.grad, g)
    torch.testing.assert_close(torch.as_tensor(weights, dtype=J.dtype) @ J, expected_shared, rtol=1e-4, atol=1e-6)
    assert weights.shape == (3,) and np.all(weights > 0)
    # accumulates like loss.backward(); retain_graph=False frees the graph
    before = trunk.weight.grad.clone()
    mtl.backward(losses(), shared, mtl.mean)
    assert not torch.allclose(trunk.weight.grad, before)
    L = losses()
    mtl.backward(L, shared, "mean")
    with pytest.raises(RuntimeError, match="second time"):
        torch.stack(L).sum().backward()
    with pytest.raises(ValueError, match="unknown aggregator"):
        mtl.backward(losses(), shared, "upgrade")


def test_backward_weights_match_the_core_formula():
    J = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    np.testing.assert_allclose(mtl.aggregator_weights(J, mtl.mgda(J)), [0.8, 0.2], atol=1e-12)
    np.testing.assert_allclose(mtl.aggregator_weights(J, mtl.mean(J)), [0.5, 0.5], atol=1e-12)


# ------------------------------------------------------------------- data and training loop

def test_a_dataloader_trains_like_the_arrays():
    x, y, _ = tabular(n=64)
    dataset = torch.utils.data.TensorDataset(torch.as_tensor(x), *(torch.as_tensor(y[k]) for k in TASKS))
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, collate_fn=lambda rows: (
        torch.stack([r[0] for r in rows]), {k: torch.stack([r[i + 1] for r in rows]) for i, k in enumerate(TASKS)}))
    h_loader = mtl.fit(hard(), loader, TASKS, epochs=3, lr=1e-2, val_data=loader, progress=False, device="cpu")
    h_arrays = mtl.fit(hard(), (x, y), TASKS, epochs=3, batch_size=64, lr=1e-2, val_data=(x, y),
                       progress=False, device="cpu")
    for name in TASKS:
        np.testing.assert_allclose(h_loader.train_loss[name], h_arrays.train_loss[name], rtol=1e-5)
        np.testing.assert_allclose(h_loader.val_metric[name], h_arrays.val_metric[name], rtol=1e-5)


def test_scheduler_clipping_callback_and_early_stopping():
    x, y, _ = tabular(n=64)
    model = hard()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    mtl.fit(model, (x, y), TASKS, epochs=3, optimizer=opt, scheduler=sched, progress=False, device="cpu")
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 8)
    built = []
    mtl.fit(hard(), (x, y), TASKS, epochs=2, scheduler=lambda o: built.append(
        torch.optim.lr_scheduler.StepLR(o, 1, 0.5)) or built[-1], progress=False, device="cpu")
    assert built[0].get_last_lr() == [pytest.approx(1e-3 / 4)]

    # clipping: one full-batch SGD step of lr 1 moves the parameters by at most the clip norm
    model = hard()
    start = torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])
    mtl.fit(model, (x, y), TASKS, epochs=1, batch_size=64, optimizer="sgd", lr=1.0, clip_grad_norm=1e-3,
            progress=False, device="cpu")
    moved = torch.cat([p.detach().reshape(-1) for p in model.parameters()]) - start
    assert float(moved.norm()) == pytest.approx(1e-3, rel=1e-4)

    history = mtl.fit(hard(), (x, y), TASKS, epochs=10, callback=lambda epoch, h: epoch == 1,
                      progress=False, device="cpu")
    assert history.epochs == 2

    # early stopping restores the best epoch's weights
    states = []
    val = tabular(n=64, seed=1)[:2]
    model = hard()
    history = mtl.fit(model, (x, y), TASKS, epochs=40, lr=0.05, val_data=val, patience=2, monitor="kind",
                      callback=lambda e, h: states.append({k: v.clone() for k, v in model.state_dict().items()}),
                      progress=False, device="cpu")
    best = history.best_epoch
    metric = history.val_metric["kind"]
    assert best == int(np.argmax(metric)) and history.epochs < 40 and history.epochs - 1 - best == 2
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, states[best][k])
    assert mtl.evaluate(model, val, TASKS)["kind"] == pytest.approx(metric[best])
    with pytest.raises(ValueError, match="needs val_data"):
        mtl.fit(hard(), (x, y), TASKS, epochs=1, patience=1, progress=False, device="cpu")


def test_predict_gives_probabilities_for_classification_tasks():
    x, _, _ = tabular(n=8)
    model = hard()
    raw = mtl.predict(model, x)
    probs = mtl.predict(model, x, tasks=TASKS)
    np.testing.assert_allclose(probs["kind"], torch.softmax(torch.as_tensor(raw["kind"]), 1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(probs["click"], 1 / (1 + np.exp(-raw["click"])), rtol=1e-6)
    np.testing.assert_array_equal(probs["price"], raw["price"])


def test_a_custom_loss_gets_the_labelled_rows_only():
    seen = []

    def loss(prediction, target):
        seen.append(int(target.shape[0]))
        assert not torch.isnan(target).any()
        return ((prediction.squeeze(1) - target) ** 2).mean()

    pred = torch.randn(6, 1)
    target = torch.tensor([1.0, float("nan"), 2.0, float("nan"), 3.0, 4.0])
    task = Task(loss, metric="mse")
    mask = torch.as_tensor(labelled_mask(task, target.numpy()))
    value = task_loss("t", task, pred, target, mask)
    torch.testing.assert_close(value, ((pred.squeeze(1)[mask] - target[mask]) ** 2).mean())
    assert seen == [4]
    assert task_loss("t", task, pred, target, torch.zeros(6, dtype=torch.bool)).item() == 0.0 and seen == [4]
