"""Small on-disk scenes for tests, generated from the built-in renderer.

``write_blender_scene`` lives in the library (plenox.data); the LLFF and
nerfstudio writers here only need to be good enough to exercise the loaders.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from plenox.data.cameras import Cameras
from plenox.data import Split, builtin_scene, load_scene
from plenox.data.builtin import render_builtin
from plenox.errors import SceneError


def tiny_scene(size: int = 16, n_train: int = 3, n_test: int = 2, seed: int = 0):
    """A built-in scene small enough to write and load in milliseconds."""
    return builtin_scene(size=size, n_train=n_train, n_test=n_test, seed=seed)


def look_at(positions: np.ndarray, target) -> np.ndarray:
    """OpenGL camera-to-world matrices (N, 4, 4) at ``positions`` (N, 3) looking at ``target``, world z up."""
    back = positions - np.asarray(target, dtype=np.float64)
    back /= np.linalg.norm(back, axis=1, keepdims=True)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    up = np.cross(back, right)
    c2w = np.tile(np.eye(4), (len(positions), 1, 1))
    c2w[:, :3, :4] = np.stack([right, up, back, positions], axis=2)
    return c2w


def forward_facing_cameras(n: int, width: int, height: int) -> Cameras:
    """``n`` cameras on a small patch in front of the built-in scene, all looking at it (an LLFF-like capture)."""
    grid = np.stack(np.meshgrid(np.linspace(-0.4, 0.4, 4), np.linspace(-0.3, 0.3, 4)), axis=-1).reshape(-1, 2)[:n]
    positions = np.stack([grid[:, 0], np.full(len(grid), -3.5), 1.2 + grid[:, 1]], axis=1)
    focal = 0.5 * width / math.tan(0.5 * 0.9)
    return Cameras(c2w=look_at(positions, (0.0, 0.0, 0.3)), fx=focal, fy=focal,
                   cx=width / 2, cy=height / 2, width=width, height=height)


def write_png(path: Path, image: torch.Tensor) -> None:
    """Write an (H, W, C) float image in [0, 1] as an 8-bit PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.round(image.clamp(0, 1).numpy() * 255).astype(np.uint8))


def write_llff_scene(folder: Path, n: int = 10, width: int = 24, height: int = 18, factor: int = 4,
                     bounds=(2.0, 6.0), cams: Cameras | None = None) -> Cameras:
    """An LLFF folder: ``poses_bounds.npy`` at factor x the resolution of ``images_<factor>/``.

    cams: the cameras to write (default: ``n`` forward-facing ones of ``width`` x ``height``).
    Returns the cameras as written (OpenGL c2w, at the image resolution).
    """
    cams = forward_facing_cameras(n, width, height) if cams is None else cams
    n, width, height = len(cams), cams.width, cams.height
    images, _ = render_builtin(cams)
    for i in range(n):
        write_png(folder / f"images_{factor}" / f"image{i:03d}.png", images[i])
    c2w = cams.c2w.double().numpy()
    # [right, up, back] -> LLFF's [down, right, back]
    llff = np.stack([-c2w[:, :3, 1], c2w[:, :3, 0], c2w[:, :3, 2], c2w[:, :3, 3]], axis=2)
    hwf = np.tile([[height * factor], [width * factor], [float(cams.fx[0]) * factor]], (n, 1, 1))
    rows = np.concatenate([llff, hwf], axis=2).reshape(n, 15)
    np.save(folder / "poses_bounds.npy", np.concatenate([rows, np.tile(bounds, (n, 1))], axis=1))
    return cams


def write_nerfstudio_scene(folder: Path, split: Split, distortion=None, per_frame: bool = False,
                           extra: dict | None = None) -> Path:
    """A ``transforms.json`` + ``images/`` folder for ``split``'s images and cameras.

    distortion: (k1, k2, p1, p2) written for every frame; per_frame puts the
    intrinsics in each frame instead of the top level; ``extra`` is merged into
    the top level. Returns the json path.
    """
    cams = split.cameras
    frames = []
    for i, name in enumerate(split.names):
        write_png(folder / "images" / f"{name}.png", split.images[i])
        frames.append({"file_path": f"images/{name}.png", "transform_matrix": cams.c2w[i].tolist()})
    intrinsics = [
        {"fl_x": float(cams.fx[i]), "fl_y": float(cams.fy[i]), "cx": float(cams.cx[i]), "cy": float(cams.cy[i]),
         "w": cams.width, "h": cams.height}
        for i in range(len(cams))
    ]
    if distortion is not None:
        for d in intrinsics:
            d.update(zip(("k1", "k2", "p1", "p2"), map(float, distortion)))
    meta = {"camera_model": "OPENCV", "frames": frames}
    if per_frame:
        for frame, d in zip(frames, intrinsics):
            frame.update(d)
    else:
        meta.update(intrinsics[0])
    meta.update(extra or {})
    path = folder / "transforms.json"
    path.write_text(json.dumps(meta, indent=1))
    return path


def scene_dir(data_root: Path, name: str) -> Path:
    """The real scene ``name`` under ``data_root``; skips the test, saying where it looked, when absent."""
    path = data_root / name
    if not path.is_dir():
        pytest.skip(f"real scene {name!r} not found at {path} (set PLENOX_DATA to the folder holding it)")
    return path


def expect_error(path, *fragments, **kwargs) -> str:
    """The one-line SceneError ``load_scene(path, **kwargs)`` raises; it must hold every fragment."""
    with pytest.raises(SceneError) as info:
        load_scene(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message
