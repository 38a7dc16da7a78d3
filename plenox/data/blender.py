"""NeRF-synthetic ("Blender") scenes: ``transforms_{train,val,test}.json`` plus RGBA PNGs.

Each json holds ``camera_angle_x`` (horizontal field of view, radians) and
``frames`` with a ``file_path`` relative to the json and usually without a
suffix (``./train/r_0`` -> ``train/r_0.png``) and an OpenGL camera-to-world
``transform_matrix``. The focal length follows from the width of the image
actually read: 0.5 * W / tan(0.5 * camera_angle_x).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from plenox.data.cameras import Cameras
from plenox.data.checks import check_rigid, frame_pose, get_frames, get_number, read_json
from plenox.data.images import WHITE, load_images, resolve_image
from plenox.data.scene import Scene, Split
from plenox.errors import SceneError

SPLITS = ("train", "val", "test")
# svox2's box for the synthetic scenes and NeRF's sampling bounds.
BOX_CENTER = (0.0, 0.0, 0.0)
BOX_RADIUS = (1.5, 1.5, 1.5)
NEAR, FAR = 2.0, 6.0


def load_blender(folder: Path, downscale: int, background) -> Scene:
    """Load a Blender folder; ``background`` (RGB or None for white) is composited under the alpha."""
    bg = background or WHITE
    splits = {}
    for split in SPLITS:
        path = folder / f"transforms_{split}.json"
        if split == "val" and not path.exists():
            continue
        splits[split] = _load_split(path, downscale, bg)
    return object_scene(folder.name, "blender", splits, bg)


def object_scene(name: str, fmt: str, splits: dict, background) -> Scene:
    """A Scene with the NeRF-synthetic geometry: svox2's box (centre 0, radius 1.5) and near 2, far 6."""
    return Scene(name=name, format=fmt, splits=splits, background=background, center=BOX_CENTER,
                 radius=BOX_RADIUS, near=NEAR, far=FAR, ndc=False)


def _load_split(path: Path, downscale: int, background) -> Split:
    meta = read_json(path)
    angle = get_number(meta, "camera_angle_x", path, "the top level")
    if not 0 < angle < math.pi:
        raise SceneError(path, f"camera_angle_x must lie in (0, pi) radians, got {angle}")
    frames = get_frames(meta, path)
    paths = [resolve_image(path.parent, f["file_path"], path) for f in frames]
    names = [p.stem for p in paths]
    c2w = check_rigid(np.stack([frame_pose(f, i, path) for i, f in enumerate(frames)]), names, path)
    images, alpha, (h, w) = load_images(paths, downscale, background)
    focal = 0.5 * w / math.tan(0.5 * angle)
    cams = Cameras(c2w=c2w, fx=focal, fy=focal, cx=w / 2, cy=h / 2, width=w, height=h)
    return Split(images=images, cameras=cams.scaled(downscale), names=names, alpha=alpha)


def write_blender_scene(scene: Scene, folder) -> Path:
    """Write ``scene`` as a Blender folder: ``transforms_<split>.json`` and ``<split>/<name>.png`` (RGBA, 8 bit).

    Each split's cameras must be ideal centred pinholes sharing one square-pixel
    focal length, the only cameras the format can express. Where a split has
    alpha, the stored colour is un-composited from the scene background so that
    loading the folder composites it back; otherwise alpha is written as 1.
    Returns the folder.
    """
    folder = Path(folder)
    for split_name, split in scene.splits.items():
        cams = split.cameras
        angle = _camera_angle_x(cams, split_name)
        (folder / split_name).mkdir(parents=True, exist_ok=True)
        frames = []
        for i, name in enumerate(split.names):
            iio.imwrite(folder / split_name / f"{name}.png", _rgba8(split, i, scene.background))
            frames.append({"file_path": f"./{split_name}/{name}", "transform_matrix": cams.c2w[i].tolist()})
        meta = {"camera_angle_x": angle, "frames": frames}
        (folder / f"transforms_{split_name}.json").write_text(json.dumps(meta, indent=2))
    return folder


def _camera_angle_x(cams: Cameras, split_name: str) -> float:
    fx = cams.fx
    ideal = (
        cams.distortion is None
        and len(cams) > 0
        and bool(((fx - fx[0]).abs() <= 1e-4 * fx[0]).all())
        and bool(((cams.fy - fx).abs() <= 1e-4 * fx).all())
        and bool(((cams.cx - cams.width / 2).abs() <= 1e-3).all())
        and bool(((cams.cy - cams.height / 2).abs() <= 1e-3).all())
    )
    if not ideal:
        raise ValueError(
            f"split {split_name!r}: the Blender format needs undistorted, centred cameras with one focal length"
        )
    return 2.0 * math.atan(0.5 * cams.width / float(fx[0]))


def _rgba8(split: Split, i: int, background) -> np.ndarray:
    """Image ``i`` of ``split`` as straight (not premultiplied) RGBA uint8, (H, W, 4)."""
    rgb = split.images[i].numpy()
    if split.alpha is None:
        alpha = np.ones(rgb.shape[:2], dtype=np.float32)
    else:
        alpha = split.alpha[i].numpy()
        bg = np.asarray(background or WHITE, dtype=np.float32)
        a = alpha[..., None]
        rgb = np.where(a > 0, (rgb - bg * (1.0 - a)) / np.maximum(a, 1e-8), 0.0)
    rgba = np.concatenate([rgb, alpha[..., None]], axis=-1)
    return np.round(np.clip(rgba, 0.0, 1.0) * 255.0).astype(np.uint8)
