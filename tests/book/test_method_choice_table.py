"""Chapter 13's method-choice table quotes benchmarks/results/method_choice_cpu.txt row by row.

The table is measured outside the book (``python benchmarks/method_choice.py``, minutes of CPU per
method); this test ties every number the chapter prints to the stored run, so a new run that is not
copied into the chapter (or a typo in the chapter) fails here, naming the row.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "method_choice_cpu.txt"
CHAPTER = ROOT / "book" / "13_scaling_up.ipynb"

#: chapter row label -> the script's method name
LABELS = {
    "equal": "equal", "uncertainty": "uncertainty", "DWA": "dwa", "RLW": "rlw", "GradNorm": "gradnorm",
    "mean (as an aggregator)": "mean", "MGDA": "mgda", "PCGrad": "pcgrad", "CAGrad": "cagrad",
    "Nash-MTL": "nash_mtl", "IMTL-G": "imtl_g", "Aligned-MTL": "aligned_mtl", "UPGrad": "upgrad",
    "MGDA-UB (own loop; × its own loop with equal weights)": "loop: MGDA-UB",
    "UPGrad every 4 steps (derived)": "upgrad every 4", "UPGrad every 16 steps (derived)": "upgrad every 16",
}


def stored_rows() -> dict[str, list[str]]:
    rows = {}
    for line in RESULTS.read_text().splitlines()[2:]:
        match = re.match(r"(.+?)\s{2,}([\d.]+)\s+([\d.]+)\s+(\d+|\(derived\))$", line)
        assert match, f"unexpected line in {RESULTS.name}: {line!r}"
        rows[match[1].strip()] = [match[2], match[3]] + ([] if match[4] == "(derived)" else [match[4]])
    return rows


def chapter_rows() -> dict[str, list[str]]:
    text = "".join("".join(cell["source"]) for cell in json.loads(CHAPTER.read_text())["cells"]
                   if cell["cell_type"] == "markdown")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] in LABELS:
            rows[cells[0]] = [c for c in cells[1:] if c]
    return rows


def test_the_chapter_has_every_row():
    assert sorted(chapter_rows()) == sorted(LABELS)


@pytest.mark.parametrize("label", sorted(LABELS))
def test_each_row_quotes_the_stored_run(label):
    assert chapter_rows()[label] == stored_rows()[LABELS[label]], \
        f"chapter 13's row {label!r} differs from {RESULTS.relative_to(ROOT)}: copy the new run into the table"


def test_the_stated_sizes_match_the_stored_run():
    header = RESULTS.read_text().splitlines()[0]
    assert "P = 25,437,184" in header and "T = 10 tasks" in header and "970 MB" in header
    text = CHAPTER.read_text()
    assert "25.4 million parameters" in text and "970 MB" in text
