import imageio.v3 as iio
import numpy as np
import pytest

from plenox.data.images import area_downscale, load_images, read_image


def test_read_image_layouts(tmp_path):
    grey16 = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    iio.imwrite(tmp_path / "g.png", grey16)
    rgb, alpha = read_image(tmp_path / "g.png")
    assert rgb.shape == (3, 4, 3) and alpha is None
    np.testing.assert_allclose(rgb[..., 1], grey16 / 65535, atol=1e-6)
    ga = np.stack([np.full((3, 4), 255), np.full((3, 4), 51)], axis=-1).astype(np.uint8)
    iio.imwrite(tmp_path / "ga.png", ga)
    rgb, alpha = read_image(tmp_path / "ga.png")
    assert rgb.shape == (3, 4, 3) and np.allclose(alpha, 0.2)


def test_area_downscale_crops_ragged_edges():
    img = np.arange(5 * 7, dtype=np.float32).reshape(5, 7, 1)
    small = area_downscale(img, 2)
    assert small.shape == (2, 3, 1)
    assert small[0, 0, 0] == pytest.approx((0 + 1 + 7 + 8) / 4)


def test_mixed_alpha_and_opaque_images(tmp_path):
    iio.imwrite(tmp_path / "a.png", np.full((4, 4, 3), 128, np.uint8))
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0
    iio.imwrite(tmp_path / "b.png", rgba)
    images, alpha, native = load_images([tmp_path / "a.png", tmp_path / "b.png"], 2, (1.0, 1.0, 1.0))
    assert native == (4, 4) and images.shape == (2, 2, 2, 3)
    assert (alpha[0] == 1).all()  # the opaque image read before the first alpha one
    assert alpha[1, 0, 0] == pytest.approx(0.75)
    assert images[1, 0, 0, 0] == pytest.approx(0.25)  # a quarter of the block shows the white background
