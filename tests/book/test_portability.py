"""The developer's portability command (mtl_course.tools.portability): its environment and its parsing."""

import subprocess
import sys

from mtl_course.tools.execute_chapters import REPRODUCIBLE_ENVIRONMENT
from mtl_course.tools.portability import kernel_environment, numpy_dispatch_removal, parse_pytest_output


def test_kernel_environment_changes_only_a_copy():
    base = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576", "HOME": "/h"}
    env = kernel_environment(base)
    assert base == {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576", "HOME": "/h"}
    assert "OPENBLAS_CORETYPE" not in env and "OPENBLAS_L2_SIZE" not in env
    assert env["ATEN_CPU_CAPABILITY"] == "default" and env["HOME"] == "/h"
    assert all(env[k] == v for k, v in REPRODUCIBLE_ENVIRONMENT.items())
    assert "MKL_ENABLE_INSTRUCTIONS" not in env
    assert kernel_environment(base, mkl_avx2=True)["MKL_ENABLE_INSTRUCTIONS"] == "AVX2"


def test_parse_pytest_output_reads_the_failed_cells():
    text = ("FAILED book/03_classical_mtl.ipynb::Cell 9 - Notebook cell execution failed\n"
            "FAILED book/03_classical_mtl.ipynb::Cell 11 - Notebook cell execution failed\n"
            "2 failed, 12 passed in 10.86s\n")
    assert parse_pytest_output(text) == (12, 2, ("Cell 9", "Cell 11"))
    assert parse_pytest_output("14 passed in 9.21s\n") == (14, 0, ())
    assert parse_pytest_output("ERROR book/x.ipynb::Cell 0 - boom\n1 error in 2s\n") == (0, 1, ("Cell 0",))


def test_numpy_dispatch_is_lowered_in_the_child_only():
    """The child's numpy runs without the disabled targets; this process keeps them."""
    from numpy._core import _multiarray_umath as umath

    targets = numpy_dispatch_removal().split()
    assert all(t in umath.__cpu_dispatch__ and umath.__cpu_features__[t] for t in targets)
    if "X86_V4" in umath.__cpu_dispatch__ and umath.__cpu_features__.get("X86_V4"):
        assert "X86_V4" in targets and "X86_V3" not in targets  # AVX-512 off, AVX2 kept
    env = kernel_environment({"PATH": "/usr/bin:/bin"})
    if not targets:
        assert "NPY_DISABLE_CPU_FEATURES" not in env
        return
    assert env["NPY_DISABLE_CPU_FEATURES"] == " ".join(targets)
    code = ("from numpy._core import _multiarray_umath as m; "
            "print(' '.join(f for f in m.__cpu_dispatch__ if m.__cpu_features__[f]))")
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert not set(child.stdout.split()) & set(targets), child.stdout
    assert all(umath.__cpu_features__[t] for t in targets)
