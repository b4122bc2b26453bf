"""The chapters' Markdown says what its author meant (issue 16, items 3 and 5).

Two ways a hard-wrapped paragraph turns into something else in CommonMark:

* a wrapped line that starts with ``1)``, ``+ `` or ``- `` opens a list in the
  middle of the paragraph (chapter 4's solutions 13 and 14 were garbled so);
* a numbered line that directly follows a paragraph line stays inside the
  paragraph unless it is numbered 1 (the intro's course map ran Parts II-IV
  together so).

It also finds control characters, the trace of a backslash lost to a string
escape (``\big`` written as a backspace and ``ig``).

Both are found with the parser the book uses (MyST's markdown-it), inside
directives (exercises, solutions) too.
"""

import re
from pathlib import Path

import nbformat
import pytest
from markdown_it.renderer import RendererHTML
from myst_parser.config.main import MdParserConfig
from myst_parser.parsers.mdit import create_md_parser

from mtl_course.tools.execute_chapters import chapter_paths

BOOK = Path(__file__).resolve().parents[2] / "book"
MARKDOWN = create_md_parser(
    MdParserConfig(enable_extensions={"dollarmath", "amsmath", "colon_fence", "deflist", "substitution"}),
    RendererHTML)
OPTION = re.compile(r"^:[\w-]+:")
LIST_MARKER = re.compile(r"^\s*(\d+[.)]|[-+*])\s")


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def wrapping_accidents(text: str, first_line: int = 1) -> list[str]:
    """Lists opened by a wrapped line, list lines swallowed by a paragraph, stray control characters."""
    lines = text.split("\n")
    found = [f"line {first_line + k}: a control character {m.group()!r} (a backslash lost to an "
             f"escape, such as \\b or \\t?): {line[:60]!r}"
             for k, line in enumerate(lines) if (m := CONTROL.search(line))]
    tokens = MARKDOWN.parse(text)
    for i, token in enumerate(tokens):
        if (token.type in ("bullet_list_open", "ordered_list_open") and i
                and tokens[i - 1].type == "paragraph_close"):
            opening = next(t for t in reversed(tokens[:i]) if t.type == "paragraph_open")
            last = lines[opening.map[1] - 1].rstrip()
            if opening.map[1] == token.map[0] and not last.endswith(":"):
                found.append(f"line {first_line + token.map[0]}: a wrapped line starts a list: "
                             f"{lines[token.map[0]][:60]!r}")
        if token.type == "inline" and token.map:
            for k, line in enumerate(token.content.split("\n")[1:], start=1):
                if LIST_MARKER.match(line):
                    found.append(f"line {first_line + token.map[0] + k}: a list line is part of a "
                                 f"paragraph (add a blank line before it): {line[:60]!r}")
        if token.type in ("fence", "colon_fence") and token.info.strip().startswith("{"):
            body = token.content.split("\n")
            skip = 0
            while skip < len(body) and OPTION.match(body[skip]):
                skip += 1
            found += wrapping_accidents("\n".join(body[skip:]), first_line + token.map[0] + 1 + skip)
    return found


def _sources() -> list[tuple[str, str]]:
    sources = []
    for path in chapter_paths(BOOK):
        for k, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "markdown":
                sources.append((f"{path.name} cell {k}", cell.source))
    sources += [(str(path.relative_to(BOOK)), path.read_text()) for path in sorted(BOOK.rglob("*.md"))]
    return sources


@pytest.mark.parametrize("where,text", [pytest.param(where, text, id=where) for where, text in _sources()])
def test_no_wrapped_line_changes_the_structure(where, text):
    assert wrapping_accidents(text) == [], where


def test_the_check_finds_both_accidents():
    wrapped = "A head has $(64 + 1) \\cdot 32 + (32 +\n1) C$ parameters.\n"
    assert len(wrapping_accidents(wrapped)) == 1
    inside = "```{solution} ex\n:class: dropdown\n\nso $a\n+ b$ holds.\n```\n"
    assert "line 5" in wrapping_accidents(inside)[0]
    swallowed = "**Part II**\n4. *Hard sharing*\n5. *Soft sharing*\n"
    assert len(wrapping_accidents(swallowed)) == 2
    assert "control character" in wrapping_accidents("$\x08ig(x\big)$")[0]
    intended = "Two steps:\n1. one\n2. two\n\nText.\n\n- a\n- b\n"
    assert wrapping_accidents(intended) == []
