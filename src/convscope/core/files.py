"""Writing files atomically: every file the package writes appears whole or not at all.

Each writer fills a temporary file beside the target and renames it onto the target
(`os.replace`, atomic on one file system), so a failed or interrupted write leaves any existing
file as it was and no half-written file behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _plain_mode() -> int:
    """The mode a plain `open(path, "w")` gives a new file: 0o666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_PLAIN_MODE = _plain_mode()


def write_atomically(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call `write(temporary)` to fill a temporary file beside `path`, then rename it onto
    `path`. The temporary file keeps `path`'s suffix, so tools that check it (papermill,
    `torch.save`) see the right one.

    Returns:
        `path`.

    Raises:
        whatever `write` raises, after removing the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}"
    )
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, _PLAIN_MODE)  # mkstemp's file is private (0600); open() gives this
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def write_bytes_atomically(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (`write_atomically`)."""
    return write_atomically(path, lambda temporary: Path(temporary).write_bytes(data))


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Write `text` to `path` as UTF-8, atomically (`write_atomically`)."""
    return write_atomically(
        path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8")
    )
