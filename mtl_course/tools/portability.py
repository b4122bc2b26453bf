"""Check that every chapter's stored outputs survive other numeric kernels.

Usage (from the repository root; a developer's check, not part of the tests or CI)::

    python -m mtl_course.tools.portability                       # every chapter in book/
    python -m mtl_course.tools.portability book/03_classical_mtl.ipynb
    python -m mtl_course.tools.portability --mkl-avx2            # also MKL's AVX2 kernels

The stored outputs are written on one machine; a reader's machine picks other
CPU kernels, and nbval compares strictly. This command re-executes each
chapter through nbval (``pytest book/NN.ipynb``, the same strict comparison as
the test suite) in a child process whose environment makes the numeric
libraries choose different kernels than the ones that wrote the outputs:

* ``ATEN_CPU_CAPABILITY=default``: PyTorch's own vectorised kernels fall back
  from AVX2/AVX-512 to their generic version;
* ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed: numpy's and scipy's
  OpenBLAS detects the CPU itself instead of the core type those variables pin;
* ``NPY_DISABLE_CPU_FEATURES`` set to numpy's AVX-512 dispatch targets (on a CPU
  without them, to every dispatch target above numpy's baseline): numpy's own
  float64 ``exp``, ``log``, ``tanh``, ``sin`` ... run the AVX2 (or baseline)
  code that most laptops run, whose last bits differ from the AVX-512 code;
* with ``--mkl-avx2``, also ``MKL_ENABLE_INSTRUCTIONS=AVX2``: PyTorch's matrix
  products use MKL's AVX2 code, as on most laptops and many cloud CPUs.

Only the child processes see these changes; the environment of the test suite
and of CI is never changed. A chapter passes when every cell's output equals
the stored one. A failure means a printed digit depends on the CPU: find the
root (an arbitrary basis, a solver's iteration count, the last bits of a long
chaotic run) and print what the seed-to-seed spread justifies; see
``book/CONTRIBUTING.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mtl_course.tools.execute_chapters import REPRODUCIBLE_ENVIRONMENT, notebook_paths

KERNEL_OVERRIDES = {"ATEN_CPU_CAPABILITY": "default"}
"""Variables set in the child environment."""

KERNEL_REMOVALS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
"""Variables removed from the child environment."""

MKL_AVX2 = {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}
"""Added with ``--mkl-avx2``."""


def numpy_dispatch_removal() -> str:
    """The numpy dispatch targets to disable: AVX-512 where this CPU has it, else all above the baseline.

    The names come from numpy's own list of the targets it was built with and
    this CPU supports, so ``NPY_DISABLE_CPU_FEATURES`` never names one numpy
    would reject. An empty string where numpy dispatches nothing.
    """
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as umath
    present = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    avx512 = [f for f in present if f.startswith("AVX512") or f == "X86_V4"]
    return " ".join(avx512 or present)


def kernel_environment(base: dict[str, str] | None = None, mkl_avx2: bool = False) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) that makes the numeric libraries pick other kernels."""
    env = dict(os.environ if base is None else base)
    for name in KERNEL_REMOVALS:
        env.pop(name, None)
    env.update(REPRODUCIBLE_ENVIRONMENT)
    env.update(KERNEL_OVERRIDES)
    numpy_targets = numpy_dispatch_removal()
    if numpy_targets:
        env["NPY_DISABLE_CPU_FEATURES"] = numpy_targets
    if mkl_avx2:
        env.update(MKL_AVX2)
    return env


@dataclass(frozen=True)
class ChapterResult:
    """The nbval verdict on one chapter."""

    path: Path
    passed: int
    failed: int
    failed_cells: tuple[str, ...]
    seconds: float
    returncode: int

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0


def parse_pytest_output(text: str) -> tuple[int, int, tuple[str, ...]]:
    """``(passed, failed, failed cell names)`` from pytest's ``-q`` summary."""
    passed = sum(int(n) for n in re.findall(r"(\d+) passed", text))
    failed = sum(int(n) for n in re.findall(r"(\d+) (?:failed|errors?)\b", text))
    cells = tuple(dict.fromkeys(re.findall(r"^(?:FAILED|ERROR) \S+::(Cell \d+)", text, flags=re.M)))
    return passed, failed, cells


def check_chapter(path: Path, env: dict[str, str], timeout: float = 1800.0) -> tuple[ChapterResult, str]:
    """Run nbval on one chapter in ``env``; return its result and pytest's output."""
    command = [sys.executable, "-m", "pytest", str(path), "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               "-rfE", "--color=no"]
    start = time.perf_counter()
    try:
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        output, returncode = run.stdout + run.stderr, run.returncode
    except subprocess.TimeoutExpired as error:
        output = f"timed out after {timeout:.0f} s\n{error.stdout or ''}"
        returncode = 124
    seconds = time.perf_counter() - start
    passed, failed, cells = parse_pytest_output(output)
    return ChapterResult(path, passed, failed, cells, seconds, returncode), output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtl_course.tools.portability",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="chapters to check (default: every chapter in book/)")
    parser.add_argument("--book-dir", type=Path, default=Path("book"))
    parser.add_argument("--mkl-avx2", action="store_true",
                        help="also set MKL_ENABLE_INSTRUCTIONS=AVX2 (PyTorch's matrix products)")
    parser.add_argument("--verbose", action="store_true", help="print pytest's output of failing chapters")
    args = parser.parse_args(argv)

    paths = args.notebooks or notebook_paths(args.book_dir)
    if not paths:
        print(f"no notebooks found in {args.book_dir}", file=sys.stderr)
        return 1
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"no such notebook: {', '.join(map(str, missing))}", file=sys.stderr)
        return 1
    env = kernel_environment(mkl_avx2=args.mkl_avx2)
    changed = [f"{k}={v}" for k, v in KERNEL_OVERRIDES.items()] + [f"{k} unset" for k in KERNEL_REMOVALS]
    if "NPY_DISABLE_CPU_FEATURES" in env:
        changed.append(f"NPY_DISABLE_CPU_FEATURES={env['NPY_DISABLE_CPU_FEATURES']!r}")
    if args.mkl_avx2:
        changed += [f"{k}={v}" for k, v in MKL_AVX2.items()]
    print("chapters under other kernels: " + ", ".join(changed), flush=True)
    results = []
    total_start = time.perf_counter()
    for path in paths:
        result, output = check_chapter(path, env)
        results.append(result)
        verdict = "pass" if result.ok else "FAIL " + (", ".join(result.failed_cells) or f"(exit {result.returncode})")
        print(f"{result.seconds:7.1f} s  {path}: {result.passed} cells passed, {verdict}", flush=True)
        if not result.ok and args.verbose:
            print(output)
    total = time.perf_counter() - total_start
    bad = [r for r in results if not r.ok]
    print(f"{len(results) - len(bad)} of {len(results)} chapters pass in {total:.0f} s")
    if bad:
        print("rerun with --verbose, or `pytest <chapter>` in the environment above, to see the differences")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
