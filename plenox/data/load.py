"""Format detection, the capture kind, and the one entry point, :func:`load_scene`."""

from __future__ import annotations

from pathlib import Path

from plenox.data.blender import load_blender
from plenox.data.checks import require_dir
from plenox.data.colmap import MODEL_FILES, colmap_capture, load_colmap, model_dir
from plenox.data.images import parse_background
from plenox.data.llff import llff_capture, load_llff
from plenox.data.nerfstudio import load_nerfstudio, nerfstudio_capture
from plenox.data.normalize import Capture
from plenox.data.scene import Scene
from plenox.errors import SceneError

BLENDER_FILES = ("transforms_train.json", "transforms_val.json", "transforms_test.json")


def detect_format(path) -> str:
    """"blender", "llff", "nerfstudio" or "colmap" for a scene folder (or a file inside one: a transforms
    json, poses_bounds.npy, a COLMAP model file).

    A COLMAP model folder (holding ``cameras.bin`` or ``.txt``) is "colmap". Any other folder is
    Blender if it holds ``transforms_train.json``, LLFF if it holds ``poses_bounds.npy``,
    nerfstudio if it holds ``transforms.json`` and COLMAP if it holds ``sparse/0`` (or
    ``sparse``) with a model, tried in that order: a capture folder with both ``poses_bounds.npy``
    and ``sparse/0`` (beer_360) loads as LLFF; pass its ``sparse/0`` to load the COLMAP model.
    """
    p = Path(path)
    if p.is_file():
        if p.name == "poses_bounds.npy":
            return "llff"
        if p.name in BLENDER_FILES:
            return "blender"
        if p.suffix == ".json":
            return "nerfstudio"
        if p.stem in MODEL_FILES and p.suffix in (".bin", ".txt"):
            return "colmap"
        raise SceneError(p, "unknown scene format: expected a transforms json, poses_bounds.npy or a COLMAP model file")
    require_dir(p)
    if model_dir(p) == p:
        return "colmap"
    for marker, fmt in (("transforms_train.json", "blender"), ("poses_bounds.npy", "llff"), ("transforms.json", "nerfstudio")):
        if (p / marker).is_file():
            return fmt
    if model_dir(p) is not None:
        return "colmap"
    raise SceneError(
        p,
        "unknown scene format: found no transforms_train.json (Blender), poses_bounds.npy (LLFF), "
        "transforms.json (nerfstudio/instant-ngp) or sparse/0 (COLMAP)",
    )


def capture_kind(path) -> Capture | None:
    """How the scene at ``path`` is framed, from its poses alone (no images read): a Capture whose
    kind is "object" (a box) or "forward" (NDC), or None where the format fixes the box
    (Blender, a transforms.json with ``aabb`` or ``aabb_scale``)."""
    p = Path(path)
    fmt = detect_format(p)
    folder = p.parent if p.is_file() else p
    if fmt == "llff":
        return llff_capture(folder)
    if fmt == "colmap":
        return colmap_capture(p)
    if fmt == "nerfstudio":
        return nerfstudio_capture(p if p.is_file() else folder / "transforms.json")
    return None


def load_scene(path, downscale: int | None = None, background: str | None = None, holdout_every: int = 8) -> Scene:
    """Load the scene at ``path`` (a folder, or a transforms json / poses_bounds.npy / COLMAP model file inside one).

    downscale: integer factor; images are area-averaged and intrinsics scaled
        (LLFF reads the images_N folder that gets there, see docs/data-formats.md).
        None: captures (COLMAP, LLFF, a transforms.json without a box) take the
        pixel budget's factor (plenox.data.normalize.PIXEL_BUDGET), other formats 1.
        The factor used is ``Scene.downscale``.
    background: "white", "black" or "gray" to composite alpha on (and render
        with); None takes the format's default (white for Blender and for
        images with alpha, none otherwise).
    holdout_every: formats without explicit splits (LLFF, nerfstudio, COLMAP) hold out
        views 0, k, 2k, ... as the test split.
    Raises SceneError (a ValueError) naming the offending file for bad data,
    ValueError for bad arguments.
    """
    if downscale is not None and (isinstance(downscale, bool) or not isinstance(downscale, int) or downscale < 1):
        raise ValueError(f"downscale must be a positive integer or None, got {downscale!r}")
    if isinstance(holdout_every, bool) or not isinstance(holdout_every, int) or holdout_every < 2:
        raise ValueError(f"holdout_every must be an integer >= 2, got {holdout_every!r}")
    bg = parse_background(background)
    p = Path(path)
    fmt = detect_format(p)
    folder = p.parent if p.is_file() else p
    if fmt == "blender":
        scene = load_blender(folder, downscale or 1, bg)
        scene.downscale = downscale or 1
        return scene
    if fmt == "llff":
        return load_llff(folder, downscale, bg, holdout_every)
    if fmt == "colmap":
        return load_colmap(p, downscale, bg, holdout_every)
    return load_nerfstudio(p if p.is_file() else folder / "transforms.json", downscale, bg, holdout_every)
