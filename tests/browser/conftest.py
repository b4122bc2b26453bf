"""The rendered book in a real browser: headless Chromium driven by Playwright.

Runs only with ``--browser`` (README, "check the rendered book in a browser"),
on the book built into ``_build/html``. The pages are served on 127.0.0.1 and
every other request is aborted, so the browser sees what an offline reader
sees. Chromium comes from the system's packages (Debian: ``apt-get install
chromium``); Playwright from PyPI drives it, without ``playwright install``.
Without Chromium or Playwright the suite skips and says how to install them;
under CI (``CI=true``) it fails instead, so that CI never passes by skipping.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
BUILD_COMMAND = "jupyter-book build . -W -n --keep-going"
INSTALL_HINT = (
    "install Chromium from your system's packages (Debian/Ubuntu: "
    "`apt-get install chromium fonts-dejavu-core fonts-liberation`) and the driver with "
    "`pip install -e \".[browser]\"` (never `playwright install`); or set CHROMIUM to a "
    "Chromium or Chrome binary")
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 375, "height": 812}


def chromium_path() -> str | None:
    candidates = [os.environ.get("CHROMIUM"), "chromium", "chromium-browser",
                  "google-chrome", "google-chrome-stable"]
    for candidate in filter(None, candidates):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _unavailable(reason: str) -> None:
    message = f"{reason}: {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must run the browser suite, not skip it; {message}")
    pytest.skip(message)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--browser", default=False):
        return
    skip = pytest.mark.skip(reason=(
        "the browser suite runs with `python -m pytest tests/browser --browser` "
        "on the built book (README: check the rendered book in a browser)"))
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(skip)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
        pass


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    """The built book, served on 127.0.0.1 at a free port."""
    if not (SITE / "index.html").exists():
        pytest.fail(f"no built book in {SITE}: run `{BUILD_COMMAND}` first")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed")
    executable = chromium_path()
    if executable is None:
        _unavailable("no Chromium found")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


class Offline:
    """A browser context that reaches only the local server, and records the rest."""

    def __init__(self, browser: Any, base_url: str, viewport: dict[str, int]) -> None:
        self.base_url = base_url
        self.blocked: list[str] = []
        self.context = browser.new_context(viewport=viewport)
        self.context.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(self.base_url) or url.startswith("data:"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def open(self, path: str) -> tuple[Any, list[str]]:
        """A new page at ``path``, loaded, and the list its JavaScript errors go to."""
        page = self.context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text)
                if message.type == "error" else None)
        page.goto(self.base_url + path, wait_until="load")
        return page, errors


@pytest.fixture(scope="session")
def desktop(browser: Any, base_url: str) -> Iterator[Offline]:
    offline = Offline(browser, base_url, DESKTOP)
    yield offline
    offline.context.close()


@pytest.fixture(scope="session")
def phone(browser: Any, base_url: str) -> Iterator[Offline]:
    offline = Offline(browser, base_url, PHONE)
    yield offline
    offline.context.close()


@pytest.fixture(scope="session")
def book_config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "_config.yml").read_text())
