import json
import math

import numpy as np
import pytest
import torch
from scipy.optimize import fsolve

from plenox.data.cameras import pixel_rays
from plenox.data import detect_format, load_scene
from scenes import tiny_scene, write_nerfstudio_scene

K = (0.08, -0.03, 0.002, -0.001)


@pytest.fixture(scope="module")
def split():
    return tiny_scene(size=16, n_train=10, n_test=1).splits["train"]


def write(tmp_path, split, **kwargs):
    return write_nerfstudio_scene(tmp_path, split, **kwargs)


def edit(path, change):
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def test_round_trip_and_holdout(tmp_path, split):
    path = write(tmp_path, split)
    scene = load_scene(tmp_path)
    assert detect_format(tmp_path) == "nerfstudio" and detect_format(path) == "nerfstudio"
    assert scene.format == "nerfstudio" and not scene.ndc
    assert scene.background is None  # RGB images, no alpha
    names = sorted(split.names)  # frames are ordered by file path: r_0, r_1, r_2, ..., r_9
    assert scene.splits["test"].names == [names[0], names[8]]
    assert len(scene.splits["train"]) == 8
    loaded = scene.splits["test"]
    for j, name in enumerate(loaded.names):
        i = split.names.index(name)
        assert torch.allclose(loaded.cameras.c2w[j], split.cameras.c2w[i])
        assert (loaded.images[j] - split.images[i]).abs().max() <= 0.51 / 255
    assert torch.allclose(loaded.cameras.fx, split.cameras.fx[:2])
    assert loaded.cameras.distortion is None


def test_box_is_fitted_to_the_cameras(tmp_path, split):
    write(tmp_path, split)
    scene = load_scene(tmp_path)
    # Cameras 4 units away looking at the origin: the box Blender scenes use.
    np.testing.assert_allclose(scene.center, (0, 0, 0), atol=1e-4)
    np.testing.assert_allclose(scene.radius, (1.5, 1.5, 1.5), rtol=1e-4)
    assert scene.near == pytest.approx(4 - 1.5 * math.sqrt(3), rel=1e-4)
    assert scene.far == pytest.approx(4 + 1.5 * math.sqrt(3), rel=1e-4)


def test_aabb_hints(tmp_path, split):
    write(tmp_path, split, extra={"aabb_scale": 4})
    scene = load_scene(tmp_path)
    assert scene.center == (0, 0, 0) and scene.radius == pytest.approx((2 / 0.33,) * 3)
    write(tmp_path, split, extra={"aabb_scale": 1, "scale": 0.5, "offset": [0.5, 0.5, 0.6]})
    # instant-ngp: ngp = (y, z, x) * scale + offset, so the unit cube's centre is x = -0.2 in the file's frame
    scene = load_scene(tmp_path)
    assert scene.center == pytest.approx((-0.2, 0, 0)) and scene.radius == pytest.approx((1, 1, 1))
    write(tmp_path, split, extra={"aabb": [[-1, -2, -3], [1, 2, 5]]})
    scene = load_scene(tmp_path)
    assert scene.center == (0, 0, 1) and scene.radius == (1, 2, 4)


def test_distorted_pixel_ray_equals_undistorted_reference(tmp_path, split):
    write(tmp_path, split, distortion=K, per_frame=True)
    cams = load_scene(tmp_path).splits["train"].cameras
    assert torch.allclose(cams.distortion, torch.tensor([K]).expand(len(cams), 4))
    px, py = torch.tensor([0, 15, 3]), torch.tensor([0, 15, 12])
    _, dirs = pixel_rays(cams, torch.tensor([0, 1, 2]), px, py)
    shifts = []
    for i in range(3):
        fx, fy, cx, cy = (float(v[i]) for v in (cams.fx, cams.fy, cams.cx, cams.cy))
        xd, yd = (px[i].item() + 0.5 - cx) / fx, (py[i].item() + 0.5 - cy) / fy

        def residual(v):
            x, y = v
            r2 = x * x + y * y
            radial = 1 + K[0] * r2 + K[1] * r2 * r2
            return [x * radial + 2 * K[2] * x * y + K[3] * (r2 + 2 * x * x) - xd,
                    y * radial + K[2] * (r2 + 2 * y * y) + 2 * K[3] * x * y - yd]

        x, y = fsolve(residual, [xd, yd], xtol=1e-12)
        reference = cams.c2w[i, :3, :3].double().numpy() @ [x, -y, -1.0]
        np.testing.assert_allclose(dirs[i].double().numpy(), reference, atol=1e-4)
        shifts.append(abs(x - xd) + abs(y - yd))
    assert max(shifts) > 1e-3  # the corner rays really move


def test_intrinsic_fallbacks_and_rescaling(tmp_path, split):
    path = write(tmp_path, split)

    def angle_only(meta):
        for k in ("fl_x", "fl_y", "cx", "cy", "w", "h"):
            del meta[k]
        meta["camera_angle_x"] = 0.8
        for f in meta["frames"]:  # instant-ngp style: no suffix
            f["file_path"] = f["file_path"][: -len(".png")]

    edit(path, angle_only)
    cams = load_scene(tmp_path).splits["train"].cameras
    assert torch.allclose(cams.fx, torch.full_like(cams.fx, 8 / math.tan(0.4)))
    assert torch.allclose(cams.fy, cams.fx) and torch.allclose(cams.cx, torch.full_like(cams.cx, 8.0))

    def double_resolution(meta):
        meta.update(fl_x=100.0, fl_y=120.0, cx=17.0, cy=15.0, w=32, h=32)

    edit(path, double_resolution)  # intrinsics for a 32x32 original, images are 16x16
    cams = load_scene(tmp_path, downscale=2).splits["train"].cameras
    assert (cams.width, cams.height) == (8, 8)
    assert cams.fx[0] == pytest.approx(25.0) and cams.fy[0] == pytest.approx(30.0)
    assert cams.cx[0] == pytest.approx(4.25) and cams.cy[0] == pytest.approx(3.75)


def test_explicit_splits(tmp_path, split):
    def lists(meta):
        meta["train_filenames"] = ["images/r_1.png", "./images/r_2.png", "images/r_3.png"]
        meta["val_filenames"] = ["images/r_4.png"]

    edit(write(tmp_path, split), lists)
    scene = load_scene(tmp_path)
    assert scene.splits["train"].names == ["r_1", "r_2", "r_3"]
    assert scene.splits["val"].names == scene.splits["test"].names == ["r_4"]
