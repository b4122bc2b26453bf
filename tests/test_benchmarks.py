"""The benchmark scripts still run against the package, and time equivalent steps."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = str(Path(__file__).resolve().parents[1] / "benchmarks")


@pytest.fixture(scope="module")
def gramian_benchmark():
    sys.path.insert(0, BENCHMARKS)  # the scripts import their sibling _threads.py
    try:
        import gramian

        yield gramian
    finally:
        sys.path.remove(BENCHMARKS)


@pytest.mark.parametrize("kind", ["MLP", "CNN"])
def test_gramian_benchmark_steps_make_the_same_update(gramian_benchmark, kind):
    """Each timed step, on a fresh copy of the same model, makes the same UPGrad update
    (MGDA-UB is a different method: it only has to run and move the parameters)."""
    before, after = None, {}
    for name in ("loop", "gramian", "batched J", "MGDA-UB"):
        _, steps, model = gramian_benchmark.build(kind, 3)
        start = [p.detach().clone() for p in model.parameters()]
        before = before or start
        for p, q in zip(start, before):
            assert torch.equal(p, q)
        steps[name]()
        after[name] = [p.detach().clone() for p in model.parameters()]
    for name in ("gramian", "batched J"):
        for p, q in zip(after[name], after["loop"]):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)
    for name in after:
        assert all(not torch.equal(p, q) for p, q in zip(after[name], before))
