"""Public rendering API: a torch.autograd.Function over the Numba kernels.

``render_rays`` renders a batch of rays and differentiates through ``grid.density`` and
``grid.sh``; ``render_image`` renders whole images in chunks. Kernels read the tensors'
memory directly (``Tensor.numpy()`` shares it), so nothing is copied.
"""

from dataclasses import dataclass

import numpy as np
import torch

from plenox.grid import SparseGrid
from plenox.kernels import cpu


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
        if not 0 <= self.stop_thresh < 1:
            raise ValueError(f"stop_thresh must be in [0, 1), got {self.stop_thresh}")
        if len(self.background) != 3 or not np.isfinite(self.background).all():
            raise ValueError(f"background must be 3 finite numbers, got {self.background!r}")


def check_rays(origins: torch.Tensor, dirs: torch.Tensor, dtype: torch.dtype) -> None:
    """Raise ValueError unless origins and dirs are finite, contiguous CPU (M, 3) tensors of ``dtype``
    and every direction is non-zero."""
    for name, t in (("origins", origins), ("dirs", dirs)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 2 or t.shape[1] != 3:
            raise ValueError(f"{name} must have shape (M, 3), got {tuple(t.shape)}")
        if t.dtype != dtype:
            raise ValueError(f"{name} must be {dtype} like the grid, got {t.dtype}")
        if not t.is_contiguous():
            raise ValueError(f"{name} must be contiguous (call .contiguous())")
        if t.device.type != "cpu":
            raise ValueError(f"{name} must be on the CPU for the CPU kernels, got {t.device}")
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


class _KernelArgs:
    """The kernels' view of a grid and options: numpy arrays sharing the tensors' memory."""

    def __init__(self, grid: SparseGrid, options: RenderOptions):
        self.links = grid.links.numpy()
        self.density = grid.density.detach().numpy()
        self.sh = grid.sh.detach().numpy()
        self.n_basis = grid.basis_dim
        self.occ = grid.occupancy()
        self.scale, self.offset = grid.scale_offset()
        self.step = float(options.step)
        self.sigma_thresh = float(options.sigma_thresh)
        self.stop_thresh = float(options.stop_thresh)
        self.background = np.asarray(options.background, dtype=np.float64)

    def grid_args(self):
        return (self.links, self.density, self.sh, self.n_basis, self.occ, self.scale, self.offset)

    def march_args(self):
        return (self.step, self.sigma_thresh, self.stop_thresh, self.background)


def _forward(args: _KernelArgs, origins: np.ndarray, dirs: np.ndarray):
    m = origins.shape[0]
    rgb = np.empty((m, 3), dtype=origins.dtype)
    depth = np.empty(m, dtype=origins.dtype)
    acc = np.empty(m, dtype=origins.dtype)
    if m:
        cpu.render_forward(*args.grid_args(), origins, dirs, *args.march_args(), rgb, depth, acc)
    return rgb, depth, acc


class _Workspace:
    """Private per-part gradient buffers for the CPU backward, kept zero between calls."""

    def __init__(self):
        self.key = None
        self.buffers = None

    def get(self, n: int, width: int, dtype, parts: int):
        key = (n, width, np.dtype(dtype), parts)
        if key != self.key:
            self.buffers = (np.zeros((parts - 1, n), dtype=dtype),
                            np.zeros((parts - 1, n, width), dtype=dtype),
                            np.zeros((parts - 1, n), dtype=np.uint8))
            self.key = key
        return self.buffers


_WORKSPACE = _Workspace()


class RenderFunction(torch.autograd.Function):
    """rgb, depth, acc = f(density, sh); gradients flow to density and sh through rgb only."""

    @staticmethod
    def forward(ctx, density, sh, grid, options, origins, dirs):
        args = _KernelArgs(grid, options)
        o, d = origins.numpy(), dirs.numpy()
        rgb, depth, acc = _forward(args, o, d)
        rgb_t = torch.from_numpy(rgb)
        ctx.grid = grid
        ctx.args = args
        ctx.save_for_backward(origins, dirs, rgb_t)
        depth_t, acc_t = torch.from_numpy(depth), torch.from_numpy(acc)
        ctx.mark_non_differentiable(depth_t, acc_t)
        return rgb_t, depth_t, acc_t

    @staticmethod
    def backward(ctx, grad_rgb, _grad_depth, _grad_acc):
        origins, dirs, rgb = ctx.saved_tensors
        args = ctx.args
        grid = ctx.grid
        grad_density = torch.zeros_like(grid.density)
        grad_sh = torch.zeros_like(grid.sh)
        touched = np.zeros(grid.n_voxels, dtype=np.uint8)
        if origins.shape[0]:
            g = grad_rgb.to(rgb.dtype).contiguous().numpy()
            parts = cpu.backward_parts()
            priv = _WORKSPACE.get(grid.n_voxels, grid.sh.shape[1], args.density.dtype, parts)
            cpu.render_backward(*args.grid_args(), origins.numpy(), dirs.numpy(), *args.march_args(),
                                rgb.numpy(), g, grad_density.numpy(), grad_sh.numpy(), touched, *priv)
        grid.mark_touched(torch.from_numpy(touched.view(bool)))
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
    check_rays(origins, dirs, grid.density.dtype)
    rgb, depth, acc = RenderFunction.apply(grid.density, grid.sh, grid, options, origins, dirs)
    return {"rgb": rgb, "depth": depth, "acc": acc}


@torch.no_grad()
def render_image(grid: SparseGrid, origins: torch.Tensor, dirs: torch.Tensor,
                 options: RenderOptions | None = None, chunk: int = 65536) -> dict:
    """Render an image of rays (H, W, 3) in chunks; returns rgb (H, W, 3), depth and acc (H, W)."""
    shape = origins.shape[:-1]
    flat_o = origins.reshape(-1, 3).to(grid.density.dtype).contiguous()
    flat_d = dirs.reshape(-1, 3).to(grid.density.dtype).contiguous()
    parts = [render_rays(grid, flat_o[i:i + chunk], flat_d[i:i + chunk], options)
             for i in range(0, flat_o.shape[0], chunk)]
    return {k: torch.cat([p[k] for p in parts]).reshape(*shape, *parts[0][k].shape[1:]) for k in parts[0]}
