"""Tests of the PyTorch multi-task models (mtl_course.torch.models)."""

from __future__ import annotations

import decimal
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist
from torch import nn

from mtl_course.core.model_config import cross_stitch_init
from mtl_course.torch.models import (
    ESMM,
    PLE,
    CrossStitch,
    CrossStitchUnit,
    HardSharing,
    MMoE,
    SoftSharing,
    ctcvr_logit,
    mlp,
)

D = 5  # input features


def x_batch(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed))


def linear_with(weight, bias) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return layer


def small_models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "hard": HardSharing(mlp([D, 6], output_activation=True), {"a": mlp([6, 3, 1]), "b": mlp([6, 2])}),
        "soft": SoftSharing({"a": mlp([D, 4, 1]), "b": mlp([D, 4, 1])}, strength=0.1),
        "cross_stitch": CrossStitch(
            {n: [mlp([D, 4], output_activation=True), mlp([4, 4], output_activation=True), mlp([4, 3])] for n in "abc"},
            heads={n: nn.Linear(3, 1) for n in "abc"},
        ),
        "mmoe": MMoE(D, 3, [6, 4], ["a", "b", "c"], tower_hidden=[3]),
        "omoe": MMoE(D, 3, [4], ["a", "b"], num_gates=1),
        "ple1": PLE(D, {"a": 2, "b": 1}, 2, 1, [4]),
        "ple3": PLE(D, ["a", "b", "c"], 1, 2, [4], num_levels=3, tower_hidden=[3]),
        "esmm": ESMM(D, [6], [3]),
    }


# --------------------------------------------------------------------------- mlp


def test_mlp_layout():
    net = mlp([3, 4, 2], activation="tanh")
    assert [type(m) for m in net] == [nn.Linear, nn.Tanh, nn.Linear]
    net = mlp([3, 4, 2], output_activation=True)
    assert [type(m) for m in net] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU]
    assert [type(m) for m in mlp([3, 4], activation=None, output_activation=True)] == [nn.Linear]


@pytest.mark.parametrize(
    "sizes, error", [([3], ValueError), ([3, 0], ValueError), ([3, 2.5], TypeError), ("34", TypeError)]
)
def test_mlp_rejects_bad_sizes(sizes, error):
    with pytest.raises(error):
        mlp(sizes)


def test_mlp_rejects_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation"):
        mlp([2, 2], activation="swishy")


# ------------------------------------------------------------------ hard sharing


def test_hard_sharing_heads_branch_from_the_trunk():
    model = small_models()["hard"]
    x = x_batch()
    z = model.trunk(x)
    out = model(x)
    assert list(out) == ["a", "b"] and model.task_names == ("a", "b")
    torch.testing.assert_close(out["a"], model.heads["a"](z), rtol=0, atol=0)
    torch.testing.assert_close(out["b"], model.heads["b"](z), rtol=0, atol=0)
    torch.testing.assert_close(model.representation(x), z, rtol=0, atol=0)
    assert model.heads_forward(z).keys() == out.keys()


@pytest.mark.parametrize(
    "heads, error, match",
    [
        ({}, ValueError, "empty"),
        ([nn.Linear(2, 1)], TypeError, "mapping"),
        ({"a": lambda z: z}, TypeError, "nn.Module"),
        ({"a.b": nn.Linear(2, 1)}, ValueError, "'.'"),
        ({"": nn.Linear(2, 1)}, TypeError, "non-empty"),
    ],
)
def test_hard_sharing_validates_heads(heads, error, match):
    with pytest.raises(error, match=match):
        HardSharing(nn.Linear(2, 2), heads)


def test_unknown_task_name_is_refused():
    with pytest.raises(ValueError, match="unknown task 'z'"):
        small_models()["hard"].task_parameters("z")


# ------------------------------------------------------------------ soft sharing


def test_l2_penalty_hand_value():
    # weights: ||(1,2) - (0,0)||^2 = 5; biases: (0.5 - (-0.5))^2 = 1; times strength 0.1
    towers = {"a": linear_with([[1.0, 2.0]], [0.5]), "b": linear_with([[0.0, 0.0]], [-0.5])}
    model = SoftSharing(towers, coupling="l2", strength=0.1)
    assert model.penalty().item() == pytest.approx(0.6, rel=1e-6)


def test_l2_penalty_three_towers_sums_all_pairs():
    # scalar towers 0, 1, 3 (no bias): pairs 1 + 9 + 4 = 14
    towers = {n: nn.Linear(1, 1, bias=False) for n in "abc"}
    for value, tower in zip([0.0, 1.0, 3.0], towers.values()):
        nn.init.constant_(tower.weight, value)
    assert SoftSharing(towers, strength=1.0).penalty().item() == pytest.approx(14.0)


def test_trace_norm_penalty_hand_value():
    # weight rows (3,0) and (0,4): singular values 3 and 4 -> 7; biases (3, 4) as a column -> 5
    towers = {"a": linear_with([[3.0, 0.0]], [3.0]), "b": linear_with([[0.0, 4.0]], [4.0])}
    model = SoftSharing(towers, coupling="trace_norm", strength=0.5)
    assert model.penalty().item() == pytest.approx(6.0, rel=1e-6)


def test_weight_decay_penalty_hand_value():
    # no coupling: 1 + 4 + 0.25 (tower a) + 0.25 (tower b) = 5.5, times strength 0.1
    towers = {"a": linear_with([[1.0, 2.0]], [0.5]), "b": linear_with([[0.0, 0.0]], [-0.5])}
    model = SoftSharing(towers, coupling="weight_decay", strength=0.1)
    assert model.penalty().item() == pytest.approx(0.55, rel=1e-6)


def test_weight_decay_gradient_is_each_towers_own_pull_to_zero():
    # the gradient of strength * ||theta_t||^2 is 2 * strength * theta_t: no term from the other tower
    torch.manual_seed(3)
    towers = {n: mlp([D, 3, 1]) for n in "ab"}
    model = SoftSharing(towers, coupling="weight_decay", strength=0.25)
    model.penalty().backward()
    for p in model.parameters():
        torch.testing.assert_close(p.grad, 0.5 * p.detach())


@pytest.mark.parametrize("coupling", ["l2", "trace_norm", "weight_decay"])
def test_penalty_matches_scipy_and_numpy(coupling):
    torch.manual_seed(1)
    towers = {n: mlp([D, 4, 2]) for n in "abc"}
    model = SoftSharing(towers, coupling=coupling, strength=0.3)
    expected = 0.0
    for position in zip(*[t.parameters() for t in towers.values()]):
        m = np.stack([p.detach().double().numpy().ravel() for p in position])
        expected += {"l2": lambda m=m: pdist(m, "sqeuclidean").sum(), "trace_norm": lambda m=m: np.linalg.norm(m, "nuc"),
                     "weight_decay": lambda m=m: np.sum(m ** 2)}[coupling]()
    assert model.penalty().item() == pytest.approx(0.3 * expected, rel=1e-5)


def test_strength_zero_trains_like_separate_models():
    torch.manual_seed(2)
    towers = {n: mlp([D, 3, 1]) for n in "ab"}
    separate = {n: mlp([D, 3, 1]) for n in "ab"}
    for n in "ab":
        separate[n].load_state_dict(towers[n].state_dict())
    model = SoftSharing(towers, strength=0.0)
    x, y = x_batch(8), torch.randn(8, 1, generator=torch.Generator().manual_seed(3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opts = {n: torch.optim.SGD(separate[n].parameters(), lr=0.1) for n in "ab"}
    for _ in range(3):
        out = model(x)
        opt.zero_grad()
        (sum((out[n] - y).pow(2).mean() for n in "ab") + model.penalty()).backward()
        opt.step()
        for n in "ab":
            opts[n].zero_grad()
            (separate[n](x) - y).pow(2).mean().backward()
            opts[n].step()
    assert model.penalty().item() == 0.0
    for n in "ab":
        for p, q in zip(model.towers[n].parameters(), separate[n].parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("coupling", ["l2", "trace_norm"])
def test_zero_strength_penalty_can_be_differentiated(coupling):
    model = SoftSharing({n: mlp([D, 3, 1]) for n in "ab"}, coupling=coupling, strength=0.0)
    penalty = model.penalty()
    penalty.backward()  # a training loop may call backward on the penalty alone
    assert penalty.item() == 0.0
    assert all(torch.count_nonzero(p.grad) == 0 for p in model.parameters())


@pytest.mark.parametrize("coupling", ["l2", "trace_norm"])
def test_penalty_pulls_towers_together(coupling):
    torch.manual_seed(4)
    model = SoftSharing({n: mlp([D, 3, 1]) for n in "ab"}, coupling=coupling, strength=1.0)
    distance = SoftSharing(dict(model.towers), strength=1.0).penalty  # L2 distance as the yardstick
    before = distance().item()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        model.penalty().backward()
        opt.step()
    assert distance().item() < 0.5 * before


def test_trace_norm_gradient_is_finite_for_identical_towers():
    torch.manual_seed(5)
    tower = mlp([D, 3, 1])
    twin = mlp([D, 3, 1])
    twin.load_state_dict(tower.state_dict())
    model = SoftSharing({"a": tower, "b": twin}, coupling="trace_norm", strength=1.0)
    model.penalty().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"strength": -1.0}, ValueError, ">= 0"),
        ({"strength": float("nan")}, ValueError, "finite"),
        ({"strength": "big"}, TypeError, "number"),
        ({"coupling": "cosine"}, ValueError, "unknown coupling"),
    ],
)
def test_soft_sharing_validates_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        SoftSharing({"a": nn.Linear(2, 1), "b": nn.Linear(2, 1)}, **kwargs)


def test_soft_sharing_refuses_different_architectures():
    with pytest.raises(ValueError, match="identical"):
        SoftSharing({"a": nn.Linear(2, 1), "b": nn.Linear(2, 3)})
    with pytest.raises(ValueError, match="empty"):
        SoftSharing({})


# ------------------------------------------------------------------ cross-stitch


def test_cross_stitch_init_matches_paper_convention():
    np.testing.assert_allclose(cross_stitch_init(2, 0.9), [[0.9, 0.1], [0.1, 0.9]], rtol=1e-7)
    expected = [[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.3, 0.3, 0.4]]
    np.testing.assert_allclose(cross_stitch_init(3, 0.4), expected, rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.floats(0.0, 1.0))
def test_cross_stitch_init_rows_are_convex_combinations(num_tasks, alpha_self):
    matrix = cross_stitch_init(num_tasks, alpha_self)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-6)
    assert (matrix >= 0).all() and np.allclose(np.diag(matrix), alpha_self)


def test_cross_stitch_unit_hand_value():
    unit = CrossStitchUnit(2)
    with torch.no_grad():
        unit.alpha.copy_(torch.tensor([[0.5, 2.0], [1.0, -1.0]]))
    mixed = unit([torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]])])
    torch.testing.assert_close(mixed[0], torch.tensor([[6.5, 9.0]]))
    torch.testing.assert_close(mixed[1], torch.tensor([[-2.0, -2.0]]))


def test_cross_stitch_with_identity_alphas_equals_separate_towers():
    model = small_models()["cross_stitch"]
    for unit in model.units:
        with torch.no_grad():
            unit.alpha.copy_(torch.eye(3))
    x = x_batch()
    out = model(x)
    for n in "abc":
        expected = model.heads[n](nn.Sequential(*model.towers[n])(x))
        torch.testing.assert_close(out[n], expected, rtol=0, atol=0)


def test_cross_stitch_has_one_unit_between_consecutive_stages():
    model = small_models()["cross_stitch"]
    assert len(model.units) == 2
    np.testing.assert_allclose(model.units[0].alpha.detach().numpy(), cross_stitch_init(3, 0.9))


def test_cross_stitch_validates():
    with pytest.raises(ValueError, match="same number of stages"):
        CrossStitch({"a": [nn.Linear(2, 2)], "b": [nn.Linear(2, 2), nn.Linear(2, 2)]})
    with pytest.raises(ValueError, match="at least two tasks"):
        CrossStitch({"a": [nn.Linear(2, 2), nn.Linear(2, 2)]})
    with pytest.raises(ValueError, match=r"alpha_self must lie in \[0.0, 1.0\]"):
        CrossStitch({n: [nn.Linear(2, 2), nn.Linear(2, 2)] for n in "ab"}, alpha_self=1.5)
    with pytest.raises(TypeError, match="non-empty sequence"):
        CrossStitch({"a": [], "b": []})
    with pytest.raises(ValueError, match="same order"):
        CrossStitch({n: [nn.Linear(2, 2)] for n in "ab"}, heads={"b": nn.Linear(2, 1), "a": nn.Linear(2, 1)})
    model = CrossStitch({"a": [nn.Linear(2, 2), nn.Linear(2, 2)], "b": [nn.Linear(2, 3), nn.Linear(3, 2)]})
    with pytest.raises(ValueError, match="one shape across tasks"):
        model(torch.zeros(1, 2))


# ---------------------------------------------------------------- MMoE and PLE


@pytest.mark.parametrize("key, width", [("mmoe", 3), ("omoe", 3), ("ple1", 3), ("ple3", 3)])
def test_gates_are_distributions(key, width):
    model = small_models()[key]
    gates = model.gates(x_batch(7))
    assert list(gates) == list(model.task_names)
    for g in gates.values():
        assert g.shape == (7, width)
        assert (g >= 0).all()
        torch.testing.assert_close(g.sum(dim=1), torch.ones(7))


def test_one_gate_moe_shares_its_gate():
    model = small_models()["omoe"]
    gates = model.gates(x_batch())
    torch.testing.assert_close(gates["a"], gates["b"], rtol=0, atol=0)
    assert len(model.gate_layers) == 1


def test_mmoe_with_one_expert_equals_shared_bottom():
    model = MMoE(D, 1, [6, 4], ["a", "b"], tower_hidden=[3])
    shared_bottom = HardSharing(model.experts[0], dict(model.towers))
    x = x_batch()
    out, expected = model(x), shared_bottom(x)
    for n in "ab":
        torch.testing.assert_close(out[n], expected[n], rtol=1e-6, atol=1e-7)


def test_mmoe_with_zero_gate_weights_averages_experts():
    model = MMoE(D, 3, [4], ["a", "b"])
    for gate in model.gate_layers:
        nn.init.zeros_(gate.weight)
        nn.init.zeros_(gate.bias)
    x = x_batch()
    mean_expert = torch.stack([e(x) for e in model.experts]).mean(dim=0)
    torch.testing.assert_close(model(x)["a"], model.towers["a"](mean_expert), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(model.gates(x)["b"], torch.full((4, 3), 1 / 3))


def test_ple_single_level_with_zero_gates_averages_own_and_shared_experts():
    model = small_models()["ple1"]
    level = model.levels[0]
    for gate in level.task_gates.values():
        nn.init.zeros_(gate.weight)
        nn.init.zeros_(gate.bias)
    assert level.shared_gate is None  # no shared gate at the last level
    x = x_batch()
    experts = [e(x) for e in level.task_experts["b"]] + [e(x) for e in level.shared_experts]
    expected = model.towers["b"](torch.stack(experts).mean(dim=0))
    torch.testing.assert_close(model(x)["b"], expected, rtol=1e-6, atol=1e-6)


def test_ple_has_shared_gates_at_intermediate_levels_only():
    model = small_models()["ple3"]
    assert [level.shared_gate is not None for level in model.levels] == [True, True, False]
    # shared gate mixes every task's experts (3 tasks x 2) and the shared one
    assert model.levels[0].shared_gate.out_features == 7
    assert model(x_batch())["a"].shape == (4, 1)


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: MMoE(D, 0, [4], ["a"]), ValueError, "num_experts must be positive"),
        (lambda: MMoE(D, 2, [], ["a"]), ValueError, "at least one layer"),
        (lambda: MMoE(D, 2, [4], []), ValueError, "empty"),
        (lambda: MMoE(D, 2, [4], ["a", "a"]), ValueError, "unique"),
        (lambda: MMoE(D, 2, [4], {"a": 0}), ValueError, "output size"),
        (lambda: MMoE(D, 2, [4], ["a", "b", "c"], num_gates=2), ValueError, "num_gates"),
        (lambda: MMoE(-1, 2, [4], ["a"]), ValueError, "input_dim"),
        (lambda: MMoE(D, 2, [4], "ab"), TypeError, "string"),
        (lambda: PLE(D, ["a"], 0, 1, [4]), ValueError, "num_shared_experts"),
        (lambda: PLE(D, ["a"], 1, 1, [4], num_levels=0), ValueError, "num_levels"),
        (lambda: ESMM(D, []), ValueError, "at least one layer"),
    ],
)
def test_expert_models_validate(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize("key", ["mmoe", "ple3", "esmm"])
def test_dense_models_check_their_input(key):
    model = small_models()[key]
    with pytest.raises(ValueError, match=r"\(batch, 5\)"):
        model(torch.zeros(2, D + 1))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(2, D, dtype=torch.int64))


# ------------------------------------------------------------------------- ESMM


def test_esmm_conversion_is_click_times_cvr():
    model = small_models()["esmm"].double()
    out = model(x_batch().double())
    assert model.task_names == ("click", "conversion") and list(out) == ["click", "conversion", "cvr"]
    torch.testing.assert_close(
        torch.sigmoid(out["conversion"]), torch.sigmoid(out["click"]) * torch.sigmoid(out["cvr"]), rtol=1e-12, atol=0
    )


def test_ctcvr_logit_hand_value():
    # p = 1/2 * 1/2 = 1/4, logit = log(1/3)
    assert ctcvr_logit(torch.tensor(0.0), torch.tensor(0.0)).item() == pytest.approx(math.log(1 / 3), rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.floats(-30, 30), st.floats(-30, 30))
def test_ctcvr_logit_matches_the_product_of_probabilities(a, b):
    # reference in 50-digit decimal arithmetic: logit(p) = ln(p / (1 - p)), p = s(a) s(b)
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        one = decimal.Decimal(1)
        p = one / (one + decimal.Decimal(-a).exp()) / (one + decimal.Decimal(-b).exp())
        expected = float((p / (one - p)).ln())
    value = ctcvr_logit(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)).item()
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_ctcvr_loss_is_finite_for_extreme_logits():
    a = torch.tensor([-200.0, -200.0, 200.0, 200.0, 0.0], requires_grad=True)
    b = torch.tensor([-200.0, 200.0, -200.0, 200.0, 300.0], requires_grad=True)
    for label in (0.0, 1.0):
        logit = ctcvr_logit(a, b)
        assert torch.isfinite(logit).all()
        loss = nn.functional.binary_cross_entropy_with_logits(logit, torch.full_like(logit, label))
        assert torch.isfinite(loss)
        grads = torch.autograd.grad(loss, (a, b))
        assert all(torch.isfinite(g).all() for g in grads)
    # a = b = 200: p rounds to 1 in float32, yet the logit stays finite and large
    assert logit[3].item() > 100


# ---------------------------------------------------- shared / task parameters


@pytest.mark.parametrize("key", list(small_models()))
def test_shared_and_task_parameters_partition_the_model(key):
    model = small_models()[key]
    groups = [model.shared_parameters()] + [model.task_parameters(n) for n in model.task_names]
    ids = [id(p) for group in groups for p in group]
    assert len(ids) == len(set(ids)), "a parameter is listed twice"
    assert set(ids) == {id(p) for p in model.parameters()}


@pytest.mark.parametrize("key", list(small_models()))
def test_each_task_depends_on_shared_and_own_parameters_only(key):
    model = small_models()[key]
    x = x_batch(6)
    out = model(x)
    for name in model.task_names:
        grads = torch.autograd.grad(out[name].sum(), list(model.parameters()), allow_unused=True, retain_graph=True)
        by_id = {id(p): g for p, g in zip(model.parameters(), grads)}
        for other in model.task_names:
            if other != name:
                for p in model.task_parameters(other):
                    g = by_id[id(p)]
                    assert g is None or torch.count_nonzero(g) == 0, f"{name} depends on {other}'s parameter"
        for p in model.shared_parameters():
            g = by_id[id(p)]
            assert g is not None and torch.count_nonzero(g) > 0, f"{name} does not depend on a shared parameter"


def test_soft_sharing_shares_nothing():
    model = small_models()["soft"]
    assert model.shared_parameters() == []
    assert len(model.task_parameters("a")) == 4


def test_esmm_parameter_split():
    model = small_models()["esmm"]
    assert model.task_parameters("click") == []
    assert {id(p) for p in model.task_parameters("conversion")} == {id(p) for p in model.cvr_tower.parameters()}


# ----------------------------------------------------------------- determinism


@pytest.mark.parametrize("key", ["cross_stitch", "mmoe", "ple3", "esmm"])
def test_seeded_models_are_bit_identical(key):
    first = {n: v.detach().clone() for n, v in small_models()[key](x_batch()).items()}
    second = small_models()[key](x_batch())
    for n in first:
        assert torch.equal(first[n], second[n])
