"""Writing a processed capture: the COLMAP model as a nerfstudio ``transforms.json``, and downscaled image copies."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pycolmap

from plenox.data.images import area_downscale

# COLMAP parameter order per camera model, as nerfstudio transforms.json keys (COLMAP's own documentation).
PARAM_KEYS = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fl_x", "fl_y", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k1"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fl_x", "fl_y", "cx", "cy", "k1", "k2", "p1", "p2"),
}
JPEG_QUALITY = 95


def opengl_camera_to_world(cam_from_world: np.ndarray) -> np.ndarray:
    """(4, 4) OpenGL camera-to-world (x right, y up, z back) of a COLMAP pose.

    cam_from_world: (3, 4) [R | t] mapping world points into COLMAP's camera frame
    (OpenCV axes: x right, y down, z forward). The world frame is kept as it is.
    """
    w2c = np.eye(4)
    w2c[:3] = cam_from_world
    c2w = np.linalg.inv(w2c)
    c2w[:3, 1:3] *= -1.0  # y down -> up, z forward -> back
    return c2w


def camera_intrinsics(camera: pycolmap.Camera) -> dict:
    """A COLMAP camera as nerfstudio intrinsics: camera_model (OPENCV when it has distortion, else
    PINHOLE), w, h, fl_x, fl_y, cx, cy (pixels, COLMAP's convention: the first pixel's centre is at 0.5)
    and k1, k2, p1, p2 (zero where the model lacks them)."""
    model = camera.model.name
    if model not in PARAM_KEYS:
        raise ValueError(f"camera model {model} has no nerfstudio equivalent here (use one of {sorted(PARAM_KEYS)})")
    values = dict(zip(PARAM_KEYS[model], (float(v) for v in camera.params)))
    if "f" in values:
        values["fl_x"] = values["fl_y"] = values.pop("f")
    distortion = {k: values.get(k, 0.0) for k in ("k1", "k2", "p1", "p2")}
    return {
        "camera_model": "OPENCV" if any(distortion.values()) else "PINHOLE",
        "w": int(camera.width), "h": int(camera.height),
        "fl_x": values["fl_x"], "fl_y": values["fl_y"], "cx": values["cx"], "cy": values["cy"],
        **distortion,
    }


def transforms_json(reconstruction: pycolmap.Reconstruction, image_folder: str = "images") -> dict:
    """nerfstudio transforms.json contents for the registered images of a one-camera model:
    top-level intrinsics and one frame per image (sorted by name) with its file_path
    (``image_folder/<name>``), OpenGL camera-to-world transform_matrix and colmap_im_id."""
    cameras = list(reconstruction.cameras.values())
    if len(cameras) != 1:
        raise ValueError(f"expected a model with one camera, got {len(cameras)}")
    images = sorted((reconstruction.image(i) for i in reconstruction.reg_image_ids()), key=lambda im: im.name)
    frames = [{
        "file_path": f"{image_folder}/{im.name}",
        "transform_matrix": opengl_camera_to_world(im.cam_from_world().matrix()).tolist(),
        "colmap_im_id": int(im.image_id),
    } for im in images]
    return {**camera_intrinsics(cameras[0]), "frames": frames}


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_downscaled(images: Path, out: Path, names: list[str], factor: int) -> None:
    """Area-averaged copies of ``images/<name>`` at 1/factor size in ``out`` (nerfstudio's images_N);
    ragged right and bottom edges are cropped (plenox.data.images.area_downscale)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        img = iio.imread(images / name)
        small = area_downscale(img.astype(np.float32), factor)
        pixels = np.clip(np.rint(small), 0, np.iinfo(img.dtype).max).astype(img.dtype)
        extra = {"quality": JPEG_QUALITY} if Path(name).suffix.lower() in (".jpg", ".jpeg") else {}
        iio.imwrite(out / name, pixels, **extra)
