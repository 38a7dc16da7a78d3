"""Camera paths: nerfstudio's camera_path.json both ways, key-frame splines, the LLFF spiral, and
``plenox render --path / --spiral``."""

import json
import math
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from scenes import look_at, write_llff_scene

from plenox.cli import main
from plenox.data import load_scene
from plenox.data.llff import average_pose
from plenox.data.camera_paths import (CameraPathError, Keyframe, interpolate_keyframes, make_path,
                                      path_cameras, quaternion_to_rotation, read_camera_path, resampled, resized,
                                      rotation_to_quaternion, spiral_path, write_camera_path)
from plenox.runs.fitting import fit_run
from plenox.runs.loading import open_run

TINY_LLFF_FIT = ["resolutions=[[16,16,8]]", "upsample_steps=[]", "steps=20", "batch_size=512", "lr_decay_steps=20",
                 "eval_views=1", "log_every=10"]


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A copy of the shared tiny run to render into (renders land in the run folder)."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


def keyframes(n: int = 3) -> list[Keyframe]:
    positions = np.array([[4.0 * math.cos(a), 4.0 * math.sin(a), 1.5] for a in np.linspace(0, 2.0, n)])
    return [Keyframe(c2w, 40.0 + 5 * k, 1.0) for k, c2w in enumerate(look_at(positions, (0, 0, 0)))]


def nerfstudio_file(tmp_path, c2ws, fovs, width=64, height=48) -> str:
    """A camera_path.json as nerfstudio's viewer writes it (keys, value types and matrix layout)."""
    data = {
        "default_fov": 50.0, "default_transition_sec": 2.0,
        "keyframes": [{"matrix": m.reshape(-1).tolist(), "fov": 50.0, "aspect": width / height,
                       "override_transition_enabled": False, "override_transition_sec": None} for m in c2ws[[0, -1]]],
        "camera_type": "perspective", "render_height": height, "render_width": width, "fps": 24, "seconds": 0.25,
        "is_cycle": False, "smoothness_value": 0.5,
        "camera_path": [{"camera_to_world": m.reshape(-1).tolist(), "fov": f, "aspect": width / height}
                        for m, f in zip(c2ws, fovs)],
        "crop": None,
    }
    path = tmp_path / "ns_camera_path.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_quaternion_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        r = quaternion_to_rotation(q)
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(r), 1)
        back = rotation_to_quaternion(r)
        assert np.allclose(back, q if back @ q > 0 else -q, atol=1e-9)


def test_open_path_runs_from_first_to_last_keyframe():
    kfs = keyframes(3)
    c2w, fov = interpolate_keyframes(kfs, 21)
    assert np.allclose(c2w[0], kfs[0].c2w, atol=1e-9) and np.allclose(c2w[-1], kfs[-1].c2w, atol=1e-9)
    assert np.allclose(c2w[10], kfs[1].c2w, atol=1e-9)            # key-frame k sits at t = k
    assert np.allclose(fov[[0, 10, 20]], [40, 45, 50])
    for m in c2w:                                                 # every frame is a rigid pose
        assert np.allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-9)
    steps = np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=1)
    assert steps.max() < 3 * steps.min()                          # smooth: no jumps between frames


def test_loop_closes_and_single_keyframe_holds_still():
    kfs = keyframes(3)
    c2w, _ = interpolate_keyframes(kfs, 30, loop=True)
    assert np.allclose(c2w[0], kfs[0].c2w, atol=1e-9) and np.allclose(c2w[20], kfs[2].c2w, atol=1e-9)
    # the last frame heads back towards the first key-frame
    assert np.linalg.norm(c2w[-1, :3, 3] - kfs[0].c2w[:3, 3]) < np.linalg.norm(c2w[20, :3, 3] - kfs[0].c2w[:3, 3])
    still, fov = interpolate_keyframes(kfs[:1], 5)
    assert np.allclose(still, kfs[0].c2w) and np.allclose(fov, 40)


def test_written_path_reads_back_in_nerfstudio_layout(tmp_path):
    path = make_path(keyframes(3), 80, 60, fps=10, seconds=2)
    file = write_camera_path(path, tmp_path / "camera_path.json")
    data = json.loads(file.read_text())
    for key in ("camera_path", "render_height", "render_width", "fps", "seconds", "camera_type", "keyframes",
                "is_cycle", "smoothness_value", "default_fov"):
        assert key in data
    assert data["camera_type"] == "perspective" and len(data["camera_path"]) == 20
    first = data["camera_path"][0]
    assert len(first["camera_to_world"]) == 16 and first["aspect"] == pytest.approx(80 / 60)
    # row-major: the translation is the 4th, 8th and 12th entry
    assert first["camera_to_world"][3] == pytest.approx(path.c2w[0, 0, 3])
    back = read_camera_path(file)
    assert np.allclose(back.c2w, path.c2w) and np.allclose(back.fov, path.fov)
    assert (back.width, back.height, back.fps, len(back.keyframes)) == (80, 60, 10, 3)
    assert len(resampled(back, 5)) == 10


def test_nerfstudio_file_loads_with_its_intrinsics(tmp_path):
    c2ws = look_at(np.array([[3.0, 0.0, 1.0], [2.5, 1.5, 1.0], [1.5, 2.5, 1.2]]), (0, 0, 0))
    path = read_camera_path(nerfstudio_file(tmp_path, c2ws, [50.0, 50.0, 30.0]))
    assert len(path) == 3 and np.allclose(path.c2w, c2ws)
    cams = path_cameras(path)
    assert (cams.width, cams.height) == (64, 48)
    # nerfstudio's focal: 0.5 * render_height / tan(fov / 2), principal point at the centre
    assert float(cams.fy[2]) == pytest.approx(24 / math.tan(math.radians(15)), rel=1e-5)
    assert float(cams.cx[0]) == 32 and float(cams.cy[0]) == 24
    half = path_cameras(path, 32)
    assert (half.width, half.height) == (32, 24) and float(half.fy[0]) == pytest.approx(float(cams.fy[0]) / 2)


@pytest.mark.parametrize("data, problem", [
    ({"render_width": 8, "render_height": 8, "camera_path": []}, "non-empty"),
    ({"render_width": 8, "camera_path": [{}]}, "render_height"),
    ({"render_width": 8, "render_height": 8, "camera_path": [{"camera_to_world": [1] * 16, "fov": 50}]}, "rigid"),
    ({"render_width": 8, "render_height": 8, "camera_path": [{"camera_to_world": [0] * 15, "fov": 50}]}, "16 finite"),
    ({"render_width": 8, "render_height": 8,
      "camera_path": [{"camera_to_world": np.eye(4).reshape(-1).tolist(), "fov": 190}]}, "field of view"),
    ({"camera_type": "fisheye", "render_width": 8, "render_height": 8, "camera_path": []}, "fisheye"),
])
def test_bad_files_name_the_problem(tmp_path, data, problem):
    file = tmp_path / "bad.json"
    file.write_text(json.dumps(data))
    with pytest.raises(CameraPathError, match=problem) as err:
        read_camera_path(file)
    assert str(err.value).startswith(str(file)) and "\n" not in str(err.value)


def test_render_path_cli_matches_a_direct_render(run_copy, tmp_path):
    """A path from make_path/write_camera_path renders with ``plenox render --path`` at --resolution
    and --fps; its first frame is the model seen from the first key-frame."""
    file = write_camera_path(make_path(keyframes(2), 40, 30, fps=10, seconds=0.5), tmp_path / "camera_path.json")
    video = tmp_path / "path.mp4"
    assert main(["render", str(run_copy), "--path", str(file), "--video", str(video), "--fps", "8",
                 "--resolution", "32x24"]) == 0
    frames = sorted(p for p in (run_copy / "renders" / "path").glob("path_*.png"))
    assert len(frames) == 4 and video.stat().st_size > 0     # re-sampled: 8 fps x 0.5 s
    first = iio.imread(frames[0])
    assert first.shape == (24, 32, 3)
    _, _, scene, renderer = open_run(str(run_copy))
    cams = resized(path_cameras(read_camera_path(file)), (32, 24))
    direct = renderer.render_image(*scene.camera_rays(cams, 0))["rgb"]
    assert np.abs(first.astype(float) - (direct.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)).max() <= 1


def test_render_nerfstudio_path_and_refusals(run_copy, tmp_path, capsys):
    c2ws = look_at(np.array([[3.0, 0.0, 1.0], [2.5, 1.5, 1.0]]), (0, 0, 0))
    assert main(["render", str(run_copy), "--path", nerfstudio_file(tmp_path, c2ws, [50.0, 45.0])]) == 0
    assert len(list((run_copy / "renders" / "path").glob("path_*.png"))) >= 2
    assert main(["render", str(run_copy), "--spiral", "4"]) == 2
    assert "spiral paths are for forward-facing LLFF scenes" in capsys.readouterr().err
    assert main(["render", str(run_copy), "--path", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["render", str(run_copy), "--orbit", "2", "--resolution", "big"])
    assert exit_info.value.code == 2


def test_spiral_geometry_on_a_generated_llff_scene(tmp_path):
    folder = tmp_path / "llff"
    write_llff_scene(folder, n=8, width=24, height=18, factor=4, bounds=(2.0, 6.0))
    scene = load_scene(folder)
    train = scene.splits["train"].cameras.c2w.double().numpy()
    near, far = 1 / 0.75, 6.0 / 2.0 / 0.75                      # the loader's scaling of the bounds
    poses = spiral_path(train, near, far, 12)
    assert poses.shape == (12, 4, 4)
    focus = 1.0 / (0.25 / (0.9 * near) + 0.75 / (5 * far))
    avg = average_pose(train)      # near the identity (the loader recentres on all views, not just train)
    assert np.allclose(avg[:3, :3], np.eye(3), atol=0.1)
    offsets = (train[:, :3, 3] - avg[:3, 3]) @ avg[:3, :3]
    target = avg[:3, :3] @ np.array([0.0, 0.0, -focus]) + avg[:3, 3]   # every spiral camera looks here
    for pose in poses:
        to_target = (target - pose[:3, 3]) / np.linalg.norm(target - pose[:3, 3])
        assert np.allclose(-pose[:3, 2], to_target, atol=1e-6)
        assert np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)
    radii = np.percentile(np.abs(offsets), 90, axis=0)
    local = (poses[:, :3, 3] - avg[:3, 3]) @ avg[:3, :3]
    assert np.allclose(np.abs(local[:, :2]).max(0), radii[:2], rtol=0.15)
    assert np.allclose(local[0], [radii[0], 0, 0], atol=1e-9)           # theta = 0: (rx, 0, 0)


def test_render_spiral_cli_on_llff_run(tmp_path):
    folder = tmp_path / "llff"
    write_llff_scene(folder, n=8, width=24, height=18, factor=4)
    run = tmp_path / "run"
    fit_run(str(folder), str(run), "llff", TINY_LLFF_FIT, progress=False)
    assert main(["render", str(run), "--orbit", "3"]) == 2          # orbit still refused for NDC
    video = tmp_path / "spiral.mp4"
    assert main(["render", str(run), "--spiral", "6", "--video", str(video), "--resolution", "48"]) == 0
    frames = sorted((run / "renders" / "spiral").glob("spiral_*.png"))
    assert len(frames) == 6 and video.stat().st_size > 0
    image = iio.imread(frames[0])
    assert image.shape == (36, 48, 3) and image.std() > 1           # a picture, not a flat fill
    # at twice the size, the NDC rays stay in the training cameras' frame: same picture, finer
    _, _, scene, renderer = open_run(str(run))
    small = scene.splits["train"].cameras.subset([0])
    big = resized(small, (48, 36))
    a = renderer.render_image(*scene.camera_rays(small, 0))["rgb"]
    b = renderer.render_image(*scene.camera_rays(big, 0))["rgb"]
    b_down = torch.nn.functional.avg_pool2d(b.permute(2, 0, 1)[None], 2)[0].permute(1, 2, 0)
    assert (a - b_down).abs().mean() < 0.05
