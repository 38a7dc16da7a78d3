import math

import pytest
import torch

from plenox.data import Split, builtin_scene, detect_format, load_scene, write_blender_scene
from plenox.data.images import area_downscale
from scenes import tiny_scene

EIGHT_BIT = 1.01 / 255  # one rounding step of an 8-bit PNG, un-composite and re-composite


@pytest.fixture(scope="module")
def scene():
    s = tiny_scene(size=16)
    s.splits["val"] = s.splits["test"]
    return s


@pytest.fixture(scope="module")
def folder(scene, tmp_path_factory):
    return write_blender_scene(scene, tmp_path_factory.mktemp("blender"))


def test_round_trip(scene, folder):
    loaded = load_scene(folder)
    assert detect_format(folder) == "blender" and loaded.format == "blender"
    assert set(loaded.splits) == {"train", "val", "test"}
    assert loaded.background == (1.0, 1.0, 1.0)
    assert (loaded.center, loaded.radius, loaded.near, loaded.far) == ((0, 0, 0), (1.5, 1.5, 1.5), 2.0, 6.0)
    assert not loaded.ndc
    for name in ("train", "test"):
        a, b = scene.splits[name], loaded.splits[name]
        assert b.names == a.names
        assert b.images.dtype == torch.float32 and b.images.shape == a.images.shape
        assert (b.images - a.images).abs().max() <= EIGHT_BIT
        assert (b.alpha - a.alpha).abs().max() <= EIGHT_BIT
        assert torch.allclose(b.cameras.c2w, a.cameras.c2w)
        assert torch.allclose(b.cameras.fx, a.cameras.fx) and torch.allclose(b.cameras.fy, a.cameras.fy)
        assert torch.allclose(b.cameras.cx, torch.full((len(a),), 8.0))


def test_focal_follows_the_loaded_width(folder):
    loaded = load_scene(folder / "transforms_train.json", downscale=2)
    cams = loaded.splits["train"].cameras
    assert (cams.width, cams.height) == (8, 8)
    assert torch.allclose(cams.fx, torch.full_like(cams.fx, 0.5 * 8 / math.tan(0.5 * 0.6911112070083618)))
    assert torch.allclose(cams.cx, torch.full_like(cams.cx, 4.0))


def test_downscale_is_an_area_average(folder):
    full = load_scene(folder).splits["train"]
    half = load_scene(folder, downscale=2).splits["train"]
    expected = torch.from_numpy(area_downscale(full.images[0].numpy(), 2))
    assert torch.allclose(half.images[0], expected, atol=1e-6)
    assert half.alpha.shape == (len(full), 8, 8)


def test_black_background(scene, folder):
    loaded = load_scene(folder, background="black")
    assert loaded.background == (0.0, 0.0, 0.0)
    split = loaded.splits["train"]
    empty = split.alpha == 0
    assert empty.any() and (split.images[empty] == 0).all()
    # composited on black = white-composited colour minus the white showing through
    white = scene.splits["train"]
    expected = white.images - (1 - white.alpha[..., None])
    assert (split.images - expected).abs().max() <= EIGHT_BIT
    with pytest.raises(ValueError, match="background"):
        load_scene(folder, background="pink")


def test_split_rays_are_image_major(folder):
    loaded = load_scene(folder)
    split = loaded.splits["test"]
    origins, dirs, rgb = loaded.split_rays("test")
    n, h, w = len(split), 16, 16
    assert origins.shape == dirs.shape == rgb.shape == (n * h * w, 3)
    assert torch.equal(rgb.reshape(n, h, w, 3), split.images)
    assert torch.allclose(origins[h * w], split.cameras.c2w[1, :3, 3])
    with pytest.raises(KeyError):
        loaded.split_rays("nope")


def test_writer_rejects_cameras_blender_cannot_express(tmp_path):
    s = builtin_scene(size=8, n_train=1, n_test=1)
    cams = s.splits["test"].cameras
    cams.cx = cams.cx + 1
    s.splits["test"] = Split(images=s.splits["test"].images, cameras=cams, names=["a"])
    with pytest.raises(ValueError, match="centred"):
        write_blender_scene(s, tmp_path)
