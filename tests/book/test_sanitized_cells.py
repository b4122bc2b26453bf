"""nbval compares every output strictly; the few cells it may skip print only time or hardware.

A new ``nbval-ignore-output`` (or ``nbval-skip``) tag fails here until it is listed with the reason
its output cannot be the same on every machine. A number that moves with the CPU's kernels is no
such reason: print it with the digits its spread justifies (``book/CONTRIBUTING.md``).
"""

import json
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[2] / "book"

SANITIZED = {
    ("08_gradient_conflict", "2d68aebf"): "milliseconds per step of three ways to get per-task gradients",
    ("09_evaluation", "b212ac95"): "seconds per training run of each method",
    ("13_scaling_up", "48fb638c"): "the device and the torch/CUDA versions of the reader's machine",
    ("13_scaling_up", "190bd89a"): "names the devices TensorFlow's MirroredStrategy found (CPUs or GPUs)",
}


def _tagged_cells():
    for path in sorted(BOOK.glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            tags = [t for t in cell.get("metadata", {}).get("tags", []) if t.startswith("nbval-")]
            if tags:
                yield path.stem, cell.get("id"), tags


def test_only_time_and_hardware_outputs_are_sanitized():
    found = {(stem, cell_id): tags for stem, cell_id, tags in _tagged_cells()}
    unexplained = sorted(set(found) - set(SANITIZED))
    assert not unexplained, f"cells nbval does not compare, with no stated reason: {unexplained}"
    assert all(tags == ["nbval-ignore-output"] for tags in found.values()), found


@pytest.mark.parametrize("key", sorted(SANITIZED))
def test_every_listed_cell_still_exists(key):
    stem, cell_id = key
    assert (stem, cell_id) in {(s, c) for s, c, _ in _tagged_cells()}, f"{key} is no longer tagged: drop it from SANITIZED"
