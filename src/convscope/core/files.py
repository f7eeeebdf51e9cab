"""Files read and written safely: each path checked before it is used, every file the package
writes appearing whole or not at all.

`readable_file` and `writable_file` refuse, by the argument's name, a path that is missing, a
folder, not a regular file (a FIFO would block a reader), or not permitted. Each writer fills
a temporary file beside the target and renames it onto the target (`os.replace`, atomic on
one file system), so a failed or interrupted write (a full disk, a read-only folder) leaves
any existing file as it was, no half-written file behind, and a `FileError` naming the path.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from convscope.core.errors import ConvscopeError, FileError


def _plain_mode() -> int:
    """The mode a plain `open(path, "w")` gives a new file: 0o666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_PLAIN_MODE = _plain_mode()


def _as_path(name: str, path: object, error: type[ConvscopeError]) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise error(f"{name} must be a file path (str or Path); got {path!r}")
    return Path(path)


def readable_file(name: str, path: object, error: type[ConvscopeError] = FileError) -> Path:
    """`path` as a `Path`, if it names a regular file this process may read.

    Raises:
        `error` (a `ConvscopeError`): naming the argument and the path, and what is wrong:
            not a path, no such file, a folder, not a regular file, no permission.
    """
    path = _as_path(name, path, error)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{name} file not found: {path}") from None
    except OSError as failure:
        raise error(f"{name} {path}: cannot be read ({failure.strerror})") from None
    if stat.S_ISDIR(mode):
        raise error(f"{name} {path} is a folder; give a file in it")
    if not stat.S_ISREG(mode):
        raise error(f"{name} {path} is not a regular file (a FIFO, socket or device); give a file")
    if not os.access(path, os.R_OK):
        raise error(f"{name} {path}: cannot be read (permission denied)")
    return path


def writable_file(name: str, path: object, error: type[ConvscopeError] = FileError) -> Path:
    """`path` as a `Path`, if a file may be written there: not a folder, not an existing
    file other than a regular one.

    Raises:
        `error` (a `ConvscopeError`): naming the argument and the path, and what is wrong.
    """
    path = _as_path(name, path, error)
    if path.is_dir():
        raise error(f"{name} {path} is a folder; give the file to write, e.g. {path / 'x.pth'}")
    if path.exists() and not path.is_file():
        raise error(f"{name} {path} is not a regular file (a FIFO, socket or device)")
    return path


def writable_folder(name: str, path: object, error: type[ConvscopeError] = FileError) -> Path:
    """`path` as a `Path` to a folder that exists (made if missing) and takes new files:
    checked by making and removing one, as a read-only disk or a permission would refuse it.

    Raises:
        `error` (a `ConvscopeError`): naming the argument and the path: an existing file, a
            folder that cannot be made or written.
    """
    path = _as_path(name, path, error)
    if path.exists() and not path.is_dir():
        raise error(f"{name} {path} is a file; give a folder (it is made if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=path, prefix=".convscope-probe.")
        os.close(handle)
        os.remove(probe)
    except OSError as failure:
        raise error(f"{name} {path}: cannot write there ({failure.strerror})") from None
    return path


# The errors of a write that the disk or the folder refused (not of the work that fills it)
WRITE_ERRORS = frozenset(
    getattr(errno, name)
    for name in (
        "ENOSPC",
        "EDQUOT",
        "EFBIG",
        "EROFS",
        "EACCES",
        "EPERM",
        "EIO",
        "EISDIR",
        "ENAMETOOLONG",
        "ENOTDIR",
        "EXDEV",
    )
    if hasattr(errno, name)
)


def _write_failed(path: Path, failure: Exception) -> FileError:
    detail = failure.strerror if isinstance(failure, OSError) and failure.strerror else failure
    try:
        free = f"; {shutil.disk_usage(path.parent).free / 2**20:,.0f} MB free there"
    except OSError:
        free = ""
    return FileError(f"cannot write {path}: {detail}{free}; nothing was written")


def write_atomically(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call `write(temporary)` to fill a temporary file beside `path`, then rename it onto
    `path`. The temporary file keeps `path`'s suffix, so tools that check it (papermill,
    `torch.save`) see the right one.

    Returns:
        `path`.

    Raises:
        FileError: `path` is a folder or not a regular file, or the write failed: the
            folder cannot be made or written, the disk is full (an `OSError`, or torch's
            writer's `RuntimeError`); any existing file is left as it was.
        whatever else `write` raises, after removing the temporary file.
    """
    path = writable_file("path", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}"
        )
    except OSError as failure:
        raise _write_failed(path, failure) from failure
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, _PLAIN_MODE)  # mkstemp's file is private (0600); open() gives this
        os.replace(temporary, path)
    except OSError as failure:
        if failure.errno not in WRITE_ERRORS:  # a timeout, a missing input: not the write's
            raise
        raise _write_failed(path, failure) from failure
    except RuntimeError as failure:  # torch.save reports a failed write as "enforce fail"
        if not any(mark in str(failure) for mark in ("enforce fail", "PytorchStreamWriter")):
            raise
        raise _write_failed(path, failure) from failure
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
