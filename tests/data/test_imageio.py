"""The one image reader: bit depths, NPY safety, and every failure naming its file."""

import pickle

import numpy as np
import pytest
from PIL import Image

from advpath_jax.data.imageio import read_grey, read_npy
from advpath_jax.errors import AdvpathError


def test_16_bit_png_equals_its_8_bit_twin(tmp_path):
    img8 = (np.arange(30 * 40).reshape(30, 40) % 256).astype(np.uint8)
    Image.fromarray(img8).save(tmp_path / "a8.png")
    Image.fromarray(img8.astype(np.uint16) * 257).save(tmp_path / "a16.png")
    assert Image.open(tmp_path / "a16.png").mode.startswith("I")   # a real 16-bit file
    a8, a16 = read_grey(tmp_path / "a8.png"), read_grey(tmp_path / "a16.png")
    np.testing.assert_array_equal(a8, img8 / 255.0)
    np.testing.assert_array_equal(a16, a8)                          # not clipped at 255
    ramp = (np.linspace(0, 65535, 64 * 4).reshape(4, 64)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    np.testing.assert_allclose(read_grey(tmp_path / "ramp16.png"), ramp / 65535.0, atol=0)


def test_colour_and_one_bit_png(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 1] = 255
    Image.fromarray(rgb).save(tmp_path / "g.png")
    np.testing.assert_allclose(read_grey(tmp_path / "g.png"), np.asarray(Image.fromarray(rgb).convert("L")) / 255.0)
    Image.fromarray(np.eye(4, dtype=bool)).save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_grey(tmp_path / "b.png"), np.eye(4))


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n broken"), "cannot read image file"),
    (lambda p: p.write_bytes(b""), "cannot read image file"),
])
def test_damaged_png_names_the_file(tmp_path, make, expected):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(AdvpathError, match=f"{expected} {path}"):
        read_grey(path)


def test_truncated_pickled_and_missing_npy_name_the_file(tmp_path):
    np.save(tmp_path / "ok.npy", np.ones((6, 7), np.float32))
    data = (tmp_path / "ok.npy").read_bytes()
    (tmp_path / "trunc.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(AdvpathError, match=f"cannot read image file {tmp_path / 'trunc.npy'}"):
        read_grey(tmp_path / "trunc.npy")
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(AdvpathError, match=f"mask file {tmp_path / 'pickled.npy'}.*allow_pickle=False"):
        read_npy(tmp_path / "pickled.npy", "mask")
    (tmp_path / "header.npy").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(AdvpathError, match="header.npy"):
        read_grey(tmp_path / "header.npy")
    with pytest.raises(FileNotFoundError, match="image file not found: .*nothere.npy"):
        read_grey(tmp_path / "nothere.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    with pytest.raises(AdvpathError, match=r"cube.npy has shape \(2, 3, 4\)"):
        read_grey(tmp_path / "cube.npy")
