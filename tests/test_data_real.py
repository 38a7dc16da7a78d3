"""Loaders on the real scenes in ../shared/data (or $PLENOX_DATA); skipped where they are absent."""

import json
import math

import pytest
import torch

from plenox.data import load_scene
from scenes import scene_dir

pytestmark = pytest.mark.integration



def test_lego_200(data_root):
    folder = scene_dir(data_root, "lego_200")
    scene = load_scene(folder)
    sizes = {name: len(split) for name, split in scene.splits.items()}
    assert sizes == {"train": 100, "val": 100, "test": 200}
    test = scene.splits["test"]
    assert test.images.shape == (200, 200, 200, 3)
    angle = json.loads((folder / "transforms_test.json").read_text())["camera_angle_x"]
    focal = 0.5 * 200 / math.tan(0.5 * angle)  # from the 200 px image, not the json's 800 px
    assert focal == pytest.approx(277.78, abs=0.01)
    assert torch.allclose(test.cameras.fx, torch.full((200,), focal))
    assert scene.background == (1.0, 1.0, 1.0)
    assert (test.images[:, 0, 0] == 1).all()  # composited on white where lego's alpha is 0
    frame = json.loads((folder / "transforms_train.json").read_text())["frames"][0]
    assert scene.splits["train"].names[0] == "r_0"
    assert torch.allclose(scene.splits["train"].cameras.c2w[0], torch.tensor(frame["transform_matrix"]))


def test_fern(data_root):
    folder = scene_dir(data_root, "fern")
    scene = load_scene(folder)  # no full-resolution images/: the default is images_4
    assert scene.ndc and scene.format == "llff"
    assert scene.splits["test"].names == ["image000", "image008", "image016"]
    assert scene.splits["train"].images.shape == (17, 756, 1008, 3)
    assert scene.ndc_focal == pytest.approx(3260.526 / 4, rel=1e-5)

    eighth = load_scene(folder, downscale=8)
    assert eighth.splits["train"].images.shape == (17, 378, 504, 3)
    assert eighth.ndc_focal == pytest.approx(3260.526 / 8, rel=1e-5)
    origins, dirs, rgb = eighth.split_rays("test")
    assert origins.shape == (3 * 378 * 504, 3)
    assert torch.allclose(origins[:, 2], torch.full_like(origins[:, 2], -1.0), atol=1e-4)
