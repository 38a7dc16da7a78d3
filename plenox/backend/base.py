"""The tensor side of every kernel backend: allocates outputs and calls the kernels.

Subclasses say how a kernel runs (``_run``); the kernels of every target take the same
arguments, so everything else is written once here.
"""

import math

import numpy as np
import torch

from plenox.backend.arrays import GridArrays, MarchSettings


class KernelBackend:
    """Rendering, gradient, pruning and optimiser kernels over tensors of one device type."""

    name = "base"

    def __init__(self):
        self._scratch = {}

    def scratch(self, name: str, shape: tuple, like: torch.Tensor) -> torch.Tensor:
        """A work buffer of ``shape`` in ``like``'s dtype and device, kept between calls (its
        contents are undefined; one user at a time, as a training step): a per-step buffer
        would cost an allocation and page faults every step."""
        key = (name, like.dtype, like.device)
        size = math.prod(shape)
        if key not in self._scratch or self._scratch[key].numel() < size:
            self._scratch.pop(key, None)   # free the old one before allocating its successor
            self._scratch[key] = like.new_empty(size)
        return self._scratch[key][:size].view(shape)

    def _run(self, kernel: str, args: tuple, like: torch.Tensor, scatter: tuple = ()) -> None:
        """Run kernel ``kernel`` on ``args`` (tensors among them are passed as arrays) for
        tensors on ``like``'s device; ``scatter`` names the (name, tensor) outputs the kernel
        scatters into (for targets that need private buffers to do so)."""
        raise NotImplementedError

    @staticmethod
    def _grid_args(grid: GridArrays) -> tuple:
        return (grid.links, grid.density, grid.sh, grid.basis_dim, grid.occupancy, grid.scale, grid.offset,
                grid.bg_links, grid.bg_density, grid.bg_rgb)

    def forward(self, grid: GridArrays, march: MarchSettings, origins, dirs):
        """rgb (M, 3), depth (M,), acc (M,) for rays (M, 3)."""
        m = origins.shape[0]
        rgb = origins.new_empty((m, 3))
        depth = origins.new_empty(m)
        acc = origins.new_empty(m)
        if m:
            self._run("render_forward", (*self._grid_args(grid), origins, dirs, march.as_floats(), rgb, depth, acc),
                      origins)
        return rgb, depth, acc

    def backward(self, grid: GridArrays, march: MarchSettings, origins, dirs, rgb, grad_rgb,
                 grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched):
        """Add dL/d(density) into grad_density (N,) and dL/d(sh) into grad_sh (N, 3B) for
        dL/drgb (M, 3), and set touched (N,) uint8 to 1 for every voxel that got a gradient;
        likewise the background's into grad_bg_density (K, L), grad_bg_rgb (K, 3L) and
        bg_touched (K, L) (no rows without a background).
        The buffers belong to the caller (zero them to start afresh); returns them."""
        if origins.shape[0]:
            self._run("render_backward", (*self._grid_args(grid), origins, dirs, march.as_floats(),
                                          rgb, grad_rgb, grad_density, grad_sh, touched,
                                          grad_bg_density, grad_bg_rgb, bg_touched), origins,
                      scatter=(("density", grad_density), ("sh", grad_sh), ("touched", touched),
                               ("bg_density", grad_bg_density), ("bg_rgb", grad_bg_rgb), ("bg_touched", bg_touched)))
        return grad_density, grad_sh, touched

    def fit(self, grid: GridArrays, march: MarchSettings, origins, dirs, target,
            grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched):
        """Forward and backward of the mean squared error of the rays (M, 3) against ``target``
        (M, 3) over all M x 3 channels, in one kernel: returns the colours rgb (M, 3) and adds
        the gradients into the buffers as ``backward`` does."""
        m = origins.shape[0]
        rgb = origins.new_empty((m, 3))
        if m:
            grad_rgb = origins.new_empty((m, 3))
            self._run("render_fit", (*self._grid_args(grid), origins, dirs, march.as_floats(), target,
                                     2.0 / (3 * m), rgb, grad_rgb, grad_density, grad_sh, touched,
                                     grad_bg_density, grad_bg_rgb, bg_touched), origins,
                      scatter=(("density", grad_density), ("sh", grad_sh), ("touched", touched),
                               ("bg_density", grad_bg_density), ("bg_rgb", grad_bg_rgb), ("bg_touched", bg_touched)))
        return rgb

    def max_weights(self, grid: GridArrays, march: MarchSettings, origins, dirs, out_max):
        """out_max (N,) = max(out_max, per-voxel largest sample weight over the rays), in place."""
        if origins.shape[0]:
            self._run("max_weights", (*self._grid_args(grid), origins, dirs, march.as_floats(), out_max), origins,
                      scatter=(("max", out_max),))

    def active_blocks(self, links, density, sigma_thresh, out):
        """out (nbx, nby, nbz) uint8: 1 for blocks with a corner voxel of density > sigma_thresh,
        in place (see kernels.raymarch.block_active)."""
        self._run("active_blocks", (links, density, float(sigma_thresh), out), density)

    def tv_grad(self, links, data, col_lo, col_hi, scale, cell_lo, cell_hi, weight, grad):
        """grad[:, col_lo:col_hi] += weight * dTV/d data over cells [cell_lo, cell_hi) (see kernels.voxel)."""
        if not 0 <= cell_lo <= cell_hi <= links.numel():
            raise ValueError(f"cell range [{cell_lo}, {cell_hi}) is not within the grid's {links.numel()} cells")
        if cell_hi == cell_lo or col_hi == col_lo:
            return
        inv_norms = self.scratch("tv_inv_norms", (cell_hi - cell_lo, col_hi - col_lo), data)
        self._run("tv_grad", (links, data, col_lo, col_hi, np.asarray(scale, dtype=np.float64),
                              cell_lo, cell_hi, float(weight), grad, inv_norms), data)

    def rmsprop_step(self, density, grad_density, avg_density, sh, grad_sh, avg_sh, touched, lr_density, lr_sh,
                     beta, eps, sparsity=0.0):
        """In-place RMSProp step on the voxels marked in touched (N,) uint8: density, grad_density,
        avg_density (N, 1) after adding the Cauchy sparsity gradient of weight ``sparsity``, and
        sh, grad_sh, avg_sh (N, C); the gradients used and the marks are cleared (see kernels.voxel)."""
        if touched.numel():
            self._run("rmsprop_step", (density, grad_density, avg_density, sh, grad_sh, avg_sh, touched,
                                       float(lr_density), float(lr_sh), float(beta), float(eps), float(sparsity)),
                      density)
