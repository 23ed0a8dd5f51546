import numpy as np
import pytest

from advpath_jax.data.imageio import read_grey as read_image
from advpath_jax.pipeline.explain_cli import prepare_image


def test_read_png_npy_nifti_and_dicom(tmp_path):
    from PIL import Image

    img = (np.arange(40 * 50).reshape(40, 50) % 251).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(str(tmp_path / "a.png")), img / 255.0)  # scaled by bit depth
    np.save(tmp_path / "b.npy", img[..., None].astype(np.float32))
    np.testing.assert_array_equal(read_image(str(tmp_path / "b.npy")), img.astype(np.float32))

    import nibabel

    vol = np.stack([np.full((8, 9), k, np.float32) for k in range(5)], axis=2)
    nibabel.save(nibabel.Nifti1Image(vol, np.eye(4)), str(tmp_path / "c.nii.gz"))
    assert np.all(read_image(str(tmp_path / "c.nii.gz")) == 2)          # middle slice
    assert np.all(read_image(str(tmp_path / "c.nii.gz"), slice_index=4) == 4)
    with pytest.raises(ValueError, match="outside"):
        read_image(str(tmp_path / "c.nii.gz"), slice_index=9)

    x = prepare_image(read_image(str(tmp_path / "a.png")), 32, "a.png")
    assert x.shape == (1, 32, 32, 1) and x.min() >= 0 and x.max() <= 1


def test_bad_image_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(str(tmp_path / "missing.png"))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="broken.png"):
        read_image(str(tmp_path / "broken.png"))
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="cube.npy"):
        read_image(str(tmp_path / "cube.npy"))
    with pytest.raises(ValueError, match="nan.npy"):
        np.save(tmp_path / "nan.npy", np.full((4, 4), np.nan))
        prepare_image(read_image(str(tmp_path / "nan.npy")), 8, "nan.npy")
