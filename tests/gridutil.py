"""Small random grids and rays for kernel tests."""

import numpy as np
import torch

from plenox.grid import SparseGrid


def random_grid(resolution=(12, 10, 14), basis_dim=9, fill=0.6, dtype=torch.float64, seed=0,
                center=(0.1, -0.2, 0.05), radius=(1.0, 0.8, 1.2), density_range=(-2.0, 6.0)):
    """A grid with a random subset of voxels allocated (``fill`` of them) and random values.

    Densities span ``density_range`` so that the sigma gate cuts some samples."""
    rng = np.random.default_rng(seed)
    mask = rng.random(resolution) < fill
    grid = SparseGrid.create(resolution, center=center, radius=radius, basis_dim=basis_dim,
                             mask=mask, dtype=dtype)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        lo, hi = density_range
        grid.density.copy_(torch.rand(grid.n_voxels, generator=gen, dtype=dtype) * (hi - lo) + lo)
        grid.sh.copy_(torch.randn(grid.sh.shape, generator=gen, dtype=dtype) * 0.4)
    return grid


def rays_at_box(grid, n, seed=0, distance=3.0, spread=0.5):
    """n rays from points around the box aimed near its centre (most of them hit)."""
    gen = torch.Generator().manual_seed(seed)
    dtype = grid.density.dtype
    center = grid.center.to(dtype)
    dirs_out = torch.randn(n, 3, generator=gen, dtype=dtype)
    dirs_out = dirs_out / dirs_out.norm(dim=1, keepdim=True)
    origins = center + distance * dirs_out
    targets = center + spread * torch.randn(n, 3, generator=gen, dtype=dtype)
    return origins.contiguous(), (targets - origins).contiguous()
