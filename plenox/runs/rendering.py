"""Rendering a model's views to image files, depth maps and videos."""

import time
from pathlib import Path

import imageio.v2 as iio2
import numpy as np
import torch

from plenox.data import Scene
from plenox.data.orbit import orbit_split
from plenox.errors import RunError
from plenox.io.atomic import atomic_write, atomic_write_image
from plenox.models.renderer import Renderer
from plenox.runs.evaluation import to_uint8

VIDEO_FPS = 30


def orbit_scene(scene: Scene, frames: int, where) -> Scene:
    """``scene`` with an "orbit" split of ``frames`` views added; RunError (naming ``where``) for
    forward-facing NDC scenes, which an orbit would leave."""
    if scene.ndc:
        raise RunError(f"{where}: orbit paths are for object scenes, not forward-facing NDC scenes")
    return Scene(scene.name, scene.format, {**scene.splits, "orbit": orbit_split(scene, frames)},
                 scene.background, scene.center, scene.radius, scene.near, scene.far, scene.ndc, scene.ndc_focal)


def render_views(renderer: Renderer, scene: Scene, split: str, out_dir: Path, views: int = 0, depth: bool = False,
                 video: Path | None = None) -> dict:
    """Render the first ``views`` (0: all) views of ``split`` to ``out_dir``/<name>.png (and
    depth maps), optionally an mp4 of them. Returns frames, folder, video, seconds per frame, fps."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    count = len(scene.splits[split]) if views <= 0 else min(views, len(scene.splits[split]))
    frames, seconds = [], []
    for i in range(count):
        origins, dirs = scene.view_rays(split, i)
        start = time.perf_counter()
        out = renderer.render_image(origins, dirs)
        seconds.append(time.perf_counter() - start)
        name = scene.splits[split].names[i]
        frames.append(to_uint8(out["rgb"]))
        atomic_write_image(out_dir / f"{name}.png", frames[-1])
        if depth:
            write_depth(out_dir / f"{name}_depth.png", out["depth"], out["acc"])
    if video:
        atomic_write(video, lambda tmp: iio2.mimwrite(tmp, frames, fps=VIDEO_FPS, macro_block_size=1))
    total = float(np.sum(seconds))
    return {"frames": count, "folder": str(out_dir), "video": str(video) if video else None,
            "seconds_per_frame": total / max(count, 1), "fps": count / total if total else float("inf")}


def write_depth(path: Path, depth: torch.Tensor, acc: torch.Tensor) -> None:
    """16-bit PNG of expected depth (world units scaled to the frame's max) and a colourised preview."""
    import matplotlib

    d = (depth / acc.clamp(min=1e-6)).where(acc > 0.5, torch.zeros_like(depth)).cpu().numpy()
    top = float(d.max()) or 1.0
    atomic_write_image(path, (d / top * 65535).astype(np.uint16))
    preview = matplotlib.colormaps["turbo"](d / top)[..., :3]
    atomic_write_image(path.with_name(path.stem + "_preview.png"), (preview * 255).astype(np.uint8))
