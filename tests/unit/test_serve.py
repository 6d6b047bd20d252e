"""Publishing's file copy: byte for byte, whatever the size, where O_DIRECT is refused too."""

from __future__ import annotations

import errno
import os

import pytest

from loanwatch import serve


def _skip_without_direct_io(folder):
    """The direct copy is tested where the file system takes O_DIRECT (elsewhere publish falls back)."""
    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this platform")
    try:
        os.close(os.open(folder / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644))
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        pytest.skip(f"{folder}: the file system refuses O_DIRECT")


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 17])
def test_the_direct_copy_copies_every_byte_of_any_size(tmp_path, size):
    # The direct copy itself, not copy_durably: a misaligned write fails with EINVAL, which
    # copy_durably would quietly answer with the slow cached copy.
    _skip_without_direct_io(tmp_path)
    source = tmp_path / "source"
    source.write_bytes(os.urandom(size))
    target = tmp_path / "target"
    target.write_bytes(b"an older, longer file that the copy must replace entirely" * 200)
    # a chunk of two pages, so the larger sizes take several chunks and a padded last write
    serve._copy_direct(source, target, chunk=2 * 4096)
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
