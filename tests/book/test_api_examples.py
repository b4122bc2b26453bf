"""Every public name shows an example in its docstring, and every example runs.

Public: the ``__all__`` of the twins (:mod:`mtl_course.torch`,
:mod:`mtl_course.tf`) and of the framework-free modules the chapters call
(:mod:`mtl_course.metrics`, :mod:`mtl_course.stats`,
:mod:`mtl_course.objective`) and the functions and classes of every
:mod:`mtl_course.core` module (their ``__all__``, or what they define).

The API pages render the docstrings (autodoc), so an ``Examples`` section is
what a reader copies first: each one is run here as a doctest and must print
what it claims. A module-level constant (``AGGREGATORS``, ``WEIGHTINGS``)
keeps its example in its doc comment, the string after the assignment, which
is what autodoc renders for it.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import sys

import pytest

import mtl_course.tf  # noqa: F401  (before tensorflow: quiets its start-up logs)

pytest.importorskip("sphinx")
from sphinx.pycode import ModuleAnalyzer  # noqa: E402

TWINS = ["mtl_course.torch", "mtl_course.tf"]
CORE = [f"mtl_course.core.{m.name}" for m in pkgutil.iter_modules(importlib.import_module("mtl_course.core").__path__)]
PACKAGES = [*TWINS, "mtl_course.metrics", "mtl_course.stats", "mtl_course.objective", *CORE]
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
SECTION = "Examples:"


def _home(package: str, name: str, obj: object) -> str:
    """The module that defines ``obj`` (for a constant: the one whose doc comment documents it)."""
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return obj.__module__
    for module_name in sorted(m for m in sys.modules if m == package or m.startswith(package + ".")):
        module = sys.modules[module_name]
        if getattr(module, name, None) is obj and ("", name) in ModuleAnalyzer.for_module(module_name).find_attr_docs():
            return module_name
    raise AssertionError(f"{package}.{name} is a constant without a doc comment in any {package} module")


def _docstring(package: str, name: str) -> tuple[str, str, object]:
    """(home module, docstring, object) of a public name."""
    obj = getattr(importlib.import_module(package), name)
    home = _home(package, name, obj)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return home, inspect.getdoc(obj) or "", obj
    lines = ModuleAnalyzer.for_module(home).find_attr_docs()[("", name)]
    return home, "\n".join(lines), obj


def _public(module_name: str) -> list[str]:
    """``__all__``, or else the functions and classes the module defines (constants need a doc comment)."""
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        names = list(module.__all__)
    else:
        names = [n for n, o in vars(module).items() if not n.startswith("_")
                 and (inspect.isfunction(o) or inspect.isclass(o)) and o.__module__ == module_name]
    documented = ModuleAnalyzer.for_module(module_name).find_attr_docs()
    return [n for n in names if inspect.isclass(getattr(module, n)) or inspect.isfunction(getattr(module, n))
            or module_name in TWINS or ("", n) in documented]


PUBLIC = [(package, name) for package in PACKAGES for name in _public(package)]


@pytest.mark.parametrize("package, name", PUBLIC, ids=lambda v: v)
def test_public_name_has_an_examples_section(package, name):
    _, doc, _ = _docstring(package, name)
    assert SECTION in doc, f"{package}.{name}: its docstring has no '{SECTION}' section"
    assert ">>> " in doc.split(SECTION, 1)[1], f"{package}.{name}: its '{SECTION}' section has no >>> example"


def _doctest(package: str, name: str) -> doctest.DocTest:
    home, doc, _ = _docstring(package, name)
    globs = dict(vars(importlib.import_module(home)))
    return doctest.DocTestParser().get_doctest(doc, globs, f"{home}.{name}", inspect.getsourcefile(sys.modules[home]), 0)


def _run(test: doctest.DocTest) -> tuple[doctest.TestResults, str]:
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    runner.run(test, out=report.append)
    return doctest.TestResults(runner.failures, runner.tries), "".join(report)


@pytest.mark.parametrize("package, name", PUBLIC, ids=lambda v: v)
def test_public_name_examples_run(package, name):
    test = _doctest(package, name)
    assert test.examples, f"{package}.{name} has no example"
    results, report = _run(test)
    assert results.failed == 0, report


def test_a_wrong_example_fails():
    doc = ">>> 1 + 1\n3\n"
    test = doctest.DocTestParser().get_doctest(doc, {}, "wrong", None, 0)
    results, report = _run(test)
    assert results.failed == 1 and "Expected:\n    3\nGot:\n    2" in report


@pytest.mark.parametrize("package", TWINS)
def test_constant_examples_come_from_their_doc_comment(package):
    home, doc, _ = _docstring(package, "AGGREGATORS")
    assert home == f"{package}.aggregators"
    assert doc.startswith("Aggregator name -> aggregator function") and SECTION in doc
