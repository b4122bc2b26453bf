"""Sphinx extension: figures, equations and exercises numbered per chapter.

Sphinx numbers figures, equations (``math_numfig``) and exercises
(sphinx-exercise) through the section numbers of a numbered toctree; without
one it counts on across the whole book, so chapter 2 opened with equation (6)
and Exercise 5. A numbered toctree would print the chapter number a second
time, since each chapter's title already carries it ("4. Hard parameter
sharing"). So after Sphinx has assigned its numbers, this extension renumbers
every numbered item of a chapter ``book/NN_name`` as ``NN.k`` in document
order, per kind (equation (4.2), Exercise 4.3, Fig. 4.1); other pages count
from 1. Cross-references (``{numref}``, ``{eq}``, ``{ref}`` to an exercise)
read the same numbers.

The prose names exercises as "(exercise {ref}`label`)"; such a reference
renders as the number alone ("exercise 4.3"), not "exercise Exercise 4.3".
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.transforms.post_transforms import SphinxPostTransform

_CHAPTER = re.compile(r"^book/(\d+)_[^/]*$")


def chapter_number(docname: str) -> int | None:
    """The chapter number of a document ``book/NN_name``, else None."""
    match = _CHAPTER.search(docname)
    return int(match.group(1)) if match else None


def _renumber(app: Sphinx, env: BuildEnvironment) -> list[str]:
    for docname, kinds in env.toc_fignumbers.items():
        prefix = chapter_number(docname)
        for ids in kinds.values():
            # Sphinx fills each dict in document order.
            for k, figure_id in enumerate(ids, start=1):
                ids[figure_id] = (k,) if prefix is None else (prefix, k)
    # Sphinx compares with the numbers it would have given, so it cannot tell
    # which pages changed: every page with a number is written again.
    return sorted(docname for docname, kinds in env.toc_fignumbers.items() if kinds)


class ExerciseNumberAfterTheWordExercise(SphinxPostTransform):
    """A reference to an exercise right after the word "exercise" shows the number only."""

    # After sphinx-exercise turns {ref} to an exercise into a numref (5),
    # before Sphinx resolves references (10).
    default_priority = 6

    def run(self, **kwargs: Any) -> None:
        exercises = getattr(self.env, "sphinx_exercise_registry", {})
        for node in self.document.findall(addnodes.pending_xref):
            if (node.get("reftype") != "numref" or node.get("refexplicit")
                    or node.get("reftarget") not in exercises):
                continue
            siblings = node.parent.children[:node.parent.index(node)]
            before = ""
            while siblings and isinstance(siblings[-1], nodes.Text) and not before.strip():
                before = siblings.pop().astext() + before
            if re.search(r"exercise\s*$", before, re.I):
                node["refexplicit"] = True
                number = nodes.literal("", "{number}", classes=node.children[0].get("classes", []))
                node.children[0] = number
                number.parent = node


def setup(app: Sphinx) -> dict[str, Any]:
    # After Sphinx's own TocTreeCollector (priority 500) has numbered.
    app.connect("env-get-updated", _renumber, priority=900)
    app.add_post_transform(ExerciseNumberAfterTheWordExercise)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
