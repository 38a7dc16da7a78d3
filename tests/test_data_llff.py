import numpy as np
import pytest
import torch

from plenox.data import detect_format, load_scene
from scenes import write_llff_scene
from plenox.errors import SceneError


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llff")
    write_llff_scene(folder, n=10, width=24, height=18, factor=4)
    return folder


def reference_poses(poses_arr: np.ndarray) -> np.ndarray:
    """The NeRF reference's load_llff_data pose processing (bd_factor=0.75, recenter=True), in its own style."""

    def normalize(x):
        return x / np.linalg.norm(x)

    def viewmatrix(z, up, pos):
        vec2 = normalize(z)
        vec0 = normalize(np.cross(up, vec2))
        vec1 = normalize(np.cross(vec2, vec0))
        return np.stack([vec0, vec1, vec2, pos], 1)

    def poses_avg(poses):
        hwf = poses[0, :3, -1:]
        center = poses[:, :3, 3].mean(0)
        return np.concatenate([viewmatrix(normalize(poses[:, :3, 2].sum(0)), poses[:, :3, 1].sum(0), center), hwf], 1)

    poses = poses_arr[:, :-2].reshape([-1, 3, 5]).transpose([1, 2, 0])
    bds = poses_arr[:, -2:].transpose([1, 0])
    poses = np.concatenate([poses[:, 1:2, :], -poses[:, 0:1, :], poses[:, 2:, :]], 1)
    poses = np.moveaxis(poses, -1, 0)
    bds = np.moveaxis(bds, -1, 0)
    sc = 1.0 / (bds.min() * 0.75)
    poses[:, :3, 3] *= sc
    bottom = np.reshape([0, 0, 0, 1.0], [1, 4])
    c2w = np.concatenate([poses_avg(poses)[:3, :4], bottom], -2)
    full = np.concatenate([poses[:, :3, :4], np.tile(bottom[None], [poses.shape[0], 1, 1])], -2)
    return np.linalg.inv(c2w) @ full


def test_loads_forward_facing_scene_in_ndc(folder):
    scene = load_scene(folder)
    assert detect_format(folder) == "llff" and scene.format == "llff"
    assert scene.ndc and scene.center == (0, 0, 0) and scene.radius[2] == 1
    # The box holds every training ray from the near plane (z = -1) to infinity (z = 1).
    origins, dirs, _ = scene.split_rays("train")
    half = torch.tensor(scene.radius[:2])
    assert (half >= 1).all()
    for end in (origins, origins + dirs):
        assert (end[:, :2].abs() <= half * (1 + 1e-6)).all()
    reach = torch.cat([origins, origins + dirs])[:, :2].abs().amax(0)
    assert (torch.isclose(reach, half.float()) | ((half == 1) & (reach <= 1))).all()
    assert (scene.near, scene.far) == (0.0, 1.0)
    assert scene.background is None
    train, test = scene.splits["train"], scene.splits["test"]
    assert set(scene.splits) == {"train", "test"}
    assert test.names == ["image000", "image008"]
    assert train.names == [f"image{i:03d}" for i in (1, 2, 3, 4, 5, 6, 7, 9)]
    assert train.images.shape == (8, 18, 24, 3)
    written_focal = 0.5 * 24 / np.tan(0.45)
    assert scene.ndc_focal == pytest.approx(written_focal, rel=1e-6)
    assert torch.allclose(train.cameras.fx, torch.full((8,), written_focal))


def test_poses_match_the_reference_processing(folder):
    scene = load_scene(folder)
    expected = reference_poses(np.load(folder / "poses_bounds.npy"))
    np.testing.assert_allclose(scene.splits["test"].cameras.c2w.numpy(), expected[[0, 8]], atol=1e-5)
    np.testing.assert_allclose(scene.splits["train"].cameras.c2w[0].numpy(), expected[1], atol=1e-5)


def test_rays_are_in_ndc(folder):
    scene = load_scene(folder)
    origins, dirs, rgb = scene.split_rays("test")
    assert origins.shape == (2 * 18 * 24, 3)
    assert torch.allclose(origins[:, 2], torch.full_like(origins[:, 2], -1.0), atol=1e-5)
    assert torch.allclose((origins + dirs)[:, 2], torch.ones_like(origins[:, 2]), atol=1e-5)
    assert origins[:, :2].abs().max() < 2  # the views cover roughly the NDC square


def test_downscale_picks_a_folder_and_box_filters_the_rest(folder):
    default = load_scene(folder)
    assert load_scene(folder, downscale=4).splits["train"].images.shape == default.splits["train"].images.shape
    eighth = load_scene(folder, downscale=8)
    assert eighth.splits["train"].images.shape == (8, 9, 12, 3)
    assert eighth.ndc_focal == pytest.approx(default.ndc_focal / 2)
    expected = default.splits["train"].images[0].reshape(9, 2, 12, 2, 3).mean((1, 3))
    assert torch.allclose(eighth.splits["train"].images[0], expected, atol=1e-6)
    with pytest.raises(SceneError, match="downscale 2"):
        load_scene(folder, downscale=2)


def test_holdout_every(folder):
    scene = load_scene(folder, holdout_every=3)
    assert scene.splits["test"].names == ["image000", "image003", "image006", "image009"]
    with pytest.raises(ValueError, match="holdout_every"):
        load_scene(folder, holdout_every=1)
