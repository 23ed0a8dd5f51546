"""The atomic writer: whole files only, with the mode open() would give (umask honoured)."""

import os

import pytest

from advpath_jax.io_utils import write_bytes_atomic, write_json_atomic


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_bytes_atomic(tmp_path / "a.bin", b"x")
        write_json_atomic(tmp_path / "sub" / "b.json", {"k": 1})
        with open(tmp_path / "ref.txt", "w") as fh:     # what open() gives, the reference
            fh.write("x")
    finally:
        os.umask(old)
    for name in ("a.bin", "sub/b.json", "ref.txt"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == mode, name


def test_a_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(TypeError):
        write_bytes_atomic(tmp_path / "c.bin", object())  # not bytes: the write fails
    assert os.listdir(tmp_path) == []
