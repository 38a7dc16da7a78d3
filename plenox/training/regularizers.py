"""Regularisers of the grid: total variation on a random slice of cells (the Cauchy sparsity
loss is added by the optimiser's kernel, in its pass over the touched voxels).

TV gradients run in the backend's kernel (see ``kernels.voxel`` for the exact term);
``tv_loss_reference`` is the plain-torch oracle they are tested against.
"""

import torch

from plenox.backend import backend_for
from plenox.models.grid import SparseGrid
from plenox.models.grid_autograd import GridGrads


def tv_scale(grid: SparseGrid) -> tuple[float, float, float]:
    """Per-axis difference scale R / 256, as svox2, so TV weights carry across resolutions."""
    return tuple(r / 256.0 for r in grid.resolution)


def random_cell_range(grid: SparseGrid, fraction: float, generator: torch.Generator) -> tuple[int, int]:
    """A random contiguous range [lo, hi) of flat cell indices covering ``fraction`` of the grid."""
    total = grid.links.numel()
    count = max(1, int(total * fraction))
    lo = int(torch.randint(0, max(1, total - count + 1), (1,), generator=generator))
    return lo, lo + count


@torch.no_grad()
def add_tv_grad(grid: SparseGrid, grads: GridGrads, cells: tuple[int, int], weight_density: float,
                weight_sh: float) -> None:
    """Add the gradients of weight * (mean TV term over the cells [lo, hi)) into ``grads``
    and mark the voxels touched.

    The mean, not the sum, as svox2 (it divides its weight by the number of sampled cells), so
    svox2's lambda_tv values carry over and the pull does not grow with the grid."""
    backend = backend_for(grid.density)
    scale = tv_scale(grid)
    per_cell = 1.0 / max(1, cells[1] - cells[0])
    touched = False
    for param, grad, weight in ((grid.density, grads.density, weight_density), (grid.sh, grads.sh, weight_sh)):
        if weight <= 0:
            continue
        width = 1 if param.dim() == 1 else param.shape[1]
        backend.tv_grad(grid.links, param.data.view(-1, width), 0, width, scale, cells[0], cells[1],
                        weight * per_cell, grad.view(-1, width))
        touched = True
    if touched:
        grads.mark(voxels_of_cells(grid, cells))


def voxels_of_cells(grid: SparseGrid, cells: tuple[int, int]) -> torch.Tensor:
    """bool (N,): linked voxels that are a corner (base or +1 neighbour) of a cell in [lo, hi)."""
    ry, rz = grid.resolution[1], grid.resolution[2]
    flat = grid.links.view(-1)
    lo, hi = cells
    window = flat[lo:min(hi + ry * rz, flat.numel())]
    mask = torch.zeros(grid.n_voxels, dtype=torch.bool, device=flat.device)
    mask[window[window >= 0].long()] = True
    return mask


def tv_loss_reference(grid: SparseGrid, cells: tuple[int, int], param: torch.Tensor) -> torch.Tensor:
    """Plain-torch sum of TV terms over cells [lo, hi) for ``param`` (grid.density or grid.sh)."""
    links = grid.links.long()
    rx, ry, rz = grid.resolution
    data = param.view(param.shape[0], -1)
    padded = torch.cat([data, data.new_zeros(1, data.shape[1])])  # row -1 reads zero
    flat = torch.arange(cells[0], cells[1])
    x, y, z = flat // (ry * rz), (flat // rz) % ry, flat % rz

    def value(ix, iy, iz):
        return padded[links[ix, iy, iz]]

    v = value(x, y, z)
    sx, sy, sz = tv_scale(grid)
    dx = sx * (value((x + 1).clamp(max=rx - 1), y, z) - v)
    dy = sy * (value(x, (y + 1).clamp(max=ry - 1), z) - v)
    dz = sz * (value(x, y, (z + 1).clamp(max=rz - 1)) - v)
    return torch.sqrt(dx * dx + dy * dy + dz * dz + 1e-5).sum()
