"""COLMAP models as a scene: binary and text readers, camera models, poses, bad files."""

import numpy as np
import pytest
import torch

from colmap_files import write_colmap
from plenox.cli import main
from plenox.data import detect_format, load_scene
from plenox.data.builtin import hemisphere_cameras, render_builtin
from plenox.data.normalize import BOX_RADIUS, align_similarity, apply_similarity
from scenes import expect_error

N = 12


@pytest.fixture(scope="module")
def known():
    """Built-in cameras (level, 4 units from the origin, looking at it), their images and file names."""
    cams = hemisphere_cameras(N, 16, np.random.default_rng(3))
    images, _ = render_builtin(cams)
    return cams, images, [f"img_{i:02d}.png" for i in range(N)]


def in_name_order(scene):
    """(names, c2w (N, 4, 4) float64, fx, images) of all views of a scene, sorted by name."""
    splits = [scene.splits["train"], scene.splits["test"]]
    names = [n for s in splits for n in s.names]
    order = np.argsort(names)
    c2w = torch.cat([s.cameras.c2w for s in splits]).double().numpy()[order]
    fx = torch.cat([s.cameras.fx for s in splits])[order]
    images = torch.cat([s.images for s in splits])[order]
    return [names[i] for i in order], c2w, fx, images



@pytest.mark.parametrize("binary", [True, False], ids=["bin", "txt"])
def test_loads_the_known_cameras_up_to_the_normalising_similarity(tmp_path, known, binary):
    cams, images, names = known
    write_colmap(tmp_path, cams, names, images, binary=binary)
    scene = load_scene(tmp_path)
    assert detect_format(tmp_path) == scene.format == "colmap"
    assert scene.capture == "object" and not scene.ndc and scene.name == tmp_path.name
    assert scene.splits["test"].names == ["img_00", "img_08"] and len(scene.splits["train"]) == N - 2
    assert "every 8th" in scene.holdout

    loaded_names, c2w, fx, loaded_images = in_name_order(scene)
    assert loaded_names == [n[:-4] for n in names]
    known_c2w = cams.c2w.double().numpy()
    np.testing.assert_allclose(c2w, apply_similarity(scene.transform, known_c2w), atol=1e-5)
    # Level cameras looking at the origin from distance 4 are already in the Blender frame:
    # up is +z, the axes meet at 0 and the box is 0.375 x 4 = 1.5.
    np.testing.assert_allclose(scene.transform, np.eye(4), atol=1e-6)
    assert scene.radius == (BOX_RADIUS,) * 3 and scene.center == (0.0, 0.0, 0.0)
    assert torch.allclose(fx, cams.fx) and scene.splits["train"].cameras.distortion is None
    assert (loaded_images - images).abs().max() <= 0.51 / 255


def test_points_set_the_box_and_every_path_into_the_model_loads(tmp_path, known):
    cams, images, names = known
    rng = np.random.default_rng(0)
    # An object wider (x: +-2) than the cameras-only box (0.375 x distance 4 = 1.5).
    obj = rng.uniform([-2.0, -0.3, 0.2], [2.0, 0.3, 0.8], (400, 3))
    far = rng.normal(size=(100, 3)) * 20 + [0, 0, 30]  # beyond the cameras: background, not the object
    model = write_colmap(tmp_path, cams, names, images, points=np.concatenate([obj, far]))
    scene = load_scene(tmp_path)
    moved = obj @ scene.transform[:3, :3].T + scene.transform[:3, 3]
    # The box stays centred where the axes meet (the origin) and grows to hold the object's
    # 5th-95th percentiles: the farthest of them (along x) lands on the Blender box's face.
    np.testing.assert_allclose(np.abs(np.percentile(moved, [5, 95], axis=0)).max(), BOX_RADIUS, atol=1e-6)
    np.testing.assert_allclose(scene.transform[:3, 3], 0.0, atol=1e-6)
    assert scene.transform[0, 0] < 1.0
    for path in (model, model.parent, model / "cameras.bin", model / "points3D.bin"):
        assert detect_format(path) == "colmap"
        again = load_scene(path)
        assert again.name == tmp_path.name and np.allclose(again.transform, scene.transform)


def test_a_small_object_keeps_the_cameras_box(tmp_path, known):
    cams, images, names = known
    obj = np.random.default_rng(1).uniform([-0.3, -0.3, 0.4], [0.3, 0.3, 1.0], (300, 3))
    write_colmap(tmp_path, cams, names, images, points=obj)
    # 0.375 x the camera distance (1.5 at 4) already holds it: the frame does not move.
    np.testing.assert_allclose(load_scene(tmp_path).transform, np.eye(4), atol=1e-6)


@pytest.mark.parametrize("model, extra, distortion", [
    ("SIMPLE_PINHOLE", [], None),
    ("SIMPLE_RADIAL", [0.05], [0.05, 0, 0, 0]),
    ("RADIAL", [0.05, -0.01], [0.05, -0.01, 0, 0]),
    ("OPENCV", [0.05, -0.01, 0.001, -0.002], [0.05, -0.01, 0.001, -0.002]),
    ("FULL_OPENCV", [0.05, -0.01, 0.001, -0.002, 0, 0, 0, 0], [0.05, -0.01, 0.001, -0.002]),
])
def test_supported_camera_models(tmp_path, known, model, extra, distortion):
    cams, images, names = known
    write_colmap(tmp_path, cams, names, images, model=model, extra=extra, binary=model != "RADIAL")
    train = load_scene(tmp_path).splits["train"].cameras
    assert torch.allclose(train.fx, train.fy)
    if distortion is None:
        assert train.distortion is None
    else:
        assert torch.allclose(train.distortion, torch.tensor([distortion] * len(train), dtype=torch.float32))


@pytest.mark.parametrize("model, extra, name", [
    ("OPENCV_FISHEYE", [0.1, 0, 0, 0], "OPENCV_FISHEYE"),
    ("FOV", [0.9], "FOV"),
    ("THIN_PRISM_FISHEYE", [0.0] * 8, "THIN_PRISM_FISHEYE"),
    ("FULL_OPENCV", [0.05, 0, 0, 0, 0.01, 0, 0, 0], "FULL_OPENCV with non-zero k3..k6"),
])
def test_unsupported_camera_models_are_refused_by_name(tmp_path, known, model, extra, name):
    cams, images, names = known
    write_colmap(tmp_path, cams, names, images, model=model, extra=extra, binary=model != "FOV")
    expect_error(tmp_path, "cameras.", f"the {name} camera model", "cannot render")


def test_images_of_different_cameras_mixed(tmp_path, known):
    cams, images, names = known
    sizes = [(16, 16)] * N
    sizes[5] = (20, 16)
    write_colmap(tmp_path, cams, names, images, sizes=sizes)
    expect_error(tmp_path, "cameras.bin", "different cameras mixed", "img_00.png is 16x16", "img_05.png is 20x16")


def test_one_shared_camera_and_a_missing_image(tmp_path, known):
    cams, images, names = known
    write_colmap(tmp_path, cams, names, images, shared_camera=True)
    assert len(load_scene(tmp_path).splits["train"]) == N - 2
    (tmp_path / "images" / names[3]).unlink()
    expect_error(tmp_path, "images.bin", "img_03.png", "not found")


def cut(path, keep):
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize("damage, fragments", [
    (lambda m: cut(m / "images.bin", 300), ["images.bin", "truncated"]),
    (lambda m: cut(m / "cameras.bin", 20), ["cameras.bin", "truncated"]),
    (lambda m: cut(m / "points3D.bin", 100), ["points3D.bin", "truncated"]),
    (lambda m: (m / "cameras.bin").write_bytes(np.random.default_rng(0).bytes(500)), ["cameras.bin"]),
    (lambda m: (m / "images.bin").write_bytes(b"\xff" * 64), ["images.bin"]),
    (lambda m: (m / "cameras.bin").write_bytes((m / "cameras.bin").read_bytes() + b"\0"), ["unexpected bytes"]),
    (lambda m: (m / "cameras.bin").write_bytes((m / "cameras.bin").read_bytes()[:12] + b"\x2a" +
                                               (m / "cameras.bin").read_bytes()[13:]), ["unknown camera model id 42"]),
    (lambda m: (m / "images.bin").unlink(), ["images.bin", "file not found"]),
])
def test_damaged_binary_model_is_one_line_error(tmp_path, known, damage, fragments):
    cams, images, names = known
    model = write_colmap(tmp_path, cams, names, images, points=np.zeros((5, 3)))
    damage(model)
    expect_error(tmp_path, *fragments)


@pytest.mark.parametrize("file, text, fragments", [
    ("cameras.txt", "1 PINHOLE sixteen 16 1 1 8 8\n", ["cameras.txt", "line 1", "expected numbers"]),
    ("cameras.txt", "1 FISHEYE_DELUXE 16 16 1 1 8 8\n", ["unknown camera model 'FISHEYE_DELUXE'"]),
    ("cameras.txt", "1 PINHOLE 16 16 1 1 8\n", ["PINHOLE takes 4 parameters, got 3"]),
    ("images.txt", "1 1 0 0 0 0 0 4 1\n\n", ["images.txt", "line 1", "IMAGE_ID"]),
    ("images.txt", "1 0 0 0 0 0 0 4 7 img_00.png\n\n", ["invalid pose"]),
    ("images.txt", "1 1 0 0 0 0 0 4 99 img_00.png\n\n", ["names camera 99"]),
    ("points3D.txt", "1 0 0\n", ["points3D.txt", "line 1"]),
])
def test_damaged_text_model_is_one_line_error(tmp_path, known, file, text, fragments):
    cams, images, names = known
    model = write_colmap(tmp_path, cams, names, images, binary=False)
    (model / file).write_text(text)
    expect_error(tmp_path, *fragments)


def test_cli_reports_a_damaged_model_in_one_line(tmp_path, known, capsys):
    cams, images, names = known
    model = write_colmap(tmp_path, cams, names, images)
    cut(model / "images.bin", 150)
    code = main(["fit", str(tmp_path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1 and "truncated" in err
    assert not (tmp_path / "run").exists()


def test_model_without_images_folder(tmp_path, known):
    cams, _, names = known
    write_colmap(tmp_path, cams, names, images=None)
    expect_error(tmp_path / "sparse" / "0", "no images/ folder")


def test_poses_survive_a_change_of_world_frame(tmp_path, known):
    """The same capture written in another world frame (COLMAP's is arbitrary) frames to the same cameras
    up to a turn about the up axis (the box's yaw follows the file's frame)."""
    cams, images, names = known
    angle = 0.7
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    moved = np.eye(4)
    moved[:3, :3], moved[:3, 3] = 2.5 * rot, [3.0, -1.0, 2.0]
    other = cams.subset(list(range(N)))
    other.c2w = torch.as_tensor(apply_similarity(moved, cams.c2w.double().numpy()), dtype=torch.float32)
    write_colmap(tmp_path / "a", cams, names, images)
    write_colmap(tmp_path / "b", other, names, images)
    _, a, _, _ = in_name_order(load_scene(tmp_path / "a"))
    _, b, _, _ = in_name_order(load_scene(tmp_path / "b"))
    fit = align_similarity(b[:, :3, 3], a[:, :3, 3])
    np.testing.assert_allclose(np.linalg.det(fit[:3, :3]), 1.0, atol=1e-4)          # no rescaling
    np.testing.assert_allclose(fit[:3, :3] @ [0, 0, 1], [0, 0, 1], atol=1e-4)        # up stays up
    np.testing.assert_allclose(b[:, :3, 3] @ fit[:3, :3].T + fit[:3, 3], a[:, :3, 3], atol=1e-4)
