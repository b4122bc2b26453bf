"""Every figure of every chapter has a caption and an alt text (issue 16)."""

from pathlib import Path

import nbformat

from mtl_course.tools import figure_captions
from mtl_course.tools.execute_chapters import chapter_paths

CHAPTERS = chapter_paths(Path(__file__).resolve().parents[2] / "book")


def test_every_figure_has_its_caption_and_alt_text():
    assert figure_captions.problems(CHAPTERS) == []


def test_check_reports_a_figure_without_caption(tmp_path):
    source = next(p for p in CHAPTERS if p.name == "04_hard_sharing.ipynb")
    notebook = nbformat.read(source, as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("mystnb", None)
    copy = tmp_path / source.name
    nbformat.write(notebook, copy)
    messages = figure_captions.problems([copy])
    assert len(messages) == 2 and all("caption metadata out of date" in m for m in messages)
    assert figure_captions.apply([copy]) == 2
    assert figure_captions.problems([copy]) == []


def test_captions_and_alt_texts_say_something():
    for (notebook, cell_id), figure in figure_captions.FIGURES.items():
        assert figure.name.startswith(f"ch{int(notebook[:2])}-fig-"), figure.name
        assert len(figure.caption) >= 40 and len(figure.alt) >= 40, (notebook, cell_id)
        assert figure.caption != figure.alt
