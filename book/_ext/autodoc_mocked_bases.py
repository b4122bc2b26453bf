"""Sphinx extension: autodoc of mtl_course, whose PyTorch / TensorFlow imports are mocked.

The book builds without PyTorch or TensorFlow installed, so ``_config.yml``
mocks them (``autodoc_mock_imports``). Sphinx's mock objects get two things
wrong for this package, and this extension fixes both (it patches Sphinx's
mock class, ``_MockObject``; ``tests/book/test_api_docs.py`` checks the patch):

* A class such as ``class MMoE(nn.Module)`` inherits the mock's
  ``__new__(*args, **kwargs)``, and autodoc, which reads ``__new__`` before
  ``__init__``, would show every model as ``MMoE(*args, **kwargs)``. The
  ``autodoc-process-signature`` hook below puts back the signature of the
  class's own ``__init__``.
* A mock does not support ``|``, so an annotation such as
  ``np.ndarray | torch.Tensor`` cannot be evaluated; autodoc then leaves every
  annotation of that function as an unresolved string (``Weighting``, ``Path``)
  that the nitpicky build cannot link. Giving mocks ``__or__`` / ``__ror__``
  (a ``typing.Union``, as for real classes) lets the annotations evaluate.

It also stops a module constant without a docstring of its own (``ACTIVATIONS``, a
tuple) from being described by its type's docstring (``tuple.__doc__``).
"""

from __future__ import annotations

import typing
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import PycodeError
from sphinx.ext.autodoc.mock import _MockObject
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import inspect as sphinx_inspect


def _has_mocked_new(obj: Any) -> bool:
    return isinstance(obj, type) and getattr(obj, "__new__", None) is _MockObject.__new__


def constructor_signature(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                          signature: str | None,
                          return_annotation: str | None) -> tuple[str, str | None] | None:
    """``autodoc-process-signature`` handler: ``__init__``'s signature for mocked subclasses."""
    if what != "class" or not _has_mocked_new(obj):
        return None
    init = getattr(obj, "__init__", None)
    if init is None or getattr(init, "__qualname__", "").startswith("_MockObject"):
        return None
    sig = sphinx_inspect.signature(init, bound_method=True,
                                   type_aliases=app.config.autodoc_type_aliases)
    text = sphinx_inspect.stringify_signature(
        sig,
        show_annotation=app.config.autodoc_typehints in ("signature", "both"),
        show_return_annotation=False,
        unqualified_typehints=app.config.autodoc_typehints_format == "short",
    )
    return text, return_annotation


def drop_type_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                        lines: list[str]) -> None:
    """``autodoc-process-docstring`` handler: a constant's docstring is never its type's."""
    if what != "data" or getattr(obj, "__doc__", None) != getattr(type(obj), "__doc__", None):
        return
    modname, _, attr = name.rpartition(".")
    try:
        documented = ("", attr) in ModuleAnalyzer.for_module(modname).find_attr_docs()
    except PycodeError:
        return
    if not documented:
        lines.clear()


def _union(left: Any, right: Any) -> Any:
    return typing.Union[left, right]  # noqa: UP007 (mocks do not support the | operator)


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinx.ext.autodoc")
    if "__or__" not in vars(_MockObject):  # (hasattr would find type.__or__)
        _MockObject.__or__ = lambda self, other: _union(self, other)
        _MockObject.__ror__ = lambda self, other: _union(other, self)
    app.connect("autodoc-process-signature", constructor_signature)
    app.connect("autodoc-process-docstring", drop_type_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
