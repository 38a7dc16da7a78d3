"""Framing captures: forward-facing vs object-centric, the capture's up, the pixel budget, the
LLFF and nerfstudio loaders on captures, and the default config picked from the capture kind."""

import json
import logging
import math

import numpy as np
import pytest
import torch

from colmap_files import write_colmap
from conftest import TINY_FIT
from plenox.cli import main
from plenox.data import SceneError, Split, capture_kind, load_scene, write_blender_scene
from plenox.data import normalize
from plenox.data.builtin import hemisphere_cameras, render_builtin
from plenox.data.colmap import aligned_points
from plenox.data.normalize import (BOX_RADIUS, FORWARD, OBJECT, apply_similarity, budget_factor, capture_up,
                                   classify_capture, similarity_matrix)
from plenox.runs.loading import default_config_choice
from scenes import forward_facing_cameras, look_at, tiny_scene, write_llff_scene, write_nerfstudio_scene


def ring(n=16, radius=4.0, height=1.5, target=(0.0, 0.0, 0.0), arc=2 * math.pi):
    """OpenGL cameras on a horizontal circle (or an arc of it), looking at ``target``, level (z up)."""
    a = np.linspace(0, arc, n, endpoint=arc < 2 * math.pi)
    positions = np.stack([radius * np.cos(a), radius * np.sin(a), np.full(n, height)], axis=1)
    return look_at(positions, target)


def test_inward_ring_is_object_centric_and_llff_sweep_is_forward_facing():
    capture = classify_capture(ring(), "ring")
    assert capture.kind == OBJECT and "object-centric" in capture.reason
    # Half a ring looking inwards still surrounds its object.
    assert classify_capture(ring(arc=math.pi), "arc").kind == OBJECT
    sweep = forward_facing_cameras(16, 24, 18).c2w.double().numpy()
    capture = classify_capture(sweep, "sweep")
    assert capture.kind == FORWARD and "forward-facing" in capture.reason


def test_outward_ring_is_neither():
    positions = ring()[:, :3, 3]
    with pytest.raises(SceneError, match="axes do not meet in front"):
        classify_capture(look_at(positions, (0.0, 0.0, 0.0)) @ np.diag([-1.0, 1.0, -1.0, 1.0]), "outward")


def test_capture_up_is_exact_for_level_cameras_where_the_mean_up_leans():
    c2w = ring(n=12, radius=3.0, height=3.5, arc=math.radians(200))  # looking down ~50 degrees, 200-degree arc
    mean_up = c2w[:, :3, 1].sum(0) / np.linalg.norm(c2w[:, :3, 1].sum(0))
    assert math.degrees(math.acos(mean_up[2])) > 10
    np.testing.assert_allclose(capture_up(c2w), [0, 0, 1], atol=1e-9)
    # In any world frame: the up found turns with the cameras.
    turn = similarity_matrix(1.0, normalize.rotation_to_z(np.array([0.6, 0.0, 0.8])).T, np.zeros(3))
    np.testing.assert_allclose(capture_up(apply_similarity(turn, c2w)), [0.6, 0.0, 0.8], atol=1e-9)


@pytest.mark.parametrize("size, budget, factor", [
    ((4032, 3024), None, 4), ((720, 1280), None, 1), ((1920, 1080), None, 2), ((1000, 1000), None, 1),
    ((1001, 1000), None, 2), ((16, 16), 200, 2), ((16, 16), 256, 1), ((100, 30), 300, 4),
])
def test_budget_factor(size, budget, factor):
    assert budget_factor(*size, budget) == factor


def test_budget_factor_is_the_smallest_that_fits():
    rng = np.random.default_rng(0)
    for w, h, budget in zip(rng.integers(1, 9000, 200), rng.integers(1, 9000, 200), rng.integers(1, 4_000_000, 200)):
        f = budget_factor(int(w), int(h), int(budget))
        assert (w // f) * (h // f) <= budget
        assert f == 1 or (w // (f - 1)) * (h // (f - 1)) > budget


@pytest.fixture(scope="module")
def hemisphere():
    cams = hemisphere_cameras(10, 16, np.random.default_rng(5))
    images, _ = render_builtin(cams)
    return cams, images


def test_pixel_budget_caps_every_capture_loader(tmp_path, hemisphere, monkeypatch, caplog):
    cams, images = hemisphere
    names = [f"v{i}.png" for i in range(len(cams))]
    write_colmap(tmp_path / "colmap", cams, names, images)
    write_nerfstudio_scene(tmp_path / "ns", Split(images, cams, [n[:-4] for n in names]))
    monkeypatch.setattr(normalize, "PIXEL_BUDGET", 200)  # 16x16 = 256 pixels > 200: downscale 2
    caplog.set_level(logging.INFO, logger="plenox")
    for folder in ("colmap", "ns"):
        scene = load_scene(tmp_path / folder)
        assert scene.downscale == 2 and scene.splits["train"].images.shape[1:3] == (8, 8)
        assert f"{folder}: 16x16 images, pixel budget 0.0002 MP per image -> 8x8, downscale 2" in caplog.text
        explicit = load_scene(tmp_path / folder, downscale=1)  # an explicit downscale wins
        assert explicit.downscale == 1 and explicit.splits["train"].images.shape[1:3] == (16, 16)
    # LLFF: images_4 is 24x18 (432 pixels): box-filtered by 2 more, a total downscale of 8.
    write_llff_scene(tmp_path / "llff")
    scene = load_scene(tmp_path / "llff")
    assert scene.downscale == 8 and scene.splits["train"].images.shape[1:3] == (9, 12)
    assert "llff/images_4: 24x18 images, pixel budget 0.0002 MP per image -> 12x9, downscale 8" in caplog.text
    assert scene.ndc and scene.capture == FORWARD


def test_blender_scenes_are_not_budgeted(tmp_path, monkeypatch):
    write_blender_scene(tiny_scene(size=16), tmp_path)
    monkeypatch.setattr(normalize, "PIXEL_BUDGET", 10)
    scene = load_scene(tmp_path)
    assert scene.downscale == 1 and scene.capture is None and scene.splits["train"].images.shape[1:3] == (16, 16)


def test_llff_file_whose_cameras_surround_the_object_loads_as_a_box(tmp_path, hemisphere):
    cams, _ = hemisphere
    write_llff_scene(tmp_path, cams=cams, factor=1)
    scene = load_scene(tmp_path)
    assert scene.format == "llff" and scene.capture == OBJECT and not scene.ndc
    assert scene.radius == (BOX_RADIUS,) * 3 and scene.ndc_focal is None
    loaded = torch.cat([scene.splits["test"].cameras.c2w[:1], scene.splits["train"].cameras.c2w[:7]])
    expected = apply_similarity(scene.transform, cams.c2w.double().numpy())[:8]
    np.testing.assert_allclose(loaded.double().numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(scene.transform, np.eye(4), atol=1e-5)  # level, looking at 0 from 4: already framed


def forward_capture(tmp_path):
    """A forward-facing nerfstudio capture and the same cameras and points as a COLMAP model in
    another world frame (sparse/0 beside transforms.json)."""
    cams = forward_facing_cameras(16, 24, 18)
    images, _ = render_builtin(cams)
    names = [f"f{i:02d}" for i in range(16)]
    write_nerfstudio_scene(tmp_path, Split(images, cams, names))
    points = np.random.default_rng(1).uniform([-1, -1, 0], [1, 1, 1], (300, 3))
    other = similarity_matrix(0.3, normalize.rotation_to_z(np.array([0.0, 0.6, 0.8])), np.array([5.0, 1.0, -2.0]))
    moved = cams.subset(list(range(16)))
    moved.c2w = torch.as_tensor(apply_similarity(other, cams.c2w.double().numpy()), dtype=torch.float32)
    return cams, names, points, other, moved


def test_forward_facing_capture_needs_points_and_gets_them_from_a_colmap_model_beside_it(tmp_path):
    cams, names, points, other, moved = forward_capture(tmp_path)
    with pytest.raises(SceneError, match="forward-facing.*no sparse points.*sparse/0"):
        load_scene(tmp_path)
    write_colmap(tmp_path, moved, [f"{n}.png" for n in names], points=points @ other[:3, :3].T + other[:3, 3])
    found = aligned_points(tmp_path, names, cams.c2w.double().numpy())
    np.testing.assert_allclose(found, points, atol=1e-4)
    scene = load_scene(tmp_path / "transforms.json")
    assert scene.format == "nerfstudio" and scene.ndc and scene.capture == FORWARD
    assert scene.radius[2] == 1.0 and min(scene.radius[:2]) >= 1.0
    # The COLMAP model itself frames to the same NDC cameras (NDC is fixed by the depth bounds).
    direct = load_scene(tmp_path / "sparse" / "0")
    assert direct.format == "colmap" and direct.ndc
    np.testing.assert_allclose(direct.splits["train"].cameras.c2w, scene.splits["train"].cameras.c2w, atol=1e-4)


def test_mismatched_model_beside_transforms_is_ignored(tmp_path):
    cams, names, points, other, moved = forward_capture(tmp_path)
    shuffled = moved.subset([5, 1, 2, 3, 4, 0, *range(6, 16)])  # two frames' names swapped
    write_colmap(tmp_path, shuffled, [f"{n}.png" for n in names], points=points)
    assert aligned_points(tmp_path, names, cams.c2w.double().numpy()) is None


def test_default_config_follows_the_capture_kind(tmp_path, hemisphere):
    cams, images = hemisphere
    write_colmap(tmp_path / "object", cams, [f"v{i}.png" for i in range(len(cams))], images)
    write_llff_scene(tmp_path / "forward")
    write_blender_scene(tiny_scene(size=8), tmp_path / "blender")
    name, why = default_config_choice(str(tmp_path / "object"))
    assert name == "unbounded" and why.startswith("object-centric")
    assert capture_kind(tmp_path / "object").kind == OBJECT
    name, why = default_config_choice(str(tmp_path / "forward"))
    assert name == "llff" and why.startswith("forward-facing")
    assert default_config_choice(str(tmp_path / "forward"), "nerf")[0] == "nerf_llff"
    assert default_config_choice(str(tmp_path / "blender"))[0] == "synthetic"
    assert capture_kind(tmp_path / "blender") is None
    assert default_config_choice(None)[0] == "builtin"


def test_cli_fit_on_a_colmap_capture_says_what_it_picked(tmp_path, hemisphere, capsys):
    cams, images = hemisphere
    write_colmap(tmp_path / "capture", cams, [f"v{i}.png" for i in range(len(cams))], images)
    code = main(["fit", str(tmp_path / "capture"), "--out", str(tmp_path / "run"), "--quiet", *TINY_FIT])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "config unbounded: object-centric" in out and "--config" in out
    assert "capture: 16x16 images, pixel budget 1 MP per image -> 16x16, downscale 1" in out
    assert "box 0.375 x the camera distance" in out
    metrics = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    assert metrics["protocol"]["holdout"].startswith("test = every 8th view")
    assert json.loads((tmp_path / "run" / "scene.json").read_text())["downscale"] == 1
