"""Every page of the built book, read in headless Chromium, offline.

Per page, at 1440 px: math typeset (no raw TeX), every image loaded, figures
captioned with alt text, no JavaScript error, no request leaving the machine,
no code or output line cut off, per-chapter numbering, no answer in sight of a
collapsed solution. At 375 px: nothing wider than the screen except boxes that
scroll. Once: the phone menu and contents buttons, the desktop collapse
button, a solution dropdown, the Colab launch link, the course map.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INSPECT = (Path(__file__).parent / "inspect_page.js").read_text()


def book_pages() -> list[str]:
    """Every page of the table of contents, as a path under ``_build/html``."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            files.extend(section["file"] for section in chapter.get("sections", []))
    return [f"{file}.html" for file in files]


PAGES = book_pages()
CHAPTERS = [page for page in PAGES if re.search(r"/\d+_\w+\.html$", page)]
CHAPTER = "book/04_hard_sharing.html"

_reports: dict[tuple[str, str], dict[str, Any]] = {}


def report(offline: Any, kind: str, path: str) -> dict[str, Any]:
    """What inspect_page.js measures on ``path`` (each page loaded once per width)."""
    key = (kind, path)
    if key not in _reports:
        blocked_before = len(offline.blocked)
        page, errors = offline.open(path)
        try:
            result = page.evaluate(INSPECT)
        finally:
            page.close()
        result["errors"] = errors
        result["blocked"] = offline.blocked[blocked_before:]
        _reports[key] = result
    return _reports[key]


@pytest.mark.parametrize("path", PAGES)
def test_math_is_typeset(desktop, path):
    r = report(desktop, "desktop", path)
    if r["mathCount"]:
        assert r["mathjax"] == "typeset", f"{path}: {r['mathjax']} (raw TeX on {r['mathCount']} formulas)"
    assert not r["rawMath"], f"{path}: formulas left as raw TeX: {r['rawMath'][:5]}"
    assert not r["mathErrors"], f"{path}: MathJax errors: {r['mathErrors'][:5]}"
    assert not r["strayTex"], f"{path}: TeX shown as text: {r['strayTex'][:5]}"


@pytest.mark.parametrize("path", PAGES)
def test_images_load_and_figures_are_described(desktop, path):
    r = report(desktop, "desktop", path)
    assert not r["brokenImages"], f"{path}: images that did not load: {r['brokenImages']}"
    assert not r["uncaptioned"], f"{path}: figures without a caption: {r['uncaptioned']}"
    assert not r["badAlt"], f"{path}: figures without a real alt text: {r['badAlt']}"


@pytest.mark.parametrize("path", PAGES)
def test_no_script_error_and_nothing_fetched_from_outside(desktop, path):
    r = report(desktop, "desktop", path)
    assert not r["errors"], f"{path}: JavaScript errors: {r['errors']}"
    assert not r["blocked"], f"{path}: requests that need the network: {r['blocked']}"


@pytest.mark.parametrize("path", PAGES)
def test_code_and_outputs_stay_in_the_column_at_1440px(desktop, path):
    r = report(desktop, "desktop", path)
    assert not r["cutCode"], f"{path}: lines running out of their box: {r['cutCode'][:5]}"
    assert not r["tooWide"], f"{path}: wider than the window: {r['tooWide'][:5]}"


@pytest.mark.parametrize("path", PAGES)
def test_nothing_wider_than_a_phone_except_scrolling_boxes(phone, path):
    r = report(phone, "phone", path)
    assert not r["tooWide"], f"{path} at 375 px: wider than the screen: {r['tooWide'][:8]}"
    assert r["pageWidth"] <= r["width"], f"{path} at 375 px: the page scrolls sideways"
    assert not r["noScrollHint"], f"{path} at 375 px: boxes that scroll with no hint: {r['noScrollHint']}"
    assert not r["errors"], f"{path} at 375 px: JavaScript errors: {r['errors']}"


@pytest.mark.parametrize("path", CHAPTERS)
def test_no_answer_beside_a_collapsed_solution(desktop, path):
    """Issue 18: a checker's "Correct" output or the solution's numbers in sight."""
    r = report(desktop, "desktop", path)
    assert not r["visibleCorrect"], f"{path}: a checker's answer is visible: {r['visibleCorrect'][:3]}"
    page, _ = desktop.open(path)
    try:
        leaks = page.evaluate(ANSWERS_BESIDE_SOLUTIONS)
    finally:
        page.close()
    assert not leaks, f"{path}: code beside a collapsed solution gives its answer: {leaks[:3]}"


# For each collapsed solution, the code cells that follow it up to the next
# exercise: numbers (two characters or more) and bracketed lists that appear in
# the solution but not in the exercise are its answer.
ANSWERS_BESIDE_SOLUTIONS = """() => {
  const tokens = (text) => new Set([
    ...(text.match(/\\d+(?:\\.\\d+)?/g) || []).filter((t) => t.length >= 2),
    ...(text.match(/\\[[^\\[\\]]+\\]/g) || []).map((t) => t.replace(/\\s+/g, "")),
  ]);
  const leaks = [];
  for (const solution of document.querySelectorAll("div.solution.dropdown, div.solution.toggle")) {
    const exercise = document.getElementById(
      (solution.querySelector("a.reference") || {}).hash?.slice(1) || "");
    const given = tokens(exercise ? exercise.innerText : "");
    const answer = tokens(solution.innerText.replace(/^.*\\n/, ""));
    for (let el = solution.nextElementSibling; el; el = el.nextElementSibling) {
      if (el.matches("div.exercise, section, h1, h2, h3")) break;
      if (!el.matches("div.cell")) continue;
      const input = el.querySelector(".cell_input");
      if (!input || !input.checkVisibility()) continue;
      const code = input.innerText;
      const list = code.match(/\\[[^\\[\\]]+\\]/g) || [];
      const found = [...(code.match(/\\d+(?:\\.\\d+)?/g) || []), ...list.map((t) => t.replace(/\\s+/g, ""))]
        .filter((t) => answer.has(t) && !given.has(t));
      if (found.length) leaks.push(`${solution.id || "solution"}: ${[...new Set(found)].join(", ")}`);
    }
  }
  return leaks;
}"""


@pytest.mark.parametrize("path", CHAPTERS)
def test_numbers_are_per_chapter(desktop, path):
    number = int(re.search(r"/(\d+)_", path).group(1))
    page, _ = desktop.open(path)
    try:
        labels = page.evaluate("""() => ({
          exercises: [...document.querySelectorAll("div.exercise > .admonition-title")]
            .map((el) => el.innerText.trim()),
          equations: [...document.querySelectorAll("span.eqno")].map((el) => el.innerText.trim()),
          text: document.querySelector("main").innerText,
        })""")
    finally:
        page.close()
    assert labels["exercises"], f"{path} shows no exercise"
    for title in labels["exercises"]:
        assert re.match(rf"Exercise {number}\.\d+\b", title), f"{path}: exercise titled {title!r}"
    for eqno in labels["equations"]:
        assert re.match(rf"\({number}\.\d+\)", eqno), f"{path}: equation numbered {eqno!r}"
    repeated = re.findall(r"[Ee]xercise\s+Exercise \d", labels["text"])
    assert not repeated, f"{path}: {repeated}"


def becomes_true(page: Any, condition: str, message: str, timeout: int = 3000) -> None:
    """Wait until the JavaScript ``condition`` holds in ``page``; fail with ``message`` if not."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, timeout=timeout)
    except PlaywrightTimeout:
        pytest.fail(message)


def test_phone_menu_and_contents_buttons_open_their_panels(phone):
    page, errors = phone.open(CHAPTER)
    try:
        page.locator(".primary-toggle >> visible=true").first.click()
        becomes_true(page, """() => {
            const dialog = document.querySelector("#pst-primary-sidebar-modal");
            const link = dialog && dialog.querySelector("a[href='05_soft_sharing.html']");
            return dialog.open && link && link.checkVisibility();
          }""", "at 375 px the menu button did not open the navigation")
        page.keyboard.press("Escape")
        becomes_true(page, "() => !document.querySelector('#pst-primary-sidebar-modal').open",
                     "Escape did not close the navigation")
        page.locator(".secondary-toggle >> visible=true").first.click()
        becomes_true(page, """() => {
            const dialog = document.querySelector("#pst-secondary-sidebar-modal");
            const link = dialog && dialog.querySelector("nav a");
            return dialog.open && link && link.checkVisibility();
          }""", "at 375 px the contents button did not open 'On this page'")
    finally:
        page.close()
    assert not errors, errors


SIDEBAR_VISIBILITY = "getComputedStyle(document.querySelector('#pst-primary-sidebar')).visibility"


def test_desktop_collapse_button_hides_and_shows_the_sidebar(desktop):
    page, errors = desktop.open(CHAPTER)
    try:
        article = page.locator("article.bd-article")
        narrow = article.bounding_box()["width"]
        assert page.evaluate(SIDEBAR_VISIBILITY) == "visible"
        page.locator(".primary-toggle >> visible=true").first.click()
        becomes_true(page, f"() => {SIDEBAR_VISIBILITY} === 'hidden'",
                     "at 1440 px the collapse button did not hide the sidebar")
        assert not page.evaluate("document.querySelector('#pst-primary-sidebar-modal').open"), (
            "on a desktop the button opened the phone dialog instead of collapsing the sidebar")
        becomes_true(page, f"() => document.querySelector('article.bd-article')"
                           f".getBoundingClientRect().width > {narrow}",
                     "the article did not widen when the sidebar collapsed")
        page.locator(".primary-toggle >> visible=true").first.click()
        becomes_true(page, f"() => {SIDEBAR_VISIBILITY} === 'visible'",
                     "a second click did not bring the sidebar back")
    finally:
        page.close()
    assert not errors, errors


def test_solution_dropdown_opens_and_closes(desktop):
    page, errors = desktop.open(CHAPTER)
    body = "document.querySelector('div.solution.dropdown section')"
    shown = "checkVisibility({checkOpacity: true, checkVisibilityCSS: true})"
    try:
        assert not page.evaluate(f"{body}.{shown}"), (
            "a solution is open before the reader asks for it")
        title = page.locator("div.solution.dropdown .admonition-title").first
        title.click()
        becomes_true(page, f"() => {body}.{shown}", "clicking a solution's title did not open it")
        title.click()
        becomes_true(page, f"() => !{body}.{shown}", "a second click did not close the solution")
    finally:
        page.close()
    assert not errors, errors


def test_colab_launch_link(desktop, book_config):
    repository = book_config["repository"]
    owner_repo = repository["url"].removeprefix("https://github.com/")
    expected = (f"{book_config['launch_buttons']['colab_url']}/github/{owner_repo}/blob/"
                f"{repository['branch']}/{repository['path_to_book']}{CHAPTER.removesuffix('.html')}.ipynb")
    expected = expected.replace("//book", "/book")
    page, _ = desktop.open(CHAPTER)
    try:
        page.locator(".dropdown-launch-buttons button").first.click()
        becomes_true(page, f"() => [...document.querySelectorAll('a')].some("
                           f"(a) => a.href === {expected!r} && a.checkVisibility())",
                     f"the launch menu shows no Colab link {expected}")
    finally:
        page.close()


def test_course_map_lists_every_part(desktop):
    page, _ = desktop.open("book/intro.html")
    try:
        lists = page.evaluate("""() => [...document.querySelectorAll("#the-course-map ol")]
            .map((ol) => [ol.start, ol.children.length])""")
    finally:
        page.close()
    assert lists == [[1, 3], [4, 3], [7, 3], [10, 5]], lists
