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

BOOK = Path(__file__).resolve().parents[1] / "book"


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
