"""Atomic file writes: nothing a user produced is left half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    The temporary file lives in the destination folder, so the final
    ``os.replace`` is atomic: readers see the old file or the new one, never
    a partial one.

    Args:
        path: Destination file. Its parent folder is created if needed.
        data: The bytes to write.

    Returns:
        The destination as a ``Path``.

    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see `atomic_write_bytes`.

    Args:
        path: Destination file.
        text: The text to write.

    Returns:
        The destination as a ``Path``.

    """
    return atomic_write_bytes(path, text.encode("utf-8"))
