"""Capture framing on the real scenes in ../shared/data (or $PLENOX_DATA); skipped where they are absent."""

import json

import numpy as np
import pytest
import torch

from plenox.data import capture_kind, load_scene
from plenox.data.normalize import align_similarity, classify_capture
from scenes import scene_dir

pytestmark = pytest.mark.integration



def cameras_by_name(scene):
    """(names, c2w (N, 4, 4) float64) of all of a scene's views, sorted by name."""
    splits = [scene.splits["train"], scene.splits["test"]]
    names = [n for s in splits for n in s.names]
    order = np.argsort(names)
    return [names[i] for i in order], torch.cat([s.cameras.c2w for s in splits]).double().numpy()[order]


def test_beer_360_colmap_model_and_poses_bounds_frame_the_same_object_centric_capture(data_root):
    folder = scene_dir(data_root, "beer_360")
    # The cameras do not depend on the resolution: a quarter of it keeps the test light.
    model = load_scene(folder / "sparse" / "0", downscale=4)
    llff = load_scene(folder / "poses_bounds.npy", downscale=4)
    assert (model.format, llff.format) == ("colmap", "llff")
    for scene in (model, llff):
        assert scene.capture == "object" and not scene.ndc and scene.radius == (1.5, 1.5, 1.5)
        assert scene.splits["test"].names[:3] == ["0000", "0008", "0016"]
        assert scene.splits["train"].images.shape == (62, 320, 180, 3)
    names_a, a = cameras_by_name(model)
    names_b, b = cameras_by_name(llff)
    assert names_a == names_b and len(names_a) == 71
    fit = align_similarity(b[:, :3, 3], a[:, :3, 3])
    scale = np.cbrt(np.linalg.det(fit[:3, :3]))
    rot = fit[:3, :3] / scale
    moved = b[:, :3, 3] @ fit[:3, :3].T + fit[:3, 3]
    spread = np.sqrt(((a[:, :3, 3] - a[:, :3, 3].mean(0)) ** 2).sum(1).mean())
    assert np.linalg.norm(moved - a[:, :3, 3], axis=1).max() < 1e-3 * spread
    turned = np.einsum("ij,njk->nik", rot, b[:, :3, :3])
    cos = (np.einsum("nij,nij->n", turned, a[:, :3, :3]) - 1) / 2
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.1
    # Both put the capture's up on +z, so the aligning rotation only turns about it.
    np.testing.assert_allclose(rot @ [0, 0, 1], [0, 0, 1], atol=1e-3)


def test_classification_of_the_real_scenes(data_root):
    assert capture_kind(scene_dir(data_root, "fern")).kind == "forward"
    assert capture_kind(scene_dir(data_root, "beer_360")).kind == "object"
    lego = scene_dir(data_root, "lego_200")
    assert capture_kind(lego) is None  # Blender fixes its box
    frames = json.loads((lego / "transforms_train.json").read_text())["frames"]
    assert classify_capture(np.array([f["transform_matrix"] for f in frames]), lego).kind == "object"


def test_fern_still_loads_in_ndc_at_images_4(data_root):
    scene = load_scene(scene_dir(data_root, "fern"))
    assert scene.ndc and scene.capture == "forward" and scene.format == "llff"
    assert scene.downscale == 4 and scene.splits["train"].images.shape == (17, 756, 1008, 3)
    assert scene.ndc_focal == pytest.approx(3260.526 / 4, rel=1e-5)
    assert scene.radius[2] == 1.0 and scene.center == (0.0, 0.0, 0.0)
