"""One viewer frame: a model rendered from a camera, shown as rgb, depth or opacity.

Rays go through the model in chunks; between chunks the caller may interrupt (the camera moved),
so a large still frame never holds up the next small moving one.

The clip box (grids only) renders a pruned copy of the grid holding only the voxels whose centres
lie inside the box (``SparseGrid.prune``); the kernels are untouched. Samples within one voxel of
the box's faces blend towards the removed neighbours, which read as empty.
"""

from dataclasses import dataclass, replace

import matplotlib
import numpy as np
import torch

from plenox.data.scene import Scene
from plenox.models.renderer import GridRenderer, Renderer
from plenox.viewer.cameras import ViewCamera

MODES = ("rgb", "depth", "opacity")
CHUNK = 16384   # most rays per chunk: about 20 ms of a lego grid on 2 cores
# Moving frames of a grid march at PREVIEW_STEP times the step and stop at transmittance
# PREVIEW_STOP: on lego_200 (benchmarks/viewer.py) 1.25x the speed for 0.5 dB less, which a
# moving picture does not show; the still frame that follows uses the model's own options.
PREVIEW_STEP = 2.0
PREVIEW_STOP = 1e-2


@dataclass(frozen=True)
class Look:
    """How frames are shown: mode (one of MODES), background RGB in [0, 1] (replacing the model's
    where it is not opaque), clip ((x0, y0, z0), (x1, y1, z1)) box in the grid's space, or None."""

    mode: str = "rgb"
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    clip: tuple | None = None


def grid_box(renderer: Renderer) -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high) corners (3,) of a grid renderer's box in its space; None for other models."""
    if not isinstance(renderer, GridRenderer):
        return None
    center, radius = renderer.grid.center.cpu().double().numpy(), renderer.grid.radius.cpu().double().numpy()
    return center - radius, center + radius


def clip_grid(renderer: GridRenderer, clip) -> GridRenderer:
    """A renderer of a copy of the grid keeping only the voxels whose centres lie in ``clip``."""
    grid = renderer.grid
    lo, hi = (grid.world_to_grid(torch.tensor(c, dtype=torch.float64)).numpy() for c in clip)
    res = np.array(grid.resolution)
    start = np.clip(np.ceil(lo), 0, res).astype(int)
    stop = np.clip(np.floor(hi) + 1, 0, res).astype(int)
    keep = np.zeros(grid.resolution, dtype=bool)
    keep[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]] = True
    return GridRenderer(grid.prune(keep), renderer.options)


def preview(renderer: Renderer) -> Renderer:
    """The faster, coarser renderer of moving frames: a grid's with PREVIEW_STEP and
    PREVIEW_STOP; other models (a NeRF) as they are."""
    if not isinstance(renderer, GridRenderer):
        return renderer
    options = renderer.options
    return GridRenderer(renderer.grid, replace(options, step=options.step * PREVIEW_STEP,
                                               stop_thresh=max(options.stop_thresh, PREVIEW_STOP)))


def compose(rgb: torch.Tensor, depth: torch.Tensor, acc: torch.Tensor, look: Look, model_background) -> np.ndarray:
    """(H, W, 3) uint8 picture of a render (rgb (H, W, 3), depth and acc (H, W)) as ``look`` asks.

    rgb: the model's colour with its own background swapped for look.background by the
    transparency (1 - acc); depth: expected depth (depth / acc) through the turbo colour map over
    the frame's 1st-99th percentile, where acc > 0.5; opacity: acc in grey.
    """
    bg = torch.tensor(look.background, dtype=rgb.dtype)
    if look.mode == "opacity":
        out = acc[..., None].expand(*acc.shape, 3)
    elif look.mode == "depth":
        d = depth / acc.clamp(min=1e-6)
        valid = acc > 0.5
        out = bg.expand(*acc.shape, 3).clone()
        if valid.any():
            lo, hi = torch.quantile(d[valid].float(), torch.tensor([0.01, 0.99])).tolist()
            v = ((d - lo) / max(hi - lo, 1e-6)).clamp(0, 1).numpy()
            colours = torch.from_numpy(matplotlib.colormaps["turbo"](v)[..., :3]).to(rgb.dtype)
            out[valid] = colours[valid]
    else:
        out = rgb + (1 - acc)[..., None] * (bg - torch.tensor(model_background, dtype=rgb.dtype))
    return (out.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


class FrameRenderer:
    """Renders viewer frames of one scene's models; keeps the last clipped grid copy."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self._clipped = (None, None)   # (key, clipped renderer)

    def model(self, renderer: Renderer, clip, version: int) -> Renderer:
        """``renderer``, or its clipped copy for ``clip`` (reused while the grid object, its
        ``version`` and the box stay the same)."""
        if clip is None or not isinstance(renderer, GridRenderer):
            return renderer
        key = (id(renderer.grid), version, clip)
        if self._clipped[0] != key:
            self._clipped = (key, clip_grid(renderer, clip))
        return self._clipped[1]

    @torch.no_grad()
    def render(self, renderer: Renderer, camera: ViewCamera, width: int, height: int, look: Look,
               version: int = 0, interrupted=None, chunk: int = CHUNK, moving: bool = False) -> np.ndarray | None:
        """(height, width, 3) uint8 frame of ``renderer`` from ``camera``; None when
        ``interrupted()`` turned true between two chunks of ``chunk`` rays. ``version`` identifies
        the model's state (a training step) for the clip-box cache; ``moving``: render the
        ``preview`` (a frame while the camera moves)."""
        origins, dirs = self.scene.camera_rays(camera.cameras(width, height), 0)
        origins, dirs = origins.reshape(-1, 3), dirs.reshape(-1, 3)
        model = self.model(renderer, look.clip, version)
        if moving:
            model = preview(model)
        parts = []
        for i in range(0, origins.shape[0], chunk):
            if interrupted is not None and interrupted():
                return None
            out = model.render_rays(origins[i:i + chunk].contiguous(), dirs[i:i + chunk].contiguous())
            parts.append({k: v.detach().float().cpu() for k, v in out.items()})
        rgb, depth, acc = (torch.cat([p[k] for p in parts]) for k in ("rgb", "depth", "acc"))
        background = renderer.protocol()["background"]
        return compose(rgb.reshape(height, width, 3), depth.reshape(height, width), acc.reshape(height, width),
                       look, background)
