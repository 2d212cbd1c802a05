"""Atomic file writes: the one way this project replaces a file, so that a reader, or a rerun after
a kill, finds the old content or the new one, never half of it.

The new content goes to a hidden temporary file beside the target (same filesystem, so the rename
is atomic), is flushed to disk, renamed onto the target, and the folder is flushed so the rename
itself survives a crash. The temporary's name holds host and pid: workers sharing a folder never
write the same one, and the leading dot keeps globs (load_dataset's data/*.parquet) off it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync(path: str | os.PathLike) -> None:
    """Flush a file, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some network filesystems refuse fsync on folders
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary path to write; if the block succeeds it replaces `path`, else it is deleted."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    try:
        yield tmp
        fsync(tmp)
        os.replace(tmp, path)
        fsync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, content: str | bytes) -> None:
    """Replace `path` with `content` (text as UTF-8) atomically."""
    with atomic_path(path) as tmp:
        if isinstance(content, str):
            tmp.write_text(content, encoding="utf-8")
        else:
            tmp.write_bytes(content)
