"""Caffe files that are not files: refused before they are opened, never read without end."""

from __future__ import annotations

import os

import pytest

from convscope.caffe.proto import CaffeFormatError, read_caffemodel, read_prototxt


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "deploy.prototxt"
    os.mkfifo(fifo)
    with pytest.raises(CaffeFormatError, match="is not a regular file"):
        read_prototxt(fifo)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero on this system")
def test_a_device_is_refused_instead_of_read_until_memory_runs_out():
    with pytest.raises(CaffeFormatError, match="is not a regular file"):
        read_caffemodel("/dev/zero")


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(CaffeFormatError, match="caffemodel .* is a folder; give a file in it"):
        read_caffemodel(tmp_path)


def test_files_over_the_size_limit_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "net.caffemodel"
    path.write_bytes(b"\x00" * 64)
    monkeypatch.setenv("CONVSCOPE_MAX_CAFFE_BYTES", "63")
    with pytest.raises(CaffeFormatError, match="has 64 bytes, over the limit of 63"):
        read_caffemodel(path)
