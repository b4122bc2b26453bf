"""The developer's portability command (mtl_course.tools.portability): its environment and its parsing."""

from mtl_course.tools.execute_chapters import REPRODUCIBLE_ENVIRONMENT
from mtl_course.tools.portability import kernel_environment, parse_pytest_output


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
