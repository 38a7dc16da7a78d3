"""svox2's checkpoint file (ckpt.npz) and the world scale between svox2's fits and plenox's."""

from pathlib import Path

import numpy as np

from plenox.errors import ExportError
from plenox.models.background import Background, reorient
from plenox.models.grid import SparseGrid


def scale_world(grid: SparseGrid, scale: float) -> SparseGrid:
    """The same field in a world scaled by ``scale`` (x' = scale * x).

    The box scales with the world; densities (the background's too: its samples' lengths
    scale with the box) divide by ``scale`` so that sigma * dt, and so every rendered image,
    is unchanged. scale 1 returns ``grid`` itself.
    """
    if scale == 1.0:
        return grid
    if not scale > 0:
        raise ExportError(f"scene scale must be positive, got {scale}")
    bg = grid.background
    if bg is not None:
        bg = Background(bg.links, bg.density.detach() / scale, bg.rgb.detach())
    return SparseGrid(grid.links, grid.density.detach() / scale, grid.sh.detach(), grid.center * scale,
                      grid.radius * scale, grid.basis_dim, bg)


def write_svox2(grid: SparseGrid, path: Path, scene_scale: float = 1.0) -> None:
    """Write svox2's ckpt.npz (float16 SH) in svox2's world: x_svox2 = scene_scale * x.

    svox2's opt.py fits Blender scenes with scene_scale 2/3 (camera positions times 2/3,
    box radius 1); pass that to load the file there. 1 keeps this project's world. A
    background model is written as svox2's background_links / background_data, resampled to
    svox2's map (poles on y rather than z; ``plenox.models.background.reorient``).
    """
    grid = scale_world(grid, scene_scale)
    if grid.background is not None:
        grid = SparseGrid(grid.links, grid.density.detach(), grid.sh.detach(), grid.center, grid.radius,
                          grid.basis_dim, reorient(grid.background, to_svox2=True))
    grid.save(path, sh_dtype=np.float16)


def read_svox2(path: Path, scene_scale: float = 1.0) -> SparseGrid:
    """Read an svox2 ckpt.npz whose world is ``scene_scale`` times this project's."""
    return scale_world(SparseGrid.load(path), 1.0 / scene_scale)
