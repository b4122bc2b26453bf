"""The layer-wise Gramian G = J J^T (torch and TF twins), and fit's aggregated step built on it."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from mtl_course.core import aggregation
from mtl_course.core.gramian import GRAM_RULES, gram_rule, linear_layer_costs
from mtl_course.torch import aggregators as torch_agg
from mtl_course.torch.gradients import jacobian
from mtl_course.torch.gramian import LayerGramian, gramian_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


class Net(nn.Module):
    """A trunk mixing every case: Linear (both cost branches), Conv2d, LayerNorm (fallback),
    a Linear called twice (fallback), an in-place ReLU on a Linear output (fallback)."""

    def __init__(self, tasks: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 3, 3, stride=2, bias=False)
        self.wide = nn.Linear(27, 40)        # rows 6 < width: the Gram trick
        self.norm = nn.LayerNorm(40)          # not a Linear/Conv2d: explicit fallback
        self.twice = nn.Linear(40, 40)       # called twice: explicit fallback
        self.inplace = nn.Linear(40, 16)     # its output is changed in place: explicit fallback
        self.narrow = nn.Linear(16, 2, bias=False)  # per-task weight gradients are cheaper
        self.heads = nn.ModuleList(nn.Linear(2, 1) for _ in range(tasks))

    def shared_parameters(self):
        return [p for name, p in self.named_parameters() if not name.startswith("heads")]

    def forward(self, x):
        z = torch.tanh(self.conv(x))
        z = torch.tanh(self.conv2(z)).flatten(1)
        z = self.norm(torch.tanh(self.wide(z)))
        z = torch.tanh(self.twice(torch.tanh(self.twice(z))))
        z = torch.relu_(self.inplace(z))
        z = torch.tanh(self.narrow(z))
        return [head(z).squeeze(1) for head in self.heads]


def losses_of(net, x, y):
    return [((out - y[:, t]) ** 2).mean() for t, out in enumerate(net(x))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layer_gramian_equals_explicit_jacobian_gram(dtype):
    torch.manual_seed(0)
    net = Net().to(dtype)
    x, y = torch.randn(6, 2, 7, 7, dtype=dtype), torch.randn(6, 3, dtype=dtype)
    recorder = LayerGramian(net)
    assert [type(m).__name__ for m in recorder.layers] == ["Conv2d", "Conv2d", "Linear", "Linear", "Linear", "Linear"]
    with recorder:
        losses = losses_of(net, x, y)
    G = recorder.gramian(losses)
    J = jacobian(losses_of(net, x, y), net.shared_parameters())
    expected = J @ J.T
    assert G.dtype == dtype and G.shape == (3, 3)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(G, expected, rtol=tol, atol=tol * float(expected.diagonal().max()))


def test_both_linear_branches_are_taken_and_agree():
    gram, explicit = linear_layer_costs(3, 6, 28, 40)
    assert gram < explicit
    gram, explicit = linear_layer_costs(3, 6, 17, 2)
    assert gram > explicit
    torch.manual_seed(1)
    for rows in (2, 300):  # the Gram trick, then the per-task gradients, on the same layer
        layer = nn.Linear(8, 5).double()
        x = torch.randn(rows, 8, dtype=torch.double)
        with LayerGramian(layer, layer.parameters()) as recorder:
            z = layer(x)
        losses = [z[:, 0].pow(2).mean(), (z[:, 1] * z[:, 2]).mean(), z.sum()]
        J = jacobian(losses, list(layer.parameters()), retain_graph=True)
        torch.testing.assert_close(recorder.gramian(losses), J @ J.T, rtol=1e-12, atol=1e-12)


def test_batch_dims_of_a_linear_layer_are_rows():
    torch.manual_seed(2)
    layer = nn.Linear(4, 3).double()
    x = torch.randn(5, 7, 4, dtype=torch.double)  # (batch, sequence, features)
    with LayerGramian(layer, layer.parameters()) as recorder:
        z = layer(x)
    losses = [z.mean(), z.pow(2).mean()]
    J = jacobian(losses, list(layer.parameters()), retain_graph=True)
    torch.testing.assert_close(recorder.gramian(losses), J @ J.T, rtol=1e-12, atol=1e-12)


def test_badly_scaled_float32_gramian_stays_accurate():
    torch.manual_seed(3)
    net = Net(tasks=2)
    x, y = torch.randn(6, 2, 7, 7), torch.randn(6, 2)
    y[:, 1] *= 1e3  # task gradients 1e3 apart
    with LayerGramian(net) as recorder:
        losses = losses_of(net, x, y)
    G = recorder.gramian(losses).double()
    net64 = net.double()
    J = jacobian(losses_of(net64, x.double(), y.double()), net64.shared_parameters())
    expected = J @ J.T
    np.testing.assert_allclose(np.diag(G), np.diag(expected), rtol=1e-5)
    assert abs(G[0, 1] - expected[0, 1]) <= 1e-5 * float(torch.sqrt(expected[0, 0] * expected[1, 1]))


def test_layer_gramian_rejects_bad_input():
    with pytest.raises(ValueError, match="shared_parameters"):
        LayerGramian(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="empty"):
        LayerGramian(nn.Linear(2, 2), [])
    layer = nn.Linear(2, 2)
    with LayerGramian(layer, layer.parameters()) as recorder:
        z = layer(torch.ones(3, 2))
    with pytest.raises(ValueError, match="NaN or inf"):
        recorder.gramian([z.sum(), z.sum() * float("nan")])


@pytest.mark.parametrize("name", list(GRAM_RULES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gram_rules_give_the_aggregators_direction(name, dtype):
    """w @ J from G alone equals the aggregator on J: the rule is the one the aggregator applies."""
    J = torch.as_tensor(np.random.default_rng(4).standard_normal((4, 30)), dtype=dtype)
    J[3] = -0.5 * J[0] + 1e-3 * J[3]  # nearly dependent rows: rtol matters
    kwargs = {"generator": 11} if name == "pcgrad" else {}
    aggregator = functools.partial(torch_agg.AGGREGATORS[name], **kwargs) if kwargs else torch_agg.AGGREGATORS[name]
    w = gramian_weights(aggregator, J @ J.T)
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(w @ J, torch_agg.AGGREGATORS[name](J, **kwargs), rtol=tol, atol=tol)


def test_gram_rule_recognises_only_the_built_in_aggregators():
    assert gram_rule(torch_agg.upgrad, torch_agg.AGGREGATORS) is GRAM_RULES["upgrad"]
    assert gram_rule(lambda J: J.mean(0), torch_agg.AGGREGATORS) is None
    assert gram_rule(functools.partial(torch_agg.cagrad, c=0.2), torch_agg.AGGREGATORS) is not None
    assert gram_rule(functools.partial(torch_agg.cagrad, 0.2), torch_agg.AGGREGATORS) is None
    G = np.array([[1.0, -0.5], [-0.5, 2.0]])
    np.testing.assert_allclose(gram_rule(functools.partial(torch_agg.cagrad, c=0.2), torch_agg.AGGREGATORS)(G, 1e-12),
                               aggregation.cagrad_weights(G, c=0.2, rtol=1e-12))


# ------------------------------------------------------------ fit's aggregated step


def _fit_problem():
    from mtl_course.data.types import MultiTaskSplit

    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    return MultiTaskSplit(x, {"a": (x @ rng.normal(size=6)).astype(np.float32),
                              "b": (x[:, 0] > 0).astype(np.int64),
                              "c": np.tanh(x @ rng.normal(size=6)).astype(np.float32)})


def _torch_model(kind: str):
    import mtl_course.torch as mtl

    torch.manual_seed(0)
    if kind == "hard":
        return mtl.HardSharing(mtl.mlp([6, 16, 8]), {"a": mtl.mlp([8, 1]), "b": mtl.mlp([8, 2]), "c": mtl.mlp([8, 1])})
    return mtl.MMoE(6, 3, (8,), {"a": 1, "b": 2, "c": 1}, tower_hidden=(4,), num_gates=1 if kind == "omoe" else None)


@pytest.mark.parametrize("kind", ["hard", "mmoe", "omoe"])
@pytest.mark.parametrize("name", list(torch_agg.AGGREGATORS))
def test_fit_gramian_path_equals_the_jacobian_path(kind, name, monkeypatch):
    import mtl_course.torch as mtl
    from mtl_course.torch import train

    data = _fit_problem()
    tasks = {"a": "mse", "b": "cross_entropy", "c": "mse"}
    common = dict(epochs=3, batch_size=16, lr=0.01, seed=4, progress=False, device="cpu")
    calls = []
    real = train._backward_aggregated
    monkeypatch.setattr(train, "_backward_aggregated",
                        lambda *a: calls.append(a[-1] is not None) or real(*a))
    gram_model = _torch_model(kind)
    h_gram = mtl.fit(gram_model, data, tasks, method=name, **common)
    assert calls and all(calls)  # every step took the Gramian path
    calls.clear()
    # the same aggregator hidden in a lambda is not recognised: it gets J
    rng = np.random.default_rng(4)
    function = torch_agg.AGGREGATORS[name]
    wrapped = (lambda J: function(J, generator=rng)) if name == "pcgrad" else (lambda J: function(J))
    jac_model = _torch_model(kind)
    h_jac = mtl.fit(jac_model, data, tasks, method=wrapped, **common)
    assert calls and not any(calls)
    for task in tasks:
        np.testing.assert_allclose(h_gram.train_loss[task], h_jac.train_loss[task], rtol=2e-5)
    for p, q in zip(gram_model.parameters(), jac_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
