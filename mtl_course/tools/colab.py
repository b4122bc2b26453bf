"""The first code cell of every chapter: install the package on Colab.

The repository URL is written once, in ``_config.yml`` (``repository.url``).
Every chapter's first code cell must equal :func:`install_cell` of that URL;
``tests/test_book.py`` checks it, so the launch buttons and the install cell
can never point at different repositories.
"""

from __future__ import annotations


def install_cell(repository_url: str, branch: str = "main") -> str:
    """Source of the Colab install cell for ``repository_url`` at ``branch``.

    On Colab (detected by the ``google.colab`` module the Colab kernel loads)
    it pip-installs the package from the repository; anywhere else it does
    nothing and prints nothing, so its stored output is stable.
    """
    url = repository_url.rstrip("/")
    return (
        "# On Google Colab, install the course's companion package; elsewhere this does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install --quiet "mtl_course @ git+{url}@{branch}"'
    )


if __name__ == "__main__":
    import sys
    from pathlib import Path

    import yaml

    config = yaml.safe_load(Path("_config.yml").read_text())
    print(install_cell(config["repository"]["url"], config["repository"].get("branch", "main")))
    sys.exit(0)
