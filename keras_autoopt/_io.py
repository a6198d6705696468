"""Atomic file writes: nothing a user produced is left half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: Marker in the name of every temporary file this package writes before a rename.
TEMP_MARKER = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _make_readable(tmp: str) -> None:
    # mkstemp creates 0600 files; a renamed artifact gets the mode open() would give it.
    os.chmod(tmp, 0o666 & ~_umask())


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_MARKER)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _make_readable(tmp)
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


def atomic_save_model(model, path: str | os.PathLike) -> Path:
    """Save a Keras model (``.keras`` format) to a temporary file, then rename it.

    Args:
        model: A tf_keras model.
        path: Destination ``.keras`` file. Its parent folder is created if needed.

    Returns:
        The destination as a ``Path``.

    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                               suffix=f"{TEMP_MARKER}.keras")
    os.close(fd)
    try:
        model.save(tmp)
        _make_readable(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed run left under ``folder``.

    A process killed between writing a temporary file and renaming it leaves
    the temporary file behind (the destination is untouched). Only hidden
    files whose name holds `TEMP_MARKER`, as `atomic_write_bytes` and
    `atomic_save_model` name them, are removed.

    Args:
        folder: The run's output folder (searched recursively); a missing
            folder holds nothing.

    Returns:
        The removed files.

    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for candidate in folder.rglob(f".*{TEMP_MARKER}*"):
        if candidate.is_file():
            candidate.unlink()
            removed.append(candidate)
    return removed
