"""What a chapter needs to run on Colab: its install cell, its GPU request, its launch URL.

One version string, ``project.version`` in ``pyproject.toml``, names the release
(the git tag ``v<version>``) that everything below points at:

* :func:`install_cell`, the first code cell of every chapter, installs the
  package from that tag (never from a moving branch), and only the package: no
  extras, no ``--upgrade``, so pip keeps Colab's own torch, TensorFlow and
  numpy (the package's requirements are met by them; a ``[tensorflow]`` extra
  would put ``tensorflow-cpu`` over Colab's ``tensorflow``);
* :data:`COLAB_METADATA` asks Colab for a GPU runtime when the notebook opens;
* ``_config.yml``'s ``repository.branch`` (the rocket button's Colab link) and
  the README's Colab link name the same tag.

``tests/book/test_book.py`` checks that all of them agree. After changing the
version, run ``python -m mtl_course.tools.colab --write`` (it rewrites the first
cell and the metadata of every chapter; no re-execution is needed, the cell
prints nothing) and update ``_config.yml`` and the README as the test says.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

COLAB_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}
"""Notebook metadata with which Colab opens a chapter on a GPU runtime (a T4, the free tier's GPU)."""


def project_version(pyproject: Path = Path("pyproject.toml")) -> str:
    """``project.version`` of ``pyproject.toml``."""
    text = Path(pyproject).read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        match = re.search(r'^version\s*=\s*"([^"]+)"', text, flags=re.M)
        if match is None:
            raise ValueError(f"{pyproject} has no version") from None
        return match.group(1)
    return tomllib.loads(text)["project"]["version"]


def release_tag(version: str) -> str:
    """The git tag of a release: ``v`` and the version."""
    return f"v{version}"


def install_cell(repository_url: str, ref: str) -> str:
    """Source of the Colab install cell: install the package from ``repository_url`` at git ``ref``.

    On Colab (detected by the ``google.colab`` module the Colab kernel loads)
    it pip-installs the package alone, so Colab's frameworks and numpy stay
    as they are; anywhere else it does nothing and prints nothing, so its
    stored output is stable.
    """
    url = repository_url.rstrip("/")
    return (
        "# On Google Colab, install the course's companion package (this release, without extras,\n"
        "# so Colab's own torch, TensorFlow and numpy stay); elsewhere this does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install --quiet "mtl_course @ git+{url}@{ref}"'
    )


def colab_url(repository_url: str, ref: str, notebook: str) -> str:
    """The link that opens ``notebook`` (a path in the repository) at ``ref`` on Colab."""
    path = repository_url.rstrip("/").removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{ref}/{notebook}"


def write_chapters(paths: list[Path], repository_url: str, ref: str) -> list[Path]:
    """Set the install cell and :data:`COLAB_METADATA` in each notebook; return the ones that changed."""
    import nbformat

    changed = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        before = nbformat.writes(notebook)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        if not code:
            raise ValueError(f"{path} has no code cell for the install cell")
        code[0].source = install_cell(repository_url, ref)
        notebook.metadata.update({k: (dict(v) if isinstance(v, dict) else v) for k, v in COLAB_METADATA.items()})
        if nbformat.writes(notebook) != before:
            nbformat.write(notebook, path)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    import yaml

    from mtl_course.tools.execute_chapters import notebook_paths

    parser = argparse.ArgumentParser(prog="python -m mtl_course.tools.colab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true",
                        help="write the install cell and the GPU metadata into every notebook of book/")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path("_config.yml").read_text())
    ref = release_tag(project_version())
    url = config["repository"]["url"]
    if not args.write:
        print(install_cell(url, ref))
        return 0
    for path in write_chapters(notebook_paths(Path("book")), url, ref):
        print(f"{path}: updated")
    if config["repository"].get("branch") != ref:
        print(f"_config.yml: set repository.branch to {ref}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
