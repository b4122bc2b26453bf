"""Code that a chapter defines for the reader to study equals the package's.

Chapter 1 writes a tiny hard-sharing network by hand (the point is to see
every line). These tests run the chapter's own cell and check that its
network computes what :class:`mtl_course.torch.HardSharing` computes with the
same weights, so the chapter cannot drift from the package.
"""

from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from torch import nn

from mtl_course import torch as mtl

BOOK = Path(__file__).resolve().parents[2] / "book"


def _cell_defining(notebook: Path, name: str) -> str:
    cells = nbformat.read(notebook, as_version=4).cells
    sources = [c.source for c in cells if c.cell_type == "code" and f"class {name}(" in c.source]
    assert len(sources) == 1, f"{notebook.name} should define {name} in exactly one cell"
    return sources[0]


@pytest.fixture
def chapter1_namespace():
    threads = torch.get_num_threads()
    namespace: dict = {}
    exec(_cell_defining(BOOK / "01_why_mtl.ipynb", "HardSharing"), namespace)
    yield namespace
    torch.set_num_threads(threads)


def test_chapter1_network_equals_the_package_hard_sharing(chapter1_namespace):
    torch.manual_seed(0)
    dim, width, tasks = 20, 2, 3
    chapter_net = chapter1_namespace["HardSharing"](dim, width, tasks)
    package_net = mtl.HardSharing(
        trunk=nn.Linear(dim, width),
        heads={str(t): nn.Linear(width, 1) for t in range(tasks)},
    )
    package_net.trunk.load_state_dict(chapter_net.trunk.state_dict())
    for t in range(tasks):
        package_net.heads[str(t)].load_state_dict(chapter_net.heads[t].state_dict())
    x = torch.randn(16, dim)
    outputs = package_net(x)
    for t in range(tasks):
        np.testing.assert_array_equal(chapter_net(x, t).detach().numpy(),
                                      outputs[str(t)].squeeze(-1).detach().numpy())
    # Same parameters: the shared trunk plus one head per task.
    assert sum(p.numel() for p in chapter_net.parameters()) == sum(
        p.numel() for p in package_net.parameters())


def _chapter5_namespace() -> dict:
    cells = nbformat.read(BOOK / "05_soft_sharing.ipynb", as_version=4).cells
    sources = [c.source for c in cells if c.cell_type == "code" and "def coupling_penalty(" in c.source]
    assert len(sources) == 1, "chapter 5 should define coupling_penalty in exactly one cell"
    namespace: dict = {"torch": torch}
    exec(sources[0], namespace)
    return namespace


@pytest.mark.parametrize("coupling", ["l2", "trace_norm", "weight_decay"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chapter5_coupling_penalty_equals_the_package(coupling, dtype):
    penalty = _chapter5_namespace()["coupling_penalty"]
    torch.manual_seed(0)
    towers = {n: mtl.mlp((5, 4, 3, 1)).to(dtype) for n in "abc"}
    package = mtl.SoftSharing(towers, coupling=coupling, strength=1.0)
    expected = package.penalty()
    torch.testing.assert_close(penalty(list(towers.values()), coupling), expected)
    # identical towers: the L2 coupling vanishes, weight decay does not
    twins = {n: mtl.mlp((5, 4, 1)).to(dtype) for n in "ab"}
    twins["b"].load_state_dict(twins["a"].state_dict())
    value = penalty(list(twins.values()), coupling)
    torch.testing.assert_close(value, mtl.SoftSharing(twins, coupling=coupling, strength=1.0).penalty())
    assert (float(value) == 0.0) == (coupling == "l2")


def test_chapter5_cross_stitch_forward_equals_the_package():
    forward = _chapter5_namespace()["cross_stitch_forward"]
    torch.manual_seed(0)
    model = mtl.CrossStitch({n: [mtl.mlp((5, 4), output_activation=True), mtl.mlp((4, 3), output_activation=True),
                                 mtl.mlp((3, 2))] for n in "abc"}, alpha_self=0.5)
    with torch.no_grad():
        for unit in model.units:
            unit.alpha.add_(0.2 * torch.randn_like(unit.alpha))  # not symmetric, not the initial pattern
    x = torch.randn(7, 5)
    got = forward([model.towers[n] for n in model.task_names], [u.alpha for u in model.units], x)
    expected = model(x)
    for g, name in zip(got, model.task_names):
        torch.testing.assert_close(g, expected[name])


def _chapter6_mmoe_forward():
    import ast

    cells = nbformat.read(BOOK / "06_mixture_of_experts.ipynb", as_version=4).cells
    sources = [c.source for c in cells if c.cell_type == "code" and "def mmoe_forward(" in c.source]
    assert len(sources) == 1, "chapter 6 should define mmoe_forward in exactly one cell"
    tree = ast.parse(sources[0])
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "mmoe_forward"]
    namespace: dict = {"torch": torch}
    exec(compile(ast.Module(body=functions, type_ignores=[]), "chapter6", "exec"), namespace)
    return namespace["mmoe_forward"]


@pytest.mark.parametrize("num_gates", [None, 1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chapter6_mmoe_forward_equals_the_package(num_gates, dtype):
    mmoe_forward = _chapter6_mmoe_forward()
    torch.manual_seed(3)
    model = mtl.MMoE(7, num_experts=3, expert_hidden=5, tasks={"a": 1, "b": 2, "c": 1}, tower_hidden=4,
                     num_gates=num_gates).to(dtype)
    with torch.no_grad():  # sharper gates than at initialization, so that a wrong softmax axis shows
        for layer in model.gate_layers:
            layer.weight.mul_(5.0)
    x = torch.randn(11, 7, dtype=dtype)
    outputs, gates = mmoe_forward(model, x)
    expected, expected_gates = model(x), model.gates(x)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    for task in ("a", "b", "c"):
        torch.testing.assert_close(outputs[task], expected[task], atol=tol, rtol=tol)
        torch.testing.assert_close(gates[task], expected_gates[task], atol=tol, rtol=tol)
        torch.testing.assert_close(gates[task].sum(-1), torch.ones(11, dtype=dtype), atol=tol, rtol=tol)
    if num_gates == 1:
        torch.testing.assert_close(gates["a"], gates["b"])
