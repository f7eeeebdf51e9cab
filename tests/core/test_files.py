"""Atomic writes: a file appears whole or not at all, and an existing one survives a failure."""

from __future__ import annotations

import stat

import pytest

from convscope.core.files import write_atomically, write_bytes_atomically, write_text_atomically


def test_a_failed_write_keeps_the_existing_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"the old checkpoint")

    def fails(temporary: str) -> None:
        with open(temporary, "wb") as handle:
            handle.write(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
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
