"""Small random grids and rays for kernel tests."""

import numpy as np
import torch

from plenox.models.grid import SparseGrid


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


def rays_missing_box(dtype=torch.float64):
    """2 rays that point away from a box of radius ~1 around the origin."""
    origins = torch.tensor([[5.0, 5.0, 5.0], [0.0, 3.0, 0.0]], dtype=dtype)
    dirs = torch.tensor([[1.0, 0.2, 0.1], [0.0, 1.0, 0.0]], dtype=dtype)
    return origins, dirs


def rays_inside_box(grid, n, seed):
    """n rays starting near the box centre in random directions."""
    gen = torch.Generator().manual_seed(seed)
    dtype = grid.density.dtype
    origins = (grid.center.to(dtype) + 0.3 * torch.randn(n, 3, generator=gen, dtype=dtype)).contiguous()
    return origins, torch.randn(n, 3, generator=gen, dtype=dtype)


def rays_grazing_unit_box(dtype=torch.float64):
    """6 rays of the box [-1, 1]^3 along faces, edges and axes: zero direction components and
    origins on the boundary planes."""
    origins = torch.tensor([[-3.0, 1.0, 0.0], [-3.0, -1.0, 1.0], [0.3, -3.0, 0.999], [1.0, 1.0, -3.0],
                            [-3.0, 0.2, 0.4], [0.5, 0.5, 3.0]], dtype=dtype)
    dirs = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0],
                         [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]], dtype=dtype)
    return origins, dirs


def two_cluster_scene(n_rays, dtype=torch.float64, seed=5):
    """Two dense clusters far apart in a 40^3 grid and n rays through both: the rays cross
    long empty stretches (whole empty blocks are skipped) and cells with pruned corners."""
    res = (40, 40, 40)
    mask = np.zeros(res, dtype=bool)
    mask[2:9, 3:12, 5:14] = True
    mask[28:37, 25:34, 20:30] = True
    mask[30:33, 27:30, 24:27] = False
    grid = SparseGrid.create(res, radius=1.0, basis_dim=4, mask=mask, dtype=dtype)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        grid.density.copy_(torch.rand(grid.n_voxels, generator=gen, dtype=dtype) * 3)
        grid.sh.copy_(torch.randn(grid.sh.shape, generator=gen, dtype=dtype) * 0.3)
    a = grid.grid_to_world(torch.tensor([[5.0, 7.0, 9.0]], dtype=torch.float64)).to(dtype)
    b = grid.grid_to_world(torch.tensor([[32.0, 29.0, 25.0]], dtype=torch.float64)).to(dtype)
    jitter = 0.05 * torch.randn(n_rays, 3, generator=gen, dtype=dtype)
    origins = (a - 0.5 * (b - a) + jitter).contiguous()
    return grid, origins, (b - a).expand(n_rays, 3).contiguous()


def corner_density_grid(dtype=torch.float64):
    """A 33x30x35 grid with positive density only in one corner region: most blocks hold no
    sample above the sigma gate, so density-aware skipping leaves them out."""
    grid = random_grid(resolution=(33, 30, 35), seed=10, density_range=(-8.0, 4.0), fill=0.9, dtype=dtype)
    corner = torch.zeros(grid.resolution, dtype=torch.bool)
    corner[:14, :12, :15] = True
    with torch.no_grad():
        outside = grid.links[~corner & (grid.links >= 0)].long()
        grid.density[outside] = -grid.density[outside].abs()
    return grid


def with_background(grid, reso=6, layers=5, seed=0, fill=0.8, density_range=(-5.0, 60.0)):
    """``grid`` with a random background model of a 2R x R map (``fill`` of its pixels
    allocated) and ``layers`` layers; densities span ``density_range`` so the gate cuts some."""
    from plenox.models.background import Background

    rng = np.random.default_rng(seed)
    mask = rng.random((2 * reso, reso)) < fill
    links = np.full(mask.shape, -1, dtype=np.int32)
    links[mask] = np.arange(int(mask.sum()), dtype=np.int32)
    gen = torch.Generator().manual_seed(seed)
    dtype = grid.density.dtype
    lo, hi = density_range
    density = torch.rand(int(mask.sum()), layers, generator=gen, dtype=dtype) * (hi - lo) + lo
    rgb = torch.randn(int(mask.sum()), layers, 3, generator=gen, dtype=dtype) * 1.5
    return SparseGrid(grid.links, grid.density.detach(), grid.sh.detach(), grid.center, grid.radius, grid.basis_dim,
                      Background(torch.from_numpy(links), density, rgb))


def rays_pole_and_seam(grid):
    """4 rays from the box centre: within a degree of the background's poles (z; exactly on a
    pole the longitude, and so the pixel, would hang on rounding), and along -x just either
    side of where the map's longitude wraps."""
    dtype = grid.density.dtype
    origins = grid.center.to(dtype).expand(4, 3).contiguous()
    dirs = torch.tensor([[0.01, 0.02, 1.0], [-0.02, 0.01, -1.0], [-1.0, 1e-3, 0.2], [-1.0, -1e-3, -0.1]], dtype=dtype)
    return origins, dirs
