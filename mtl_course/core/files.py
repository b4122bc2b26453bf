"""Writing files safely (framework-free): the checkpoints of both twins go through here."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then move it onto ``path``.

    ``os.replace`` within one folder is atomic, so ``path`` holds either its
    previous content or the complete new one, never a truncated file (a full
    disk or an exception during ``write`` leaves the old file and no
    temporary file behind).

    Examples:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "a.bin")
        >>> atomic_write(path, lambda f: f.write(b"ok"))
        >>> open(path, "rb").read()
        b'ok'
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
