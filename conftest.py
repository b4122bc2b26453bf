"""Repository-wide pytest configuration.

`pytest` runs the unit tests in tests/ and, through nbval, every chapter in
book/ (see pyproject.toml). Kernels that nbval starts inherit this process's
environment, so the environment set here is the chapters' environment too. It
is the same one the chapter execution script uses (one definition, in
mtl_course.tools.execute_chapters): TensorFlow's start-up logs silenced, tqdm
bars off, a fixed hash seed, so stored outputs and re-executions agree.
"""

from mtl_course.tools.execute_chapters import apply_reproducible_environment

apply_reproducible_environment()

collect_ignore_glob = ["_build/*", "**/.ipynb_checkpoints/*"]
