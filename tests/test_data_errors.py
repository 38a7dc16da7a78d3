"""Every kind of bad scene gives a one-line SceneError naming the offending file."""

import json

import imageio.v3 as iio
import numpy as np
import pytest

from plenox.data import load_scene, write_blender_scene
from scenes import expect_error, tiny_scene, write_llff_scene, write_nerfstudio_scene
from plenox.errors import SceneError


@pytest.fixture(scope="module")
def scene():
    return tiny_scene(size=8, n_train=3, n_test=2)



def edit_json(path, change):
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def set_pose(index, matrix):
    def change(meta):
        meta["frames"][index]["transform_matrix"] = matrix

    return change


NAN_POSE = [[float("nan")] * 4] * 3 + [[0, 0, 0, 1]]
SCALED_POSE = [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]]
MIRROR_POSE = [[-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]


def test_missing_and_unknown(tmp_path):
    expect_error(tmp_path / "nowhere", "nowhere", "no such folder")
    expect_error(tmp_path, str(tmp_path), "unknown scene format")
    (tmp_path / "notes.txt").write_text("x")
    expect_error(tmp_path / "notes.txt", "notes.txt", "unknown scene format")
    assert issubclass(SceneError, ValueError)


@pytest.mark.parametrize(
    "damage, fragments",
    [
        (lambda f: (f / "transforms_train.json").write_text('{"frames": [}'), ["transforms_train.json", "malformed JSON"]),
        (lambda f: (f / "transforms_test.json").unlink(), ["transforms_test.json", "file not found"]),
        (lambda f: (f / "train" / "r_1.png").unlink(), ["transforms_train.json", "./train/r_1", "not found"]),
        (lambda f: (f / "train" / "r_1.png").write_bytes(b"not a png"), ["r_1.png", "unreadable or corrupt image"]),
        (lambda f: iio.imwrite(f / "test" / "r_1.png", np.zeros((4, 8, 4), np.uint8)), ["r_1.png", "8x4", "8x8"]),
        (lambda f: edit_json(f / "transforms_train.json", set_pose(2, NAN_POSE)), ["transforms_train.json", "r_2", "NaN"]),
        (lambda f: edit_json(f / "transforms_train.json", set_pose(0, SCALED_POSE)), ["transforms_train.json", "not rigid"]),
        (lambda f: edit_json(f / "transforms_test.json", set_pose(0, MIRROR_POSE)), ["transforms_test.json", "reflection"]),
        (lambda f: edit_json(f / "transforms_train.json", set_pose(0, [[1, 2], [3, 4]])), ["transforms_train.json", "4x4"]),
        (lambda f: edit_json(f / "transforms_train.json", lambda m: m.pop("camera_angle_x")), ["camera_angle_x"]),
        (lambda f: edit_json(f / "transforms_train.json", lambda m: m.update(frames=[])), ["'frames'"]),
        (lambda f: edit_json(f / "transforms_train.json", lambda m: m["frames"][0].pop("file_path")), ["file_path"]),
        (lambda f: (f / "transforms_val.json").write_text("[1, 2]"), ["transforms_val.json", "JSON object"]),
    ],
    ids=["json", "no-test-json", "no-image", "bad-image", "mixed-sizes", "nan-pose", "non-rigid", "mirror",
         "bad-matrix", "no-angle", "no-frames", "no-file-path", "json-list"],
)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # imageio probing its legacy plugins on a corrupt file
def test_bad_blender(scene, tmp_path, damage, fragments):
    write_blender_scene(scene, tmp_path)
    damage(tmp_path)
    expect_error(tmp_path, *fragments)


def poses_edit(change):
    def damage(folder):
        arr = np.load(folder / "poses_bounds.npy")
        np.save(folder / "poses_bounds.npy", change(arr))

    return damage


def nan_row(arr):
    arr[3, 5] = np.nan
    return arr


def sheared(arr):
    arr[2, 1] += 0.5
    return arr


@pytest.mark.parametrize(
    "damage, fragments",
    [
        (poses_edit(nan_row), ["poses_bounds.npy", "row 3", "NaN"]),
        (poses_edit(sheared), ["poses_bounds.npy", "image002", "not rigid"]),
        (poses_edit(lambda a: a[:, :15]), ["poses_bounds.npy", "(N, 17)"]),
        (poses_edit(lambda a: a[:4]), ["images_4", "5 images", "4 poses"]),
        (lambda f: (f / "poses_bounds.npy").write_bytes(b"garbage"), ["poses_bounds.npy", "unreadable"]),
        (lambda f: (f / "images_4").rename(f / "pictures"), [str("poses_bounds.npy"), "no images"]),
        (lambda f: iio.imwrite(f / "images_4" / "image001.png", np.zeros((5, 5, 3), np.uint8)), ["image001.png", "5x5"]),
    ],
    ids=["nan", "non-rigid", "shape", "count", "garbage", "no-folder", "mixed-sizes"],
)
def test_bad_llff(tmp_path, damage, fragments):
    write_llff_scene(tmp_path, n=5, width=8, height=6)
    damage(tmp_path)
    expect_error(tmp_path, *fragments)


@pytest.mark.parametrize(
    "change, fragments",
    [
        (lambda m: [m.pop(k) for k in ("fl_x", "fl_y")], ["transforms.json", "no focal length"]),
        (lambda m: m.update(camera_model="OPENCV_FISHEYE"), ["transforms.json", "OPENCV_FISHEYE", "not supported"]),
        (lambda m: m.update(k3=0.1), ["transforms.json", "k3"]),
        (lambda m: m.update(fl_x="wide"), ["transforms.json", "fl_x", "not a number"]),
        (lambda m: m.update(train_filenames=["images/nope.png"], test_filenames=[]), ["transforms.json", "nope.png"]),
        (lambda m: m.update(aabb=[[0, 0, 0], [1, -1, 1]]), ["transforms.json", "aabb"]),
        (lambda m: m["frames"][1].update(file_path="images/missing.png"), ["transforms.json", "missing.png", "not found"]),
        (lambda m: m.update(frames=m["frames"][:1]), ["transforms.json", "at least 2 frames"]),
    ],
    ids=["no-focal", "fisheye", "k3", "bad-number", "bad-split-list", "bad-aabb", "no-image", "one-frame"],
)
def test_bad_nerfstudio(scene, tmp_path, change, fragments):
    path = write_nerfstudio_scene(tmp_path, scene.splits["train"])
    edit_json(path, change)
    expect_error(tmp_path, *fragments)


def test_parallel_cameras_cannot_fit_a_box(scene, tmp_path):
    path = write_nerfstudio_scene(tmp_path, scene.splits["train"])
    same = scene.splits["train"].cameras.c2w[0].tolist()

    def parallel(meta):
        for i, frame in enumerate(meta["frames"]):
            frame["transform_matrix"] = [row[:3] + [row[3] + i] for row in same[:3]] + [same[3]]

    edit_json(path, parallel)
    expect_error(tmp_path, "transforms.json", "parallel", "aabb")
    edit_json(path, lambda m: m.update(aabb_scale=2))
    assert load_scene(tmp_path).radius == pytest.approx((1 / 0.33,) * 3)
