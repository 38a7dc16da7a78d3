"""The rendering side of the model interface: what eval, render, the held-out log and compare call.

A fitted model of any kind is wrapped as a :class:`Renderer`: ``render_rays`` for a batch of
rays, ``render_image`` for a view's (H, W, 3) rays, ``protocol`` for the model's entries in
a metrics file. :class:`GridRenderer` is the Plenoxels one; the NeRF one is
``plenox.training.nerf_trainer.NerfRenderer``.
"""

import torch

from plenox.models.grid import SparseGrid
from plenox.models.grid_autograd import RenderOptions, render_chunked


class Renderer:
    """A fitted model that renders rays (no gradients)."""

    def render_rays(self, origins: torch.Tensor, dirs: torch.Tensor) -> dict:
        """origins, dirs: (R, 3) rays as the scene gives them (NDC for forward-facing scenes).
        Returns dict(rgb (R, 3) in [0, 1], depth (R,) along the ray, acc (R,) opacity)."""
        raise NotImplementedError

    def protocol(self) -> dict:
        """What a metrics file's protocol records about the model (at least model and background)."""
        raise NotImplementedError

    def render_image(self, origins: torch.Tensor, dirs: torch.Tensor) -> dict:
        """origins, dirs: (H, W, 3). Returns rgb (H, W, 3), depth and acc (H, W)."""
        shape = origins.shape[:-1]
        out = self.render_rays(origins.reshape(-1, 3), dirs.reshape(-1, 3))
        return {key: value.reshape(*shape, *value.shape[1:]) for key, value in out.items()}


class GridRenderer(Renderer):
    """A SparseGrid and its ray-marching options."""

    def __init__(self, grid: SparseGrid, options: RenderOptions):
        self.grid, self.options = grid, options

    def render_rays(self, origins, dirs) -> dict:
        return render_chunked(self.grid, origins, dirs, self.options)

    def protocol(self) -> dict:
        bg = self.grid.background
        return {"model": "plenoxels", **self.options.protocol(),
                "grid_resolution": list(self.grid.resolution), "voxels": self.grid.n_voxels,
                "box_center": self.grid.center.tolist(), "box_radius": self.grid.radius.tolist(),
                "background_model": None if bg is None else {"layers": bg.layers, "map": [2 * bg.reso, bg.reso]},
                "device": str(self.grid.density.device)}
