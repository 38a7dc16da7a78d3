"""Format detection and the one entry point, :func:`load_scene`."""

from __future__ import annotations

from pathlib import Path

from plenox.data.blender import load_blender
from plenox.data.checks import require_dir
from plenox.data.images import parse_background
from plenox.data.llff import load_llff
from plenox.data.nerfstudio import load_nerfstudio
from plenox.data.scene import Scene
from plenox.errors import SceneError

BLENDER_FILES = ("transforms_train.json", "transforms_val.json", "transforms_test.json")


def detect_format(path) -> str:
    """"blender", "llff" or "nerfstudio" for a scene folder (or a file inside one: a transforms json, poses_bounds.npy).

    A folder is Blender if it holds ``transforms_train.json``, LLFF if it holds
    ``poses_bounds.npy`` and nerfstudio if it holds ``transforms.json``, tried in that order.
    """
    p = Path(path)
    if p.is_file():
        if p.name == "poses_bounds.npy":
            return "llff"
        if p.name in BLENDER_FILES:
            return "blender"
        if p.suffix == ".json":
            return "nerfstudio"
        raise SceneError(p, "unknown scene format: expected a transforms json or poses_bounds.npy")
    require_dir(p)
    for marker, fmt in (("transforms_train.json", "blender"), ("poses_bounds.npy", "llff"), ("transforms.json", "nerfstudio")):
        if (p / marker).is_file():
            return fmt
    raise SceneError(
        p,
        "unknown scene format: found no transforms_train.json (Blender), poses_bounds.npy (LLFF) "
        "or transforms.json (nerfstudio/instant-ngp)",
    )


def load_scene(path, downscale: int = 1, background: str | None = None, holdout_every: int = 8) -> Scene:
    """Load the scene at ``path`` (a folder, or a transforms json / poses_bounds.npy inside one).

    downscale: integer factor; images are area-averaged and intrinsics scaled
        (LLFF reads the images_N folder that gets there, see docs/data-formats.md).
    background: "white", "black" or "gray" to composite alpha on (and render
        with); None takes the format's default (white for Blender and for
        images with alpha, none otherwise).
    holdout_every: formats without explicit splits (LLFF, nerfstudio) hold out
        views 0, k, 2k, ... as the test split.
    Raises SceneError (a ValueError) naming the offending file for bad data,
    ValueError for bad arguments.
    """
    if isinstance(downscale, bool) or not isinstance(downscale, int) or downscale < 1:
        raise ValueError(f"downscale must be a positive integer, got {downscale!r}")
    if isinstance(holdout_every, bool) or not isinstance(holdout_every, int) or holdout_every < 2:
        raise ValueError(f"holdout_every must be an integer >= 2, got {holdout_every!r}")
    bg = parse_background(background)
    p = Path(path)
    fmt = detect_format(p)
    folder = p.parent if p.is_file() else p
    if fmt == "blender":
        return load_blender(folder, downscale, bg)
    if fmt == "llff":
        return load_llff(folder, downscale, bg, holdout_every)
    return load_nerfstudio(p if p.is_file() else folder / "transforms.json", downscale, bg, holdout_every)
