"""The chapters' exercises give nothing away and every solution page passes its own checkers.

A reader in Jupyter or Colab sees an exercise, a code cell with a placeholder and
the checker's "Not answered yet" reply; the solutions are on separate pages
(book/solutions/), which a reader must choose to open.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from mtl_course.tools.execute_chapters import chapter_paths

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = chapter_paths(ROOT / "book")
SOLUTIONS = ROOT / "book" / "solutions"
CHECK_CALL = re.compile(r"\bcheck_\w+\(")


def _outputs(cell) -> str:
    text = []
    for output in cell.outputs:
        if output.output_type == "stream":
            text.append(output.text)
        elif "data" in output:
            text.append(str(output.data.get("text/plain", "")))
    return "".join(text)


def _labels(text: str, directive: str) -> list[str]:
    if directive == "exercise":
        return re.findall(r"```\{exercise\}[^\n]*\n:label: (\S+)", text)
    return re.findall(r"`{3,}\{solution\} (\S+)", text)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_checker_cells_show_a_placeholder_and_no_answer(path):
    notebook = nbformat.read(path, as_version=4)
    checker_cells = [c for c in notebook.cells if c.cell_type == "code" and CHECK_CALL.search(c.source)]
    assert checker_cells, f"{path.name} has no checker cell"
    for cell in checker_cells:
        out = _outputs(cell)
        assert "Correct" not in out, f"{path.name}: a checker cell stores a correct answer:\n{cell.source}"
        assert out.startswith("Not answered yet: "), f"{path.name}: checker cell output {out[:80]!r}"
        assert "..." in cell.source or "raise NotImplementedError" in cell.source, cell.source
        assert all(len(line) <= 88 for line in out.splitlines()), f"{path.name}: feedback wider than 88 columns"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_no_solution_text_inside_the_notebook(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        assert "{solution}" not in cell.source, f"{path.name} holds a solution; move it to book/solutions/"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_exercise_has_a_solution_on_the_chapter_solutions_page(path):
    notebook = nbformat.read(path, as_version=4)
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    page = SOLUTIONS / f"{path.stem}.md"
    assert page.exists(), f"no solutions page {page.relative_to(ROOT)}"
    exercises, solutions = _labels(markdown, "exercise"), _labels(page.read_text(), "solution")
    assert exercises == solutions, f"{path.name}: exercises {exercises} but solutions {solutions}"
    assert f"solutions/{path.stem}.md" in markdown, f"{path.name} does not link its solutions page"
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert f"book/solutions/{path.stem}" in files


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_chapter_has_a_graded_code_exercise(path):
    notebook = nbformat.read(path, as_version=4)
    graded = [c for c in notebook.cells if c.cell_type == "code" and "raise NotImplementedError" in c.source
              and CHECK_CALL.search(c.source)]
    assert graded, f"{path.name} has no exercise where the reader writes a function that a checker runs"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_exercise_numbers_are_never_written_by_hand(path):
    """Exercises are numbered by the book (per chapter); text refers to them by label only."""
    notebook = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in notebook.cells) + (SOLUTIONS / f"{path.stem}.md").read_text()
    assert not re.search(r"[Ee]xercise \d", text), f"{path.name} writes an exercise number by hand"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)\n```", text, flags=re.S)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_solution_pages_pass_their_checkers(path):
    """Run the code of a chapter's solutions page: every checker it calls says Correct."""
    blocks = _python_blocks((SOLUTIONS / f"{path.stem}.md").read_text())
    calls = sum(len(re.findall(r"^\s*\w+\.check_\w+\(", block, flags=re.M)) for block in blocks)
    assert calls, f"{path.name}: the solutions page checks nothing"
    namespace: dict = {}
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        for block in blocks:
            exec(compile(block, f"{path.stem}.md", "exec"), namespace)  # noqa: S102 (our own pages)
    out = buffer.getvalue()
    assert "Not yet" not in out and "Not answered" not in out, out
    assert out.count("Correct: ") == calls, out
