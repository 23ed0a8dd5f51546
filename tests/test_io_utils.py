"""The atomic writer (whole files only, with the mode open() would give) and the JSON helpers."""

import json
import os
import pathlib

import numpy as np
import pytest

from advpath_jax.errors import AdvpathError
from advpath_jax.io_utils import (atomic_write, read_json, to_jsonable, write_bytes_atomic, write_json_atomic,
                                  write_text_atomic)


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


def test_a_writer_that_raises_mid_write_leaves_no_file_and_no_temporary(tmp_path):
    target = tmp_path / "half.bin"
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(target) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(b"first half")
            assert os.path.dirname(tmp) == str(tmp_path) and os.path.exists(tmp)
            raise RuntimeError("disk full")
    assert os.listdir(tmp_path) == []


def test_a_failed_rewrite_keeps_the_old_file(tmp_path):
    target = tmp_path / "keep.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"v": 2}, sort_keys=True, default=None)  # bad kwargs: fails before writing
    with pytest.raises(ValueError):
        with atomic_write(target) as tmp:
            with open(tmp, "w") as fh:
                fh.write('{"v": 2')
            raise ValueError("stop")
    assert read_json(target) == {"v": 1}
    assert sorted(os.listdir(tmp_path)) == ["keep.json"]


def test_any_writer_can_use_the_temporary_name(tmp_path):
    with atomic_write(tmp_path / "deep" / "a.npy") as tmp:
        np.save(tmp, np.arange(4))          # np.save adds ".npy" unless the name ends so
    np.testing.assert_array_equal(np.load(tmp_path / "deep" / "a.npy"), np.arange(4))
    assert os.listdir(tmp_path / "deep") == ["a.npy"]
    write_text_atomic(tmp_path / "t.txt", "héllo\n")
    assert (tmp_path / "t.txt").read_bytes() == "héllo\n".encode("utf-8")


def test_json_round_trip_of_numpy_values(tmp_path):
    obj = {"a": np.arange(3, dtype=np.int64), "b": np.float32(0.5), "c": np.int32(7), "d": (1, 2),
           "e": pathlib.Path("/x")}
    expected = {"a": [0, 1, 2], "b": 0.5, "c": 7, "d": [1, 2], "e": "/x"}
    assert to_jsonable(obj) == expected
    write_json_atomic(tmp_path / "o.json", obj, sort_keys=True)
    assert json.loads((tmp_path / "o.json").read_text()) == expected
    assert read_json(tmp_path / "o.json") == expected


def test_read_json_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"settings record not found: .*nothere\.json"):
        read_json(tmp_path / "nothere.json", "settings record")
    (tmp_path / "bad.json").write_text('{"a": 1')
    with pytest.raises(AdvpathError, match=r"cannot read JSON file .*bad\.json"):
        read_json(tmp_path / "bad.json")
