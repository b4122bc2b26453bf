"""Re-execute the course's chapters in place, deterministically.

Usage (from the repository root)::

    python -m mtl_course.tools.execute_chapters              # every chapter in book/
    python -m mtl_course.tools.execute_chapters book/02_objective.ipynb
    python -m mtl_course.tools.execute_chapters --check      # execute, write nothing (CI)

Each notebook runs top to bottom in one fresh kernel, started in the
notebook's own folder with the same environment that ``pytest`` gives the
chapters (see :data:`REPRODUCIBLE_ENVIRONMENT`), and is written back with its
new outputs. Run it after changing a chapter or the package, then run
``pytest book`` to confirm that a second execution reproduces the outputs.

With ``--check`` nothing is written: each chapter is executed and the run
fails on any cell error or on a stderr traceback the stored notebook does not
have. Outputs are not compared (other package versions print other digits):
this is how CI runs the chapters against the package versions of Colab.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# The environment every chapter runs in, here and under pytest (conftest.py
# imports this dictionary): TensorFlow's C++ logs silenced (both variables
# are needed), tqdm bars off (tqdm reads TQDM_DISABLE), fixed hash seed.
REPRODUCIBLE_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TQDM_DISABLE": "1",
    "PYTHONHASHSEED": "0",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
}


def apply_reproducible_environment(environ: dict | None = None) -> None:
    """Set :data:`REPRODUCIBLE_ENVIRONMENT` in ``environ`` (default ``os.environ``)."""
    target = os.environ if environ is None else environ
    target.update(REPRODUCIBLE_ENVIRONMENT)


def chapter_paths(book_dir: Path) -> list[Path]:
    """The chapter notebooks of ``book_dir`` (``NN_name.ipynb``), in file-name (= chapter) order."""
    return [p for p in notebook_paths(book_dir) if p.name[:2].isdigit()]


def notebook_paths(book_dir: Path) -> list[Path]:
    """Every notebook of ``book_dir``: the chapters, then the appendix pages (``appendix_*.ipynb``)."""
    return sorted((p for p in book_dir.glob("*.ipynb") if not p.name.startswith(".")),
                  key=lambda p: (not p.name[:2].isdigit(), p.name))


def execute_chapter(path: Path, timeout: int = 600, kernel_name: str = "python3") -> float:
    """Execute one notebook in place in a fresh kernel; return the seconds it took."""
    import nbformat
    from nbconvert.preprocessors import ExecutePreprocessor

    notebook = nbformat.read(path, as_version=4)
    processor = ExecutePreprocessor(timeout=timeout, kernel_name=kernel_name)
    start = time.perf_counter()
    processor.preprocess(notebook, {"metadata": {"path": str(path.parent)}})
    seconds = time.perf_counter() - start
    # Timing metadata changes on every run; drop it so that a re-execution
    # with unchanged outputs leaves a clean git diff. Execution counts stay:
    # in a fresh kernel they are 1..N, and nbval needs them to know that a
    # stored output belongs to an executed cell.
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.metadata.pop("execution", None)
    nbformat.write(notebook, path)
    return seconds


def _stderr_tracebacks(cells) -> list[str]:
    return [output.text for cell in cells if cell.cell_type == "code" for output in cell.get("outputs", [])
            if output.get("output_type") == "stream" and output.get("name") == "stderr"
            and "Traceback" in output.get("text", "")]


def check_chapter(path: Path, timeout: int = 600, kernel_name: str = "python3") -> tuple[float, list[str]]:
    """Execute a copy of one notebook (nothing is written); return the seconds and the problems found.

    A problem is a cell that raised (execution stops there) or a stderr
    output with a traceback that the stored notebook does not have.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    stored = nbformat.read(path, as_version=4)
    notebook = nbformat.from_dict(stored)
    client = NotebookClient(notebook, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    problems = []
    try:
        client.execute()
    except CellExecutionError as error:
        problems.append(f"cell error: {str(error).strip()[-1500:]}")
    seconds = time.perf_counter() - start
    known = set(_stderr_tracebacks(stored.cells))
    problems += [f"new stderr traceback: {text.strip()[-1500:]}" for text in _stderr_tracebacks(notebook.cells)
                 if text not in known]
    return seconds, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to execute (default: every chapter in book/)")
    parser.add_argument("--book-dir", type=Path, default=Path("book"))
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--check", action="store_true",
                        help="execute without writing; fail on a cell error or a new stderr traceback")
    args = parser.parse_args(argv)

    paths = args.notebooks or notebook_paths(args.book_dir)
    if not paths:
        print(f"no notebooks found in {args.book_dir}", file=sys.stderr)
        return 1
    apply_reproducible_environment()
    failed = []
    for path in paths:
        if not path.exists():
            print(f"{path}: no such notebook", file=sys.stderr)
            return 1
        if args.check:
            seconds, problems = check_chapter(path, timeout=args.timeout)
            print(f"{path}: executed in {seconds:.1f} s, " + ("ok" if not problems else "FAILED"), flush=True)
            for problem in problems:
                print(f"    {problem}", flush=True)
            if problems:
                failed.append(path)
            continue
        seconds = execute_chapter(path, timeout=args.timeout)
        print(f"{path}: executed in {seconds:.1f} s")
    if failed:
        print(f"{len(failed)} of {len(paths)} chapters failed: {', '.join(map(str, failed))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
