"""Sphinx extension: what a reader of the rendered book meets, fixed.

* **Sidebar buttons.** pydata-sphinx-theme 0.17 and sphinx-book-theme 1.3 put
  two ``.primary-toggle`` (and two ``.secondary-toggle``) buttons on a page but
  bind their handlers to the first one only, a header button that is hidden
  (upstream pydata-sphinx-theme#2451, sphinx-book-theme#988 and #999). So the
  menu button of a phone and the "collapse sidebar" button of a desktop did
  nothing. ``static/reader_fixes.js`` forwards a click on any other toggle to
  the bound one.
* **Duplicated inline scripts.** Sphinx 7.4 keeps an inline script that an
  extension adds after the builder started twice (once with the file name
  ``None``, once with ``''``), so sphinx-thebe's ``const THEBE_JS_URL = ...``
  was declared twice and every page logged a ``SyntaxError``. Each page keeps
  the first copy of each script.
* **First visit.** The theme's head script sets an empty colour mode when
  nothing is stored yet, and the theme then logs an error; the script sets
  the theme's default, "auto", first.
* **Layout** (``static/reader_fixes.css``): long output lines wrap; code wraps
  on screens wide enough to read it wrapped and scrolls on phones; display
  equations and tables scroll inside their own box on small screens, with a
  shadow at the edge that hides content.

``tests/browser`` checks each of these in a real browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config

STATIC = Path(__file__).resolve().parent / "static"


def _add_static_path(app: Sphinx, config: Config) -> None:
    # Registered here rather than in _static/: Jupyter Book adds every .js and
    # .css file under a static path it knows of to every page.
    config.html_static_path.append(str(STATIC))


def _deduplicate_scripts(app: Sphinx, pagename: str, templatename: str,
                         context: dict[str, Any], doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = (getattr(script, "filename", script) or "",
               tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", _add_static_path)
    app.connect("html-page-context", _deduplicate_scripts, priority=900)
    app.add_css_file("reader_fixes.css")
    app.add_js_file("reader_fixes.js")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
