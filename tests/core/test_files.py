"""Paths checked before use, and atomic writes: a file appears whole or not at all, and an
existing one survives a failure, which is named."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys

import pytest

from convscope.core.errors import FileError, ImageError
from convscope.core.files import (
    readable_file,
    writable_file,
    writable_folder,
    write_atomically,
    write_bytes_atomically,
    write_text_atomically,
)


def test_a_failed_write_keeps_the_existing_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"the old checkpoint")

    def fails(temporary: str) -> None:
        with open(temporary, "wb") as handle:
            handle.write(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(FileError, match=r"cannot write .*weights.pth: No space left on device; "):
        write_atomically(path, fails)
    assert path.read_bytes() == b"the old checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.pth"]


def test_the_temporary_file_sits_beside_the_target_with_its_suffix(tmp_path):
    seen = []

    def write(temporary: str) -> None:
        seen.append(temporary)
        with open(temporary, "w") as handle:
            handle.write("{}")

    target = tmp_path / "runs" / "run.ipynb"
    assert write_atomically(target, write) == target
    assert seen[0].endswith(".ipynb") and seen[0] != str(target)
    assert str(tmp_path / "runs") in seen[0]
    assert target.read_text() == "{}"


def test_text_and_bytes_replace_an_existing_file(tmp_path):
    path = tmp_path / "page.html"
    path.write_text("old")
    write_text_atomically(path, "<p>déjà</p>")
    assert path.read_text(encoding="utf-8") == "<p>déjà</p>"
    write_bytes_atomically(path, b"\x89PNG")
    assert path.read_bytes() == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]


def test_a_written_file_has_the_mode_a_plain_write_gives(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    written = write_text_atomically(tmp_path / "atomic.txt", "x")
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_a_path_to_read_is_refused_by_name_with_what_is_wrong(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # opening it to read would block until a writer came
    (tmp_path / "ok.txt").write_text("x")
    assert readable_file("image", tmp_path / "ok.txt") == tmp_path / "ok.txt"
    cases = {
        tmp_path / "missing.png": r"image file not found: .*missing.png",
        tmp_path: r"image .* is a folder; give a file in it",
        fifo: r"image .*pipe is not a regular file \(a FIFO, socket or device\)",
        None: r"image must be a file path \(str or Path\); got None",
        "": r"image must be a file path \(str or Path\); got ''",
    }
    for path, message in cases.items():
        with pytest.raises(ImageError, match=message):
            readable_file("image", path, ImageError)


def test_a_path_to_write_is_refused_by_name_before_anything_is_written(tmp_path):
    (tmp_path / "a_file").write_text("kept")
    with pytest.raises(FileError, match=r"--out .* is a folder; give the file to write"):
        writable_file("--out", tmp_path)
    with pytest.raises(FileError, match=r"--out .*a_file is a file; give a folder"):
        writable_folder("--out", tmp_path / "a_file")
    with pytest.raises(FileError, match=r"--out /proc/convscope/x: cannot write there"):
        writable_folder("--out", "/proc/convscope/x")  # /proc takes no new folders
    assert writable_folder("--out", tmp_path / "new" / "deep").is_dir()  # made
    assert sorted(p.name for p in (tmp_path / "new" / "deep").iterdir()) == []  # probe gone
    with pytest.raises(FileError, match=r"path .* is a folder"):
        write_bytes_atomically(tmp_path, b"x")
    assert (tmp_path / "a_file").read_text() == "kept"


# A real failed write: the child process may write at most 64 kB to any file (RLIMIT_FSIZE;
# SIGXFSZ ignored, so writes fail with EFBIG as on a full disk), and torch.save of 400 kB of
# zeros reports it as its own RuntimeError ("enforce fail ..."), which must become a FileError.
CHILD = """
import resource, signal, sys, torch
from convscope.core.errors import FileError
from convscope.core.files import write_atomically
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    write_atomically(sys.argv[1], lambda t: torch.save({"w": torch.zeros(100_000)}, t))
except FileError as error:
    print("FileError:", error)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
def test_torch_failing_to_write_becomes_a_named_error_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"the old checkpoint")
    command = [sys.executable, "-c", CHILD, str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith(f"FileError: cannot write {path}: "), result
    assert "nothing was written" in result.stdout
    assert path.read_bytes() == b"the old checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.pth"]


def test_a_failure_of_the_work_itself_is_not_called_a_write_failure(tmp_path):
    """A cell that timed out while papermill filled the file (a TimeoutError, an OSError
    without a write's errno) or any other error passes through as it is."""

    def times_out(temporary: str) -> None:
        raise TimeoutError("A cell timed out while it was being executed")

    def overwrites(temporary: str) -> None:
        raise RuntimeError("refusing to overwrite the parameters cell")

    for work, kind in ((times_out, TimeoutError), (overwrites, RuntimeError)):
        with pytest.raises(kind):
            write_atomically(tmp_path / "run.ipynb", work)
    assert list(tmp_path.iterdir()) == []
