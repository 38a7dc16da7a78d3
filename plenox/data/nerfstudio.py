"""nerfstudio / instant-ngp scenes: one ``transforms.json`` listing every frame.

Intrinsics (``fl_x``, ``fl_y``, ``cx``, ``cy``, ``w``, ``h``, OpenCV ``k1``, ``k2``,
``p1``, ``p2``) sit at the top level or per frame (a frame's value wins);
``camera_angle_x`` / ``camera_angle_y`` stand in for a missing focal length
(instant-ngp's synthetic files). Intrinsics describe a ``w`` x ``h`` image and
are rescaled to the image actually read. ``file_path`` is relative to the json;
a missing suffix is tried as .png / .jpg. Poses are OpenGL camera-to-world.

A file with ``aabb`` or ``aabb_scale`` keeps its coordinates and that box. Any other file is
a capture: it is classified and normalised like a COLMAP model (plenox.data.normalize),
using the sparse points of a COLMAP model in ``sparse/0`` beside it where there is one,
and its images are read under the pixel budget unless ``downscale`` is given.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from plenox.data.cameras import Cameras
from plenox.data.checks import check_rigid, frame_pose, get_frames, get_number, read_json
from plenox.data.colmap import aligned_points, frame_capture
from plenox.data.images import WHITE, image_size, load_images, resolve_image, scene_background
from plenox.data.normalize import Capture, budget_factor, budget_note, classify_capture, holdout_rule, near_far
from plenox.data.scene import Scene, Split
from plenox.errors import SceneError

log = logging.getLogger(__name__)

SUPPORTED_MODELS = {"OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"}
INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y",
                  "k1", "k2", "k3", "k4", "p1", "p2", "camera_model", "is_fisheye")
NGP_SCALE, NGP_OFFSET, NGP_MAX_AABB_SCALE = 0.33, 0.5, 128


def load_nerfstudio(json_path: Path, downscale: int | None, background, holdout_every: int) -> Scene:
    """Load a ``transforms.json``; ``background`` (RGB or None) is composited under images with alpha.

    downscale: integer factor, or None: 1 for a file with a box, the pixel budget for a capture.
    """
    meta = read_json(json_path)
    frames = sorted(get_frames(meta, json_path), key=lambda f: f["file_path"])
    split_idx = _split_indices(meta, frames, json_path, holdout_every)
    used = sorted(set().union(*split_idx.values()))
    frames = [frames[i] for i in used]
    remap = {old: new for new, old in enumerate(used)}

    paths = [resolve_image(json_path.parent, f["file_path"], json_path) for f in frames]
    names = [p.stem for p in paths]
    c2w = check_rigid(np.stack([frame_pose(f, i, json_path) for i, f in enumerate(frames)]), names, json_path)
    boxed = _has_box(meta)
    factor = downscale
    if factor is None and boxed:
        factor = 1
    elif factor is None:
        size = image_size(paths[0])
        factor = budget_factor(*size)
        log.info(budget_note(json_path.parent.name, *size, factor))
    images, alpha, (h, w) = load_images(paths, factor, background or WHITE)
    cams = _cameras(meta, frames, c2w, w, h, json_path)
    frame = None
    if not boxed:
        capture, frame = frame_capture(cams, aligned_points(json_path.parent, names, c2w), json_path,
                                       "put the COLMAP model in sparse/0 beside it, or give an 'aabb'")
        log.info(f"{json_path.parent.name}: {capture.reason}; {frame.note}")
        cams = replace(cams, c2w=frame.c2w)
    cams = cams.scaled(factor)

    splits = {}
    for split_name, idx in split_idx.items():
        sel = torch.tensor([remap[i] for i in idx], dtype=torch.long)
        splits[split_name] = Split(
            images=images[sel],
            cameras=cams.subset(sel),
            names=[names[i] for i in sel.tolist()],
            alpha=None if alpha is None else alpha[sel],
        )
    holdout = None if _explicit_splits(meta) else holdout_rule(holdout_every, "file_path")
    bg = scene_background(background, alpha is not None)
    if frame is not None:
        return frame.scene(json_path.parent.name, "nerfstudio", splits, bg, capture, holdout, factor)
    center, radius = _box(meta, json_path)
    near, far = near_far(c2w[:, :3, 3], center, radius)
    return Scene(name=json_path.parent.name, format="nerfstudio", splits=splits, background=bg, center=center,
                 radius=radius, near=near, far=far, ndc=False, holdout=holdout, downscale=factor)


def nerfstudio_capture(json_path: Path) -> Capture | None:
    """The capture kind of a ``transforms.json`` from its poses alone; None for a file with a box."""
    meta = read_json(json_path)
    if _has_box(meta):
        return None
    frames = get_frames(meta, json_path)
    return classify_capture(np.stack([frame_pose(f, i, json_path) for i, f in enumerate(frames)]), json_path)


def _has_box(meta: dict) -> bool:
    return "aabb" in meta or "aabb_scale" in meta


def _explicit_splits(meta: dict) -> bool:
    return any(f"{s}_filenames" in meta for s in ("train", "val", "test"))


def _split_indices(meta: dict, frames: list[dict], path: Path, holdout_every: int) -> dict[str, list[int]]:
    """Frame indices per split: the file's ``{train,val,test}_filenames`` lists, else every holdout_every-th frame as test."""
    keys = {s: f"{s}_filenames" for s in ("train", "val", "test")}
    if not _explicit_splits(meta):
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


def _box(meta: dict, path: Path) -> tuple[tuple, tuple]:
    """The world box of a file with a box: ``aabb`` if given, else instant-ngp's ``aabb_scale`` box."""
    if "aabb" in meta:
        try:
            lo, hi = np.asarray(meta["aabb"], dtype=np.float64)
        except (TypeError, ValueError):
            raise SceneError(path, "'aabb' must be [[xmin, ymin, zmin], [xmax, ymax, zmax]]") from None
        if lo.shape != (3,) or not np.isfinite([lo, hi]).all() or (hi <= lo).any():
            raise SceneError(path, "'aabb' must be [[xmin, ymin, zmin], [xmax, ymax, zmax]] with max > min")
        return _triple((lo + hi) / 2), _triple((hi - lo) / 2)
    return _ngp_box(meta, path)


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


def _triple(v) -> tuple[float, float, float]:
    return tuple(float(x) for x in v)
