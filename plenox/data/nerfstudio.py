"""nerfstudio / instant-ngp scenes: one ``transforms.json`` listing every frame.

Intrinsics (``fl_x``, ``fl_y``, ``cx``, ``cy``, ``w``, ``h``, OpenCV ``k1``, ``k2``,
``p1``, ``p2``) sit at the top level or per frame (a frame's value wins);
``camera_angle_x`` / ``camera_angle_y`` stand in for a missing focal length
(instant-ngp's synthetic files). Intrinsics describe a ``w`` x ``h`` image and
are rescaled to the image actually read. ``file_path`` is relative to the json;
a missing suffix is tried as .png / .jpg. Poses are OpenGL camera-to-world.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from plenox.data.cameras import Cameras
from plenox.data.checks import check_rigid, frame_pose, get_frames, get_number, read_json
from plenox.data.images import WHITE, load_images, resolve_image, scene_background
from plenox.data.scene import Scene, Split
from plenox.errors import SceneError

SUPPORTED_MODELS = {"OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"}
INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y",
                  "k1", "k2", "k3", "k4", "p1", "p2", "camera_model", "is_fisheye")
# Blender's box-to-camera-distance ratio (radius 1.5 for cameras at distance 4),
# which is also instant-ngp's unit cube at its default scale of 0.33.
BOX_TO_DISTANCE = 0.375
NGP_SCALE, NGP_OFFSET, NGP_MAX_AABB_SCALE = 0.33, 0.5, 128


def load_nerfstudio(json_path: Path, downscale: int, background, holdout_every: int) -> Scene:
    """Load a ``transforms.json``; ``background`` (RGB or None) is composited under images with alpha."""
    meta = read_json(json_path)
    frames = sorted(get_frames(meta, json_path), key=lambda f: f["file_path"])
    split_idx = _split_indices(meta, frames, json_path, holdout_every)
    used = sorted(set().union(*split_idx.values()))
    frames = [frames[i] for i in used]
    remap = {old: new for new, old in enumerate(used)}

    paths = [resolve_image(json_path.parent, f["file_path"], json_path) for f in frames]
    names = [p.stem for p in paths]
    c2w = check_rigid(np.stack([frame_pose(f, i, json_path) for i, f in enumerate(frames)]), names, json_path)
    images, alpha, (h, w) = load_images(paths, downscale, background or WHITE)
    cams = _cameras(meta, frames, c2w, w, h, json_path).scaled(downscale)

    splits = {}
    for split_name, idx in split_idx.items():
        sel = torch.tensor([remap[i] for i in idx], dtype=torch.long)
        splits[split_name] = Split(
            images=images[sel],
            cameras=cams.subset(sel),
            names=[names[i] for i in sel.tolist()],
            alpha=None if alpha is None else alpha[sel],
        )
    center, radius = _box(meta, c2w, json_path)
    near, far = _near_far(c2w, center, radius)
    return Scene(
        name=json_path.parent.name,
        format="nerfstudio",
        splits=splits,
        background=scene_background(background, alpha is not None),
        center=center,
        radius=radius,
        near=near,
        far=far,
        ndc=False,
        holdout=None if any(f"{s}_filenames" in meta for s in ("train", "val", "test")) else
        f"every {holdout_every}th frame (0, {holdout_every}, {2 * holdout_every}, ...) held out, in file-path order",
    )


def _split_indices(meta: dict, frames: list[dict], path: Path, holdout_every: int) -> dict[str, list[int]]:
    """Frame indices per split: the file's ``{train,val,test}_filenames`` lists, else every holdout_every-th frame as test."""
    keys = {s: f"{s}_filenames" for s in ("train", "val", "test")}
    if not any(k in meta for k in keys.values()):
        if len(frames) < 2:
            raise SceneError(path, "needs at least 2 frames to hold out a test view")
        idx = range(len(frames))
        return {
            "train": [i for i in idx if i % holdout_every],
            "test": [i for i in idx if i % holdout_every == 0],
        }
    by_name = {os.path.normpath(f["file_path"]): i for i, f in enumerate(frames)}
    out = {}
    for split, key in keys.items():
        if key not in meta:
            continue
        listed = meta[key]
        if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
            raise SceneError(path, f"'{key}' must be a list of file paths")
        unknown = [n for n in listed if os.path.normpath(n) not in by_name]
        if unknown:
            raise SceneError(path, f"'{key}' lists {unknown[0]!r}, which is not a frame's file_path")
        out[split] = [by_name[os.path.normpath(n)] for n in listed]
    if not out.get("train"):
        raise SceneError(path, "explicit splits need a non-empty 'train_filenames'")
    if "test" not in out:
        if "val" not in out:
            raise SceneError(path, "explicit splits need 'test_filenames' or 'val_filenames'")
        out["test"] = out["val"]  # nerfstudio evaluates on its val list
    return out


def _cameras(meta: dict, frames: list[dict], c2w: np.ndarray, w_img: int, h_img: int, path: Path) -> Cameras:
    """Per-frame intrinsics at the resolution of the images read (w_img x h_img)."""
    fx, fy, cx, cy, dist = [], [], [], [], []
    top = {k: meta[k] for k in INTRINSIC_KEYS if k in meta}
    for frame in frames:
        f = {**top, **{k: frame[k] for k in INTRINSIC_KEYS if k in frame}}
        where = f"frame {frame['file_path']} (or the top level)"
        model = f.get("camera_model", "OPENCV")
        if model not in SUPPORTED_MODELS or f.get("is_fisheye", False):
            raise SceneError(path, f"{where}: camera model {model!r}{' (fisheye)' if f.get('is_fisheye') else ''} "
                                   f"is not supported (pinhole with k1, k2, p1, p2 only)")
        w = get_number(f, "w", path, where, default=float(w_img))
        h = get_number(f, "h", path, where, default=float(h_img))
        fl_x, fl_y = _focal(f, w, h, path, where)
        for k in ("k3", "k4"):
            if get_number(f, k, path, where, default=0.0) != 0.0:
                raise SceneError(path, f"{where}: distortion coefficient {k} is not supported (k1, k2, p1, p2 only)")
        sx, sy = w_img / w, h_img / h
        fx.append(fl_x * sx)
        fy.append(fl_y * sy)
        cx.append(get_number(f, "cx", path, where, default=w / 2) * sx)
        cy.append(get_number(f, "cy", path, where, default=h / 2) * sy)
        dist.append([get_number(f, k, path, where, default=0.0) for k in ("k1", "k2", "p1", "p2")])
    dist = np.asarray(dist, dtype=np.float32)
    return Cameras(
        c2w=c2w, fx=fx, fy=fy, cx=cx, cy=cy, width=w_img, height=h_img,
        distortion=dist if dist.any() else None,
    )


def _focal(f: dict, w: float, h: float, path: Path, where: str) -> tuple[float, float]:
    """(fl_x, fl_y) in pixels of a w x h image, from fl_x / fl_y or the camera_angle fallbacks."""
    def one(fl_key, angle_key, size):
        if fl_key in f:
            return get_number(f, fl_key, path, where)
        if angle_key in f:
            angle = get_number(f, angle_key, path, where)
            if not 0 < angle < math.pi:
                raise SceneError(path, f"{where}: {angle_key} must lie in (0, pi) radians, got {angle}")
            return 0.5 * size / math.tan(0.5 * angle)
        return None

    fl_x, fl_y = one("fl_x", "camera_angle_x", w), one("fl_y", "camera_angle_y", h)
    if fl_x is None and fl_y is None:
        raise SceneError(path, f"{where}: no focal length (need fl_x, fl_y or camera_angle_x)")
    fl_x = fl_y if fl_x is None else fl_x
    fl_y = fl_x if fl_y is None else fl_y
    if fl_x <= 0 or fl_y <= 0:
        raise SceneError(path, f"{where}: focal lengths must be positive, got {fl_x}, {fl_y}")
    return fl_x, fl_y


def _box(meta: dict, c2w: np.ndarray, path: Path) -> tuple[tuple, tuple]:
    """The world box: ``aabb`` if given, else instant-ngp's ``aabb_scale`` box, else one fitted to the cameras."""
    if "aabb" in meta:
        try:
            lo, hi = np.asarray(meta["aabb"], dtype=np.float64)
        except (TypeError, ValueError):
            raise SceneError(path, "'aabb' must be [[xmin, ymin, zmin], [xmax, ymax, zmax]]") from None
        if lo.shape != (3,) or not np.isfinite([lo, hi]).all() or (hi <= lo).any():
            raise SceneError(path, "'aabb' must be [[xmin, ymin, zmin], [xmax, ymax, zmax]] with max > min")
        return _triple((lo + hi) / 2), _triple((hi - lo) / 2)
    if "aabb_scale" in meta:
        return _ngp_box(meta, path)
    return _fit_box(c2w, path)


def _ngp_box(meta: dict, path: Path) -> tuple[tuple, tuple]:
    """instant-ngp's box in file coordinates.

    instant-ngp maps a file position p to (p_y, p_z, p_x) * scale + offset and
    bounds the scene by a cube of centre 0.5 and half-size 0.5 * aabb_scale.
    """
    aabb_scale = get_number(meta, "aabb_scale", path, "the top level")
    scale = get_number(meta, "scale", path, "the top level", default=NGP_SCALE)
    if aabb_scale <= 0 or scale <= 0:
        raise SceneError(path, "'aabb_scale' and 'scale' must be positive")
    offset = meta.get("offset", NGP_OFFSET)
    try:
        offset = np.broadcast_to(np.asarray(offset, dtype=np.float64), (3,))
    except (TypeError, ValueError):
        raise SceneError(path, f"'offset' must be a number or 3 numbers, got {offset!r}") from None
    center = np.roll((0.5 - offset) / scale, 1)  # undo the axis cycle (x, y, z) -> (y, z, x)
    half = 0.5 * min(aabb_scale, NGP_MAX_AABB_SCALE) / scale
    return _triple(center), _triple([half] * 3)


def _fit_box(c2w: np.ndarray, path: Path) -> tuple[tuple, tuple]:
    """A cube around the point the cameras look at, sized like Blender's relative to the camera distance."""
    origins = c2w[:, :3, 3]
    forward = -c2w[:, :3, 2] / np.linalg.norm(c2w[:, :3, 2], axis=1, keepdims=True)
    # Least-squares point nearest to every optical axis: sum (I - d d^T)(p - o) = 0.
    proj = np.eye(3) - forward[:, :, None] * forward[:, None, :]
    a, b = proj.sum(0), (proj @ origins[:, :, None]).sum(0)[:, 0]
    eig = np.linalg.eigvalsh(a)
    if eig[0] < 1e-4 * eig[-1]:
        raise SceneError(path, "cannot fit a scene box: the camera axes are (nearly) parallel; add 'aabb' or 'aabb_scale'")
    center = np.linalg.solve(a, b)
    if np.median(((center - origins) * forward).sum(1)) <= 0:
        raise SceneError(path, "cannot fit a scene box: the cameras do not look at a common point; add 'aabb'")
    r = BOX_TO_DISTANCE * float(np.median(np.linalg.norm(origins - center, axis=1)))
    return _triple(center), _triple([r] * 3)


def _near_far(c2w: np.ndarray, center: tuple, radius: tuple) -> tuple[float, float]:
    """Depth bounds that cover the box from every camera: camera distance to the centre -+ the box's half-diagonal."""
    dist = np.linalg.norm(c2w[:, :3, 3] - np.asarray(center), axis=1)
    reach = float(np.linalg.norm(radius))
    return max(float(dist.min()) - reach, 1e-2 * reach), float(dist.max()) + reach


def _triple(v) -> tuple[float, float, float]:
    return tuple(float(x) for x in v)
