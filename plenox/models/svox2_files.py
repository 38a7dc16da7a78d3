"""svox2's checkpoint file (ckpt.npz) and the world scale between svox2's fits and plenox's."""

from pathlib import Path

import numpy as np

from plenox.errors import ExportError
from plenox.models.grid import SparseGrid


def scale_world(grid: SparseGrid, scale: float) -> SparseGrid:
    """The same field in a world scaled by ``scale`` (x' = scale * x).

    The box scales with the world; densities divide by ``scale`` so that sigma * dt, and so
    every rendered image, is unchanged. scale 1 returns ``grid`` itself.
    """
    if scale == 1.0:
        return grid
    if not scale > 0:
        raise ExportError(f"scene scale must be positive, got {scale}")
    return SparseGrid(grid.links, grid.density.detach() / scale, grid.sh.detach(), grid.center * scale,
                      grid.radius * scale, grid.basis_dim)


def write_svox2(grid: SparseGrid, path: Path, scene_scale: float = 1.0) -> None:
    """Write svox2's ckpt.npz (float16 SH) in svox2's world: x_svox2 = scene_scale * x.

    svox2's opt.py fits Blender scenes with scene_scale 2/3 (camera positions times 2/3,
    box radius 1); pass that to load the file there. 1 keeps this project's world.
    """
    scale_world(grid, scene_scale).save(path, sh_dtype=np.float16)


def read_svox2(path: Path, scene_scale: float = 1.0) -> SparseGrid:
    """Read an svox2 ckpt.npz whose world is ``scene_scale`` times this project's."""
    return scale_world(SparseGrid.load(path), 1.0 / scene_scale)
