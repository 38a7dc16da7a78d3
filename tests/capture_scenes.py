"""Captures with known poses for the structure-from-motion tests: the built-in scene, textured,
seen from a ring of cameras, written as PNG photos or as a video."""

from __future__ import annotations

import math
from pathlib import Path

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
from scipy.ndimage import uniform_filter

from plenox.data.cameras import Cameras
from plenox.data.builtin import CAMERA_ANGLE_X, CAMERA_DISTANCE, render_builtin
from scenes import look_at

DETAIL = 0.8  # albedo noise contrast: without it SIFT matches too few of the repeating checkers


def ring_cameras(n: int, size: int) -> Cameras:
    """``n`` cameras in azimuth order round the built-in scene, alternately 30 and 45 degrees up,
    at its usual distance and field of view (a walk round an object)."""
    azimuth = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    elevation = np.radians(np.where(np.arange(n) % 2, 30.0, 45.0))
    positions = CAMERA_DISTANCE * np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], axis=1)
    focal = 0.5 * size / math.tan(0.5 * CAMERA_ANGLE_X)
    return Cameras(c2w=look_at(positions, (0.0, 0.0, 0.0)), fx=focal, fy=focal, cx=size / 2, cy=size / 2,
                   width=size, height=size)


def render_ring(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, size, size, 3) uint8, camera-to-world (n, 4, 4) float64) of the textured built-in scene."""
    cams = ring_cameras(n, size)
    images, _ = render_builtin(cams, detail=DETAIL)
    return np.round(images.numpy() * 255).astype(np.uint8), cams.c2w.double().numpy()


def write_photos(folder: Path, images: np.ndarray, stem: str = "view") -> list[str]:
    """Write images as ``<stem>_NN.png`` into ``folder``; returns the file names in order."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{stem}_{i:02d}.png" for i in range(len(images))]
    for name, img in zip(names, images):
        iio.imwrite(folder / name, img)
    return names


def blur(image: np.ndarray, width: int = 5) -> np.ndarray:
    """A box-blurred copy of an (H, W, 3) uint8 image (a shaky frame)."""
    return np.round(uniform_filter(image.astype(np.float32), size=(width, width, 1))).astype(np.uint8)


def write_shaky_video(path: Path, images: np.ndarray, fps: float) -> None:
    """An H.264 video showing each image for three frames: blurred, sharp, blurred.

    Frame 3 k + 1 is the only sharp view of image k, so a sharpest-frame picker with one
    window per image must keep exactly the frames 1, 4, 7, ...
    """
    frames = [f for img in images for f in (blur(img), img, blur(img))]
    iio2.mimwrite(path, frames, fps=fps, quality=9, macro_block_size=16)
