"""Public rendering API: a torch.autograd.Function over the Numba kernels.

``render_rays`` renders a batch of rays and differentiates through ``grid.density`` and
``grid.sh``; ``render_image`` renders whole images in chunks; ``max_weights`` gives each
voxel's largest sample weight over a set of rays (for pruning). The kernels run on the
backend of the grid's device and read the tensors' memory directly, without copies.
"""

from dataclasses import dataclass

import numpy as np
import torch

from plenox.backend import backend_for
from plenox.grid import SparseGrid


@dataclass(frozen=True)
class RenderOptions:
    """Ray-marching settings (svox2 semantics).

    step: samples per voxel length (0.5 = two samples per voxel); sigma_thresh: samples
    with interpolated density at or below it are skipped; stop_thresh: the march stops
    once transmittance falls under it; background: RGB in [0, 1] behind the field.
    """

    step: float = 0.5
    sigma_thresh: float = 1e-8
    stop_thresh: float = 1e-7
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self):
        if not self.step > 0:
            raise ValueError(f"step must be positive, got {self.step}")
        if not self.sigma_thresh >= 0:
            raise ValueError(f"sigma_thresh must be >= 0, got {self.sigma_thresh}")
        if not 0 <= self.stop_thresh < 1:
            raise ValueError(f"stop_thresh must be in [0, 1), got {self.stop_thresh}")
        if len(self.background) != 3 or not np.isfinite(self.background).all():
            raise ValueError(f"background must be 3 finite numbers, got {self.background!r}")


def check_rays(origins: torch.Tensor, dirs: torch.Tensor, dtype: torch.dtype, device: torch.device) -> None:
    """Raise ValueError unless origins and dirs are finite, contiguous (M, 3) tensors of ``dtype``
    on ``device`` and every direction is non-zero."""
    for name, t in (("origins", origins), ("dirs", dirs)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 2 or t.shape[1] != 3:
            raise ValueError(f"{name} must have shape (M, 3), got {tuple(t.shape)}")
        if t.dtype != dtype:
            raise ValueError(f"{name} must be {dtype} like the grid, got {t.dtype}")
        if not t.is_contiguous():
            raise ValueError(f"{name} must be contiguous (call .contiguous())")
        if t.device != device:
            raise ValueError(f"{name} must be on the grid's device {device}, got {t.device}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or Inf")
    if origins.shape[0] != dirs.shape[0]:
        raise ValueError(f"origins and dirs differ in length: {origins.shape[0]} vs {dirs.shape[0]}")
    if dirs.shape[0] and not (dirs.abs().sum(dim=1) > 0).all():
        raise ValueError("dirs contains a zero-length direction")


def check_grid(grid: SparseGrid) -> None:
    """Raise ValueError unless the grid's arrays are what the kernels read."""
    if grid.density.dtype not in (torch.float32, torch.float64) or grid.sh.dtype != grid.density.dtype:
        raise ValueError(f"grid density and sh must share float32 or float64, got "
                         f"{grid.density.dtype} and {grid.sh.dtype}")
    for name, t in (("links", grid.links), ("density", grid.density), ("sh", grid.sh)):
        if not t.is_contiguous():
            raise ValueError(f"grid {name} must be contiguous")


class RenderFunction(torch.autograd.Function):
    """rgb, depth, acc = f(density, sh); gradients flow to density and sh through rgb only."""

    @staticmethod
    def forward(ctx, density, sh, grid, options, origins, dirs):
        backend = backend_for(density)
        rgb, depth, acc = backend.forward(grid, options, origins, dirs)
        ctx.grid, ctx.options, ctx.backend = grid, options, backend
        ctx.save_for_backward(origins, dirs, rgb)
        ctx.mark_non_differentiable(depth, acc)
        return rgb, depth, acc

    @staticmethod
    def backward(ctx, grad_rgb, _grad_depth, _grad_acc):
        origins, dirs, rgb = ctx.saved_tensors
        grad_density, grad_sh, touched = ctx.backend.backward(
            ctx.grid, ctx.options, origins, dirs, rgb, grad_rgb.to(rgb.dtype).contiguous())
        ctx.grid.mark_touched(touched)
        return grad_density, grad_sh, None, None, None, None


def render_rays(grid: SparseGrid, origins: torch.Tensor, dirs: torch.Tensor,
                options: RenderOptions | None = None) -> dict:
    """Render rays through a grid.

    origins, dirs: (M, 3) world-space tensors of the grid's dtype (dirs need not be unit).
    Returns dict(rgb (M, 3), depth (M,) world units, acc (M,) opacity); rgb carries
    gradients to grid.density and grid.sh when they require grad.
    """
    options = options or RenderOptions()
    check_grid(grid)
    check_rays(origins, dirs, grid.density.dtype, grid.density.device)
    rgb, depth, acc = RenderFunction.apply(grid.density, grid.sh, grid, options, origins, dirs)
    return {"rgb": rgb, "depth": depth, "acc": acc}


@torch.no_grad()
def render_image(grid: SparseGrid, origins: torch.Tensor, dirs: torch.Tensor,
                 options: RenderOptions | None = None, chunk: int = 65536) -> dict:
    """Render an image of rays (H, W, 3) in chunks; returns rgb (H, W, 3), depth and acc (H, W)."""
    shape = origins.shape[:-1]
    like = grid.density
    flat_o = origins.reshape(-1, 3).to(device=like.device, dtype=like.dtype).contiguous()
    flat_d = dirs.reshape(-1, 3).to(device=like.device, dtype=like.dtype).contiguous()
    parts = [render_rays(grid, flat_o[i:i + chunk], flat_d[i:i + chunk], options)
             for i in range(0, flat_o.shape[0], chunk)]
    return {k: torch.cat([p[k] for p in parts]).reshape(*shape, *parts[0][k].shape[1:]) for k in parts[0]}


@torch.no_grad()
def max_weights(grid: SparseGrid, origins: torch.Tensor, dirs: torch.Tensor,
                options: RenderOptions | None = None, chunk: int = 65536,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """Largest weight T_i * alpha_i of any sample each voxel is a corner of, over all rays.

    origins, dirs: (M, 3). Returns (N,) in the grid's dtype (``out`` is updated in place
    and returned when given, so several batches of rays can be folded together).
    """
    options = options or RenderOptions()
    check_grid(grid)
    check_rays(origins, dirs, grid.density.dtype, grid.density.device)
    out = torch.zeros_like(grid.density) if out is None else out
    backend = backend_for(grid.density)
    for i in range(0, origins.shape[0], chunk):
        backend.max_weights(grid, options, origins[i:i + chunk], dirs[i:i + chunk], out)
    return out
