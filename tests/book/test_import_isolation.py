"""Each framework side imports without the other framework installed.

Every check runs in a fresh interpreter in which a meta-path finder makes
``import torch`` (or ``tensorflow`` / ``keras``) fail, as on a machine
without that framework.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BLOCKER = textwrap.dedent(
    """
    import sys

    BLOCKED = {blocked!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked in this test")
            return None

    sys.meta_path.insert(0, Blocker())
    """
)


def run_python(blocked: tuple[str, ...], body: str) -> subprocess.CompletedProcess:
    code = BLOCKER.format(blocked=blocked) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_the_blocker_really_blocks():
    result = run_python(("torch",), "import torch\n")
    assert result.returncode != 0 and "blocked in this test" in result.stderr


def test_tensorflow_side_imports_without_torch():
    result = run_python(
        ("torch",),
        """
        import mtl_course, mtl_course.tf, mtl_course.data, mtl_course.parity
        import mtl_course.core.model_config
        from mtl_course.tf import models
        models.MMoE(3, 2, [4], ["a", "b"])
        assert "torch" not in sys.modules
        print("ok")
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_torch_side_imports_without_tensorflow():
    result = run_python(
        ("tensorflow", "keras"),
        """
        import mtl_course, mtl_course.torch, mtl_course.data, mtl_course.parity
        from mtl_course.torch import models
        models.MMoE(3, 2, [4], ["a", "b"])
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules
        print("ok")
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("module", ["mtl_course", "mtl_course.core.model_config", "mtl_course.parity"])
def test_framework_free_modules_import_no_framework(module):
    result = run_python(
        (),
        f"""
        import {module}
        loaded = sorted(m for m in ("torch", "tensorflow", "keras") if m in sys.modules)
        print(loaded)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
