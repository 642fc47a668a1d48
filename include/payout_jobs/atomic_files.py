"""Files written whole or not at all: a reader sees the old file or the new one, never half."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write: Callable[[Any], None], newline: str | None = None) -> None:
    """Write ``path`` through ``write(handle)`` into a temporary file beside it, flushed to disk,
    then renamed into place (the folder is created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, then renamed
        "w", dir=path.parent, prefix=f".{path.name}.", delete=False, encoding="utf-8", newline=newline
    )
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
