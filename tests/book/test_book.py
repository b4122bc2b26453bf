"""The book's configuration and the conventions every chapter follows."""

import re
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from mtl_course.tools.colab import COLAB_METADATA, colab_url, install_cell, project_version, release_tag
from mtl_course.tools.execute_chapters import chapter_paths, notebook_paths

ROOT = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = chapter_paths(ROOT / "book")
NOTEBOOKS = notebook_paths(ROOT / "book")  # the chapters and the appendix notebooks
RELEASE = release_tag(project_version(ROOT / "pyproject.toml"))


def _toc_files() -> list[str]:
    files = []
    for part in TOC.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            files.extend(section["file"] for section in chapter.get("sections", []))
    return files


def test_repository_block_points_at_this_project():
    repository = CONFIG["repository"]
    # The Colab launch button opens the notebooks of this release, not a moving branch.
    assert repository["branch"] == RELEASE, (
        f"_config.yml's repository.branch must be the release tag {RELEASE} (v + pyproject.toml's version)")
    assert repository["url"].startswith("https://github.com/")
    assert "executablebooks" not in repository["url"]
    assert CONFIG["copyright"]
    html = CONFIG["html"]
    assert html["use_repository_button"] and html["use_download_button"]
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


def test_repository_url_agrees_with_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["urls"]["Homepage"] == CONFIG["repository"]["url"]


def test_book_renders_stored_outputs_without_executing():
    assert CONFIG["execute"]["execute_notebooks"] == "off"


def test_every_toc_entry_exists_and_every_chapter_is_in_the_toc():
    entries = _toc_files()
    for entry in entries + [TOC["root"]]:
        candidates = [ROOT / f"{entry}{suffix}" for suffix in (".ipynb", ".md")]
        assert any(p.exists() for p in candidates), f"_toc.yml names {entry}, which does not exist"
    for chapter in NOTEBOOKS:
        assert f"book/{chapter.stem}" in entries, f"{chapter.name} is missing from _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_colab_install_cell(path):
    notebook = nbformat.read(path, as_version=4)
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    expected = install_cell(CONFIG["repository"]["url"], RELEASE)
    assert code_cells and code_cells[0].source == expected, (
        f"{path.name}: the first code cell must be the output of `python -m mtl_course.tools.colab` "
        "(`python -m mtl_course.tools.colab --write` sets it in every chapter)")
    assert code_cells[0].outputs == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_asks_colab_for_a_gpu(path):
    metadata = nbformat.read(path, as_version=4).metadata
    assert metadata.get("accelerator") == "GPU" and metadata.get("colab", {}).get("gpuType"), (
        f"{path.name}: run `python -m mtl_course.tools.colab --write` to request a GPU runtime")
    assert {k: metadata[k] for k in COLAB_METADATA} == COLAB_METADATA


def test_install_cell_installs_this_release_alone():
    """Pinned to the tag of pyproject.toml's version; no extras, no upgrade, no framework named,
    so pip keeps Colab's torch, TensorFlow and numpy."""
    cell = install_cell(CONFIG["repository"]["url"], RELEASE)
    command = cell.splitlines()[-1]
    assert command.strip().startswith("%pip install --quiet ") and command.endswith(f'@{RELEASE}"')
    assert "@main" not in cell and "[" not in command
    for forbidden in ("--upgrade", " -U", "--force", "torch", "tensorflow", "numpy", "keras"):
        assert forbidden not in command, forbidden


def test_readme_colab_link_and_extras_note_follow_the_release():
    readme = (ROOT / "README.md").read_text()
    link = colab_url(CONFIG["repository"]["url"], RELEASE, "book/01_why_mtl.ipynb")
    assert link in readme, f"README must link {link}"
    assert "/blob/main/" not in readme
    assert "not for Colab" in readme, "README must say that the extras are not for Colab"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_follows_the_structure_convention(path):
    notebook = nbformat.read(path, as_version=4)
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    headings = re.findall(r"^##\s+(.+)$", markdown, flags=re.M)
    for required in ("Learning goals", "Summary", "Exercises", "References"):
        assert required in headings, f"{path.name} has no '## {required}' section"
    assert markdown.count("{exercise}") >= 3, f"{path.name} needs at least three exercises"
    solutions = ROOT / "book" / "solutions" / f"{path.stem}.md"  # solutions live outside the notebook
    assert solutions.exists() and solutions.read_text().count("{solution}") >= markdown.count("{exercise}")
    assert "{bibliography}" in markdown
    assert "{term}`" in markdown, f"{path.name} links no glossary term (book/glossary.md)"
    assert notebook.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_outputs_are_stored_and_clean(path):
    notebook = nbformat.read(path, as_version=4)
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert any(c.outputs for c in code_cells), f"{path.name} has no stored outputs"
    for cell in code_cells:
        for output in cell.outputs:
            assert output.output_type != "error", f"{path.name} stores an error output"
            if output.output_type == "stream":
                assert output.name != "stderr" or "Warning" not in output.text, (
                    f"{path.name} stores a warning: {output.text[:200]}")
        tags = cell.metadata.get("tags", [])
        assert "nbval-skip" not in tags, f"{path.name}: cells may not be skipped"


def _chapter_number(path: Path) -> int:
    return int(path.name.split("_")[0])


def test_bibliography_has_no_duplicate_keys():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = re.findall(r"@\w+\{([^,]+),", bib)
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert not duplicates, f"duplicate bibliography keys: {duplicates}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_citations_use_the_chapter_key_prefix_and_exist(path):
    """Each chapter cites as chN-<key> and its bibliography strips that prefix."""
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    prefix = f"ch{_chapter_number(path)}-"
    notebook = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    assert f":keyprefix: {prefix}" in text, f"{path.name}: bibliography needs ':keyprefix: {prefix}'"
    cited = [key.strip() for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text)
             for key in group.split(",")]
    assert cited, f"{path.name} cites nothing"
    for key in cited:
        assert key.startswith(prefix), f"{path.name}: citation {key!r} lacks the prefix {prefix!r}"
        assert key[len(prefix):] in keys, f"{path.name} cites unknown key {key[len(prefix):]!r}"


def test_nbval_runs_strictly():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    addopts = pyproject["tool"]["pytest"]["ini_options"]["addopts"]
    assert "--nbval " in addopts + " " and "--nbval-lax" not in addopts
