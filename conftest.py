"""Repository-wide pytest configuration.

`pytest` runs the unit tests in tests/ and, through nbval, every chapter in
book/ (see pyproject.toml). Kernels that nbval starts inherit this process's
environment, so the environment set here is the chapters' environment too. It
is the same one the chapter execution script uses (one definition, in
mtl_course.tools.execute_chapters): TensorFlow's start-up logs silenced, tqdm
bars off, a fixed hash seed, so stored outputs and re-executions agree.

At the end of a run that executed chapters, a table gives each chapter's
execution time, so the per-chapter CPU budget is visible in every CI log.
"""

from collections import defaultdict

from mtl_course.tools.execute_chapters import apply_reproducible_environment

apply_reproducible_environment()

collect_ignore_glob = ["_build/*", "**/.ipynb_checkpoints/*"]

_chapter_seconds: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _chapter_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _chapter_seconds:
        return
    terminalreporter.section("chapter execution times (nbval, seconds)")
    for path, seconds in sorted(_chapter_seconds.items()):
        terminalreporter.write_line(f"{seconds:7.1f}  {path}")


def pytest_addoption(parser):
    parser.addoption(
        "--browser", action="store_true",
        help="also run tests/browser: the built book (_build/html) read in headless Chromium")
