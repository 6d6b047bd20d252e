"""Publishing's file copy: byte for byte, whatever the size, where O_DIRECT is refused too."""

from __future__ import annotations

import errno
import os

import pytest

from loanwatch import serve


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 17])
def test_copy_durably_copies_every_byte_of_any_size(tmp_path, size):
    source = tmp_path / "source"
    source.write_bytes(os.urandom(size))
    target = tmp_path / "target"
    target.write_bytes(b"an older, longer file that the copy must replace entirely" * 200)
    # a chunk of two pages, so the larger sizes take several chunks and a padded last write
    serve.copy_durably(source, target, chunk=2 * 4096)
    assert target.read_bytes() == source.read_bytes()


def test_copy_durably_falls_back_to_a_cached_copy_where_o_direct_is_refused(tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.write_bytes(os.urandom(10_000))
    real_open = os.open

    def no_direct(path, flags, *args):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "O_DIRECT not supported")
        return real_open(path, flags, *args)

    monkeypatch.setattr(serve.os, "open", no_direct)
    serve.copy_durably(source, tmp_path / "target")
    assert (tmp_path / "target").read_bytes() == source.read_bytes()


def test_copy_durably_falls_back_when_a_direct_write_is_refused(tmp_path, monkeypatch):
    # some devices need a larger alignment than 4 KiB: the open succeeds, the first write fails
    source = tmp_path / "source"
    source.write_bytes(os.urandom(3 * 4096))

    def refuse(*args):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(serve.os, "pwrite", refuse)
    serve.copy_durably(source, tmp_path / "target", chunk=4096)
    assert (tmp_path / "target").read_bytes() == source.read_bytes()
