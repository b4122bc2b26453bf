"""The appendix: the API reference covers every public name, and its build setup holds.

The strict book build (``jupyter-book build -W -n``) checks that every page
renders and every cross reference resolves. These tests check what the build
cannot see: that a new public name is not simply missing from the API pages,
that the pages only name modules and objects that exist, and that the Sphinx
extension the API pages rely on does what it claims.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import mtl_course.tf  # noqa: F401  (before tensorflow: quiets its start-up logs)

pytest.importorskip("sphinx")
from sphinx.ext.autodoc.mock import mock  # noqa: E402
from sphinx.pycode import ModuleAnalyzer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
API_PAGES = [BOOK / "api.md", *sorted((BOOK / "api").glob("*.md"))]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())

DIRECTIVE = re.compile(r"^\.\. (auto\w+):: (\S+)\n((?:[ ]{3}:[\w-]+:.*\n)*)", re.M)
OPTION = re.compile(r"^[ ]{3}:([\w-]+):[ ]*(.*)$", re.M)


@dataclass
class ModuleEntry:
    members: set[str] | None = None  # None: all members
    excluded: set[str] = field(default_factory=set)
    undoc: bool = False


@dataclass
class ApiPages:
    """What the ``eval-rst`` autodoc directives of the API pages document."""

    modules: dict[str, ModuleEntry] = field(default_factory=dict)  # automodule with :members:
    module_targets: set[str] = field(default_factory=set)  # every automodule
    objects: set[str] = field(default_factory=set)  # autoclass / autofunction / autodata ...

    @classmethod
    def parse(cls, pages: list[Path]) -> ApiPages:
        result = cls()
        for page in pages:
            for kind, target, option_text in DIRECTIVE.findall(page.read_text()):
                options = dict(OPTION.findall(option_text))
                if kind != "automodule":
                    result.objects.add(target)
                    continue
                result.module_targets.add(target)
                if "members" in options:
                    names = {n.strip() for n in options["members"].split(",") if n.strip()}
                    excluded = {n.strip() for n in options.get("exclude-members", "").split(",") if n.strip()}
                    result.modules[target] = ModuleEntry(names or None, excluded, "undoc-members" in options)
        return result

    def documents(self, public_module: str, name: str) -> bool:
        """Whether ``public_module.name`` appears on a page, in any module that holds it."""
        obj = getattr(importlib.import_module(public_module), name)
        homes = {public_module, *self.modules, *(t.rpartition(".")[0] for t in self.objects)}
        if inspect.isclass(obj) or inspect.isfunction(obj):
            homes.add(obj.__module__)
        return any(getattr(importlib.import_module(home), name, None) is obj
                   and self._documents_in(home, name, obj) for home in sorted(homes))

    def _documents_in(self, home: str, name: str, obj: object) -> bool:
        if f"{home}.{name}" in self.objects:
            return True
        entry = self.modules.get(home)
        if entry is None or name in entry.excluded:
            return False
        if entry.members is not None:
            return name in entry.members
        module = importlib.import_module(home)
        exported = getattr(module, "__all__", None)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            picked = name in exported if exported is not None else obj.__module__ == home
            return picked and (entry.undoc or bool(inspect.getdoc(obj)))
        # autodoc documents a module-level constant only when it has a doc comment
        return ("", name) in ModuleAnalyzer.for_module(home).find_attr_docs()


PAGES = ApiPages.parse(API_PAGES)


def _public_names(module_name: str) -> list[tuple[str, str]]:
    module = importlib.import_module(module_name)
    return [(module_name, name) for name in module.__all__]


PUBLIC = [
    *_public_names("mtl_course.torch"),
    *_public_names("mtl_course.tf"),
    *_public_names("mtl_course.data"),
    *_public_names("mtl_course.classical"),
    *_public_names("mtl_course.metrics"),
    *_public_names("mtl_course.objective"),
    *_public_names("mtl_course.core.aggregation"),
]


@pytest.mark.parametrize("module_name, name", PUBLIC, ids=lambda v: v)
def test_every_public_name_is_on_an_api_page(module_name, name):
    assert PAGES.documents(module_name, name), (
        f"{module_name}.{name} is public but no API page documents it: add its module to a page "
        "under book/api/ (automodule with :members:), or an autodata/autofunction directive")


def test_parser_reads_members_lists_and_exclusions():
    pages = ApiPages.parse([BOOK / "api" / "classical.md"])
    assert pages.modules["mtl_course.classical"].members is None
    assert pages.modules["mtl_course.classical.proximal"].members == {"FistaResult", "prox_squared_trace_norm"}
    assert pages.documents("mtl_course.classical", "fista")
    assert not pages.documents("mtl_course.torch", "fit")  # not on this page


def test_undocumented_constant_needs_an_explicit_directive():
    # ACTIVATIONS has no doc comment, so automodule alone would skip it.
    assert ("", "ACTIVATIONS") not in ModuleAnalyzer.for_module("mtl_course.core.model_config").find_attr_docs()
    without = ApiPages(modules={"mtl_course.core.model_config": ModuleEntry(undoc=True)})
    assert not without.documents("mtl_course.core.model_config", "ACTIVATIONS")
    assert PAGES.documents("mtl_course.core.model_config", "ACTIVATIONS")
    # AGGREGATORS has one (with its example), so automodule documents it
    assert ("", "AGGREGATORS") in ModuleAnalyzer.for_module("mtl_course.torch.aggregators").find_attr_docs()
    assert PAGES.documents("mtl_course.torch.aggregators", "AGGREGATORS")


def test_every_page_target_exists():
    for module_name in PAGES.module_targets:
        importlib.import_module(module_name)
    for target in PAGES.objects:
        module_name, _, name = target.rpartition(".")
        assert hasattr(importlib.import_module(module_name), name), f"{target} does not exist"
    for entry_module, entry in PAGES.modules.items():
        module = importlib.import_module(entry_module)
        for name in (entry.members or set()) | entry.excluded:
            assert hasattr(module, name), f"{entry_module}.{name} named on an API page does not exist"


def test_every_api_page_is_linked_from_the_overview():
    overview = (BOOK / "api.md").read_text()
    for page in (BOOK / "api").glob("*.md"):
        assert f"{{doc}}`api/{page.stem}`" in overview, f"book/api.md does not link {page.name}"


ROLE = re.compile(r"\{py:(?:class|func|mod|data|meth|attr)\}`~?([\w.]+)`")


@pytest.mark.parametrize("page", ["notation.md", "glossary.md"])
def test_appendix_references_name_real_objects(page):
    targets = ROLE.findall((BOOK / page).read_text())
    assert targets
    for target in targets:
        try:
            importlib.import_module(target)
            continue
        except ImportError:
            pass
        module_name, _, name = target.rpartition(".")
        assert hasattr(importlib.import_module(module_name), name), f"{page}: {target} does not exist"


def _glossary_terms() -> set[str]:
    text = (BOOK / "glossary.md").read_text()
    body = text.split("```{glossary}", 1)[1].split("\n```", 1)[0]
    return {line.strip().lower() for line in body.splitlines()
            if line and not line.startswith((" ", ":"))}


def test_glossary_has_the_core_terms_and_chapter_references_resolve():
    terms = _glossary_terms()
    for term in ("auxiliary task", "hard parameter sharing", "soft parameter sharing", "negative transfer",
                 "pareto optimal", "pareto front", "pareto stationary", "linear scalarization",
                 "gradient conflict", "task affinity", "expert", "gate"):
        assert term in terms
    sources = [*BOOK.glob("*.md"), *BOOK.glob("*.ipynb")]
    for path in sources:
        for used in re.findall(r"\{term\}`([^`<]+?)(?:\s*<([^>]+)>)?`", path.read_text()):
            target = (used[1] or used[0]).strip().lower()
            assert target in terms, f"{path.name}: {{term}}`{target}` is not in the glossary"


# ------------------------------------------------------- the build setup


def test_book_config_builds_the_api_without_any_framework():
    sphinx = CONFIG["sphinx"]
    assert {"sphinx.ext.autodoc", "sphinx.ext.napoleon"} <= set(sphinx["extra_extensions"])
    assert set(sphinx["config"]["autodoc_mock_imports"]) >= {"torch", "tensorflow", "keras"}
    assert sphinx["local_extensions"]["autodoc_mocked_bases"] == "book/_ext"


@pytest.mark.parametrize("target", ["mtl_course.torch.train.fit", "mtl_course.core.tasks.Task",
                                    "MultiTaskSplit", "Weighting"])
def test_nitpick_ignores_never_hide_this_package(target):
    for kind, pattern in CONFIG["sphinx"]["config"]["nitpick_ignore_regex"]:
        assert not (re.fullmatch(kind, "py:class") and re.fullmatch(pattern, target)), (kind, pattern)


@pytest.mark.parametrize("target", ["torch.Tensor", "tf.Tensor", "keras.Model", "np.ndarray",
                                    "numpy.ndarray", "nn.Module", "collections.abc.Sequence"])
def test_nitpick_ignores_cover_external_types(target):
    patterns = CONFIG["sphinx"]["config"]["nitpick_ignore_regex"]
    assert any(re.fullmatch(kind, "py:class") and re.fullmatch(pattern, target) for kind, pattern in patterns)


def _extension():
    spec = importlib.util.spec_from_file_location("autodoc_mocked_bases", BOOK / "_ext" / "autodoc_mocked_bases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    connected = {}
    app = SimpleNamespace(
        setup_extension=lambda name: None,
        connect=lambda event, handler: connected.setdefault(event, handler),
        config=SimpleNamespace(autodoc_type_aliases={}, autodoc_typehints="signature",
                               autodoc_typehints_format="short"),
    )
    module.setup(app)
    return module, app, connected


def test_extension_gives_mocked_subclasses_their_own_init_signature():
    ext, app, connected = _extension()
    assert connected["autodoc-process-signature"] is ext.constructor_signature
    with mock(["fakeframework"]):
        import fakeframework

        class Model(fakeframework.Module):
            def __init__(self, width: int, depth: int = 2) -> None:
                self.width = width

    assert ext.constructor_signature(app, "class", "Model", Model, None, "(*args, **kwargs)", None) == (
        "(width: int, depth: int = 2)", None)
    assert ext.constructor_signature(app, "function", "f", Model, None, "(x)", None) is None


def test_extension_lets_annotations_with_mocked_types_evaluate():
    _extension()
    with mock(["fakeframework"]):
        import fakeframework

        tensor = fakeframework.Tensor
    assert typing.get_args(tensor | None) == (tensor, type(None))
    assert typing.get_args(int | tensor) == (int, tensor)


def test_extension_drops_a_type_docstring_from_undocumented_constants_only():
    ext, app, connected = _extension()
    handler = connected["autodoc-process-docstring"]
    lines = ["Built-in immutable sequence."]  # tuple.__doc__
    handler(app, "data", "mtl_course.core.model_config.ACTIVATIONS", ("relu",), None, lines)
    assert lines == []
    lines = ["Weightings fit can build by name."]  # WEIGHTINGS has a docstring of its own
    handler(app, "data", "mtl_course.torch.weighting.WEIGHTINGS", {"equal": None}, None, lines)
    assert lines == ["Weightings fit can build by name."]
    lines = ["A function."]
    handler(app, "function", "mtl_course.metrics.mse", len, None, lines)
    assert lines == ["A function."]
