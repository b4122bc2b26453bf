"""The package's import rule, read from the source: chapters -> torch / tf -> core -> leaves.

Every ``import`` and ``from ... import`` of ``mtl_course`` (at module level or
inside a function) and every ``importlib.import_module("mtl_course...")`` with
a literal name counts. A planted violation must fail the check
(``test_a_planted_violation_is_caught``), so the rule cannot pass vacuously.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mtl_course"

LEAVES = {"checks", "stats", "data", "metrics", "objective", "classical"}
LIBRARY = LEAVES | {"core"}
FRAMEWORKS = {"torch", "tf"}

#: package -> the packages it may import besides itself.
ALLOWED: dict[str, set[str]] = {
    "checks": set(),
    "stats": {"checks"},
    "data": {"checks"},
    "metrics": {"checks"},
    "objective": {"checks"},
    "classical": {"checks", "stats", "data"},  # comparison.py takes data sets of data.planted
    "core": LEAVES,
    "torch": LIBRARY,
    "tf": LIBRARY,
    "parity": LIBRARY | FRAMEWORKS,
    "exercises": LIBRARY | FRAMEWORKS | {"parity"},
    "chapters": LIBRARY | FRAMEWORKS | {"parity"},
    "tools": set(),
}


def top_package(path: Path) -> str:
    """The first part of a module's name below ``mtl_course`` (``core`` for ``core/tasks.py``)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def imported_packages(source: str) -> set[str]:
    """The ``mtl_course`` sub-packages a module's source imports (``""`` for the package root)."""
    found: set[str] = set()

    def add(name: str) -> None:
        if name == "mtl_course" or name.startswith("mtl_course."):
            parts = name.split(".")
            found.add(parts[1] if len(parts) > 1 else "")

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "mtl_course":
                found.update(alias.name for alias in node.names)
            else:
                add(node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            add(node.args[0].value)
    return found


def violations(files: dict[Path, str]) -> list[str]:
    """Every import that breaks :data:`ALLOWED`, as readable lines."""
    found = []
    for path, source in sorted(files.items()):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        package = top_package(path)
        allowed = ALLOWED.get(package)
        if allowed is None:
            found.append(f"{path.relative_to(PACKAGE)}: package {package!r} has no place in the import rule")
            continue
        for imported in sorted(imported_packages(source) - {package, "__version__"}):
            if imported not in allowed:
                found.append(f"{path.relative_to(PACKAGE)} ({package}) imports mtl_course.{imported}")
    return found


def package_files() -> dict[Path, str]:
    return {path: path.read_text() for path in PACKAGE.rglob("*.py")}


def test_every_import_follows_the_rule():
    assert violations(package_files()) == []


@pytest.mark.parametrize(("where", "line"), [
    ("core/planted.py", "from mtl_course.chapters import ch04_hard_sharing\n"),
    ("torch/planted.py", "import mtl_course.tf.train\n"),
    ("data/planted.py", "def f():\n    from mtl_course.core import tasks\n"),
    ("metrics.py", "import importlib\nimportlib.import_module('mtl_course.torch')\n"),
    ("exercises/planted.py", "from mtl_course import chapters\n"),
])
def test_a_planted_violation_is_caught(where, line):
    files = package_files()
    path = PACKAGE / where
    files[path] = files.get(path, "") + line
    assert len(violations(files)) == 1


def test_ruff_is_clean():
    """The linter configured in pyproject.toml ([tool.ruff]) finds nothing, in the package, tests and notebooks."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                            cwd=PACKAGE.parent, capture_output=True, text=True)
    assert result.returncode == 0, "ruff finds problems (run `python -m ruff check . --fix`):\n" + result.stdout
