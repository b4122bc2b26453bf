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
CHAPTERS = [page for page in PAGES if re.fullmatch(r"book/\d+_\w+\.html", page)]
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
            if kind == "desktop":
                result["leaks"] = page.evaluate(ANSWERS_NEAR_EXERCISES)
                result["labels"] = page.evaluate(LABELS)
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
def test_no_answer_in_sight_of_an_exercise(desktop, path):
    """Issue 18: no checker's "Correct" in sight, and no code near an exercise holding its answer."""
    r = report(desktop, "desktop", path)
    assert not r["visibleCorrect"], f"{path}: a checker's answer is visible: {r['visibleCorrect'][:3]}"
    leaks = r["leaks"]
    assert not leaks, f"{path}: code next to an exercise gives its answer away: {leaks[:3]}"


# For each exercise, the code cells that follow it up to the next exercise or
# section: numbers (two characters or more, not part of a name) and bracketed
# lists of numbers that appear in
# its solution (collapsed on the page, or on the chapter's solutions page) but
# not in the exercise itself are its answer.
ANSWERS_NEAR_EXERCISES = """async () => {
  const tokens = (text) => [
    ...(text.match(/(?<![\\w.])\\d+(?:\\.\\d+)?(?!\\w|\\.\\d)/g) || []).filter((t) => t.length >= 2),
    ...(text.match(/\\[[^\\[\\]]*\\d[^\\[\\]]*,[^\\[\\]]*\\]/g) || []).map((t) => t.replace(/\\s+/g, "")),
  ];
  const solutions = new Map();
  const collect = (root) => {
    for (const solution of root.querySelectorAll("div.solution")) {
      const link = solution.querySelector(".admonition-title a[href*='#']");
      if (!link) continue;
      const target = decodeURIComponent(link.getAttribute("href").split("#")[1]);
      solutions.set(target, (solutions.get(target) || "") + " " +
        [...solution.children].slice(1).map((el) => el.textContent).join(" "));
    }
  };
  collect(document);
  if (/\\/book\\/\\d+_[^/]+\\.html$/.test(location.pathname)) {  // a chapter
    const response = await fetch(location.pathname.replace(/\\/([^/]+)$/, "/solutions/$1"));
    if (response.ok) collect(new DOMParser().parseFromString(await response.text(), "text/html"));
  }
  const leaks = [];
  for (const exercise of document.querySelectorAll("div.exercise")) {
    const answer = new Set(tokens(solutions.get(exercise.id) || ""));
    const given = new Set(tokens(exercise.textContent));
    for (let el = exercise.nextElementSibling; el; el = el.nextElementSibling) {
      if (el.matches("div.exercise, section, h1, h2, h3")) break;
      if (!el.matches("div.cell") || !el.checkVisibility()) continue;
      const found = tokens(el.innerText).filter((t) => answer.has(t) && !given.has(t));
      if (found.length) leaks.push(`${exercise.id}: ${[...new Set(found)].join(", ")}`);
    }
  }
  return leaks;
}"""


LABELS = """() => ({
  exercises: [...document.querySelectorAll("div.exercise > .admonition-title")]
    .map((el) => el.innerText.trim()),
  equations: [...document.querySelectorAll("span.eqno")].map((el) => el.innerText.trim()),
  text: document.querySelector("main").innerText,
})"""


@pytest.mark.parametrize("path", CHAPTERS)
def test_numbers_are_per_chapter(desktop, path):
    number = int(re.search(r"/(\d+)_", path).group(1))
    labels = report(desktop, "desktop", path)["labels"]
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


def test_a_solution_is_one_click_away_and_hidden_until_then(desktop):
    """Collapsed solutions open and close; solutions on their own page are one link away."""
    page, errors = desktop.open(CHAPTER)
    shown = "checkVisibility({checkOpacity: true, checkVisibilityCSS: true})"
    try:
        assert not page.evaluate(f"""[...document.querySelectorAll('div.solution')]
            .some((s) => [...s.children].slice(1).some((el) => el.{shown}))"""), (
            "a solution is in sight before the reader asks for it")
        if page.locator("div.solution.dropdown").count():
            body = "document.querySelector('div.solution.dropdown section')"
            title = page.locator("div.solution.dropdown .admonition-title").first
            title.click()
            becomes_true(page, f"() => {body}.{shown}", "clicking a solution's title did not open it")
            title.click()
            becomes_true(page, f"() => !{body}.{shown}", "a second click did not close the solution")
        else:
            exercise = page.evaluate("document.querySelector('div.exercise').id")
            page.locator("a", has_text=re.compile(r"^Solution$")).first.click()
            becomes_true(page, f"""() => [...document.querySelectorAll('div.solution')].some((s) =>
                s.querySelector(".admonition-title a[href$='#{exercise}']") && s.{shown})""",
                         f"the first 'Solution' link does not lead to the solution of {exercise}")
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
