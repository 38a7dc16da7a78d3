"""Reading, compositing and area-downscaling the images of a scene."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from plenox.errors import SceneError


BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "gray": (0.5, 0.5, 0.5), "grey": (0.5, 0.5, 0.5)}
WHITE = BACKGROUNDS["white"]

# Suffixes tried, in order, for frames whose file_path has none (Blender and instant-ngp write "./train/r_0").
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


def parse_background(name: str | None) -> tuple[float, float, float] | None:
    """The RGB colour called ``name`` ("white", "black", "gray"), or None for the format's default."""
    if name is None:
        return None
    try:
        return BACKGROUNDS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown background {name!r}: expected one of {sorted(BACKGROUNDS)}") from None


def scene_background(requested, has_alpha: bool) -> tuple[float, float, float] | None:
    """A scene's background: the colour asked for, else white where images have alpha, else None."""
    if requested is not None:
        return requested
    return WHITE if has_alpha else None


def resolve_image(base: Path, file_path: str, source: Path) -> Path:
    """The image file a frame's ``file_path`` (relative to ``base``, suffix optional) names.

    Raises SceneError naming ``source`` (the file that lists the frame) when nothing matches.
    """
    path = base / file_path
    if path.is_file():
        return path
    for suffix in IMAGE_SUFFIXES:
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return candidate
    raise SceneError(source, f"image {file_path!r} not found (looked for {path})")


def read_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """One image as float32 RGB (H, W, 3) in [0, 1], plus its alpha (H, W) or None.

    Accepts 8- and 16-bit grey, grey+alpha, RGB and RGBA files.
    """
    try:
        raw = iio.imread(path)
    except FileNotFoundError:
        raise SceneError(path, "image file not found") from None
    except Exception as exc:  # imageio raises many types for corrupt files; all mean "unreadable"
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # imageio's "no backend" message repeats the path; the file is already named.
        reason = "not a format imageio can decode" if str(path) in detail else detail
        raise SceneError(path, f"unreadable or corrupt image ({reason})") from None
    if raw.dtype == np.uint8:
        img = raw.astype(np.float32) / 255.0
    elif raw.dtype == np.uint16:
        img = raw.astype(np.float32) / 65535.0
    elif raw.dtype.kind == "f":
        img = np.clip(raw.astype(np.float32), 0.0, 1.0)
    else:
        raise SceneError(path, f"unsupported pixel type {raw.dtype}")
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise SceneError(path, f"unsupported image layout {raw.shape} (expected grey, RGB or RGBA)")
    alpha = img[..., -1] if img.shape[2] in (2, 4) else None
    rgb = img[..., :3] if img.shape[2] >= 3 else np.repeat(img[..., :1], 3, axis=2)
    return rgb, alpha


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, from its header where the format allows."""
    try:
        shape = iio.improps(path).shape
    except FileNotFoundError:
        raise SceneError(path, "image file not found") from None
    except Exception as exc:  # as in read_image: any decoder error means "unreadable"
        raise SceneError(path, f"unreadable or corrupt image ({type(exc).__name__})") from None
    return int(shape[1]), int(shape[0])


def composite(rgb: np.ndarray, alpha: np.ndarray, background) -> np.ndarray:
    """rgb * a + background * (1 - a); rgb (H, W, 3), alpha (H, W), background an RGB triple."""
    a = alpha[..., None]
    return rgb * a + np.asarray(background, dtype=np.float32) * (1.0 - a)


def area_downscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter ``img`` (H, W, ...) by an integer ``factor``: each output pixel averages a factor x factor block.

    The ragged right and bottom edges (H or W not a multiple of factor) are cropped.
    """
    if factor == 1:
        return img
    h, w = img.shape[0] // factor, img.shape[1] // factor
    blocks = img[: h * factor, : w * factor].reshape(h, factor, w, factor, *img.shape[2:])
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def load_images(paths: list[Path], downscale: int, background) -> tuple[torch.Tensor, torch.Tensor | None, tuple[int, int]]:
    """Read, composite and downscale a list of same-sized images.

    background: RGB used to composite images that have alpha.
    Returns images (N, h, w, 3) float32, alpha (N, h, w) float32 or None when
    no image had alpha (images without alpha count as opaque), and the native
    (H, W) before downscaling. Raises SceneError on a missing, unreadable or
    differently sized image.
    """
    if not paths:
        raise ValueError("load_images needs at least one path")
    images = alpha = native = None
    for i, path in enumerate(paths):
        rgb, a = read_image(path)
        if native is None:
            native = rgb.shape[:2]
        elif rgb.shape[:2] != native:
            raise SceneError(
                path, f"image is {rgb.shape[1]}x{rgb.shape[0]} but {paths[0].name} is {native[1]}x{native[0]}"
            )
        if a is not None:
            rgb = composite(rgb, a, background)
        small = area_downscale(rgb, downscale)
        if images is None:
            # Filled in place: stacking a list would double the peak memory of large scenes.
            images = np.empty((len(paths), *small.shape), dtype=np.float32)
        images[i] = small
        if a is not None and alpha is None:
            alpha = np.ones(images.shape[:3], dtype=np.float32)  # images read so far were opaque
        if a is not None:
            alpha[i] = area_downscale(a, downscale)
    return torch.from_numpy(images), None if alpha is None else torch.from_numpy(alpha), native
