"""Rendering a SparseGrid through the kernels, differentiably: a torch.autograd.Function.

``render_rays`` renders a batch of rays and differentiates through ``grid.density`` and
``grid.sh`` (and the background's ``density`` and ``rgb`` when the grid has one); ``fit_rays``
does a training batch's forward and backward of the squared error in one kernel, without
autograd; ``render_chunked`` renders any number of rays (any leading shape) in chunks
without gradients; ``max_weights`` gives each voxel's largest sample weight over a set of
rays (for pruning). The kernels run on the backend of the grid's device and read the
tensors' memory directly, without copies.

Gradients go to autograd (``grid.density.grad``, ``grid.sh.grad``) by default. A trainer
that owns its buffers passes ``GridGrads``: the backward pass then adds into those buffers
(the background's into ``GridGrads.background``) and records the touched voxels there, and
autograd gets no gradient for the grid.
"""

from dataclasses import dataclass

import numpy as np
import torch

from plenox.backend import GridArrays, MarchSettings, backend_for
from plenox.models.grid import SparseGrid


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

    def march(self) -> MarchSettings:
        """The settings as the kernels take them."""
        return MarchSettings(self.step, self.sigma_thresh, self.stop_thresh, *self.background)

    def protocol(self) -> dict:
        """The settings a metrics file records (so a figure can be reproduced)."""
        return {"step_size": self.step, "sigma_thresh": self.sigma_thresh, "stop_thresh": self.stop_thresh,
                "background": list(self.background)}


class GridGrads:
    """Gradient buffers for one grid, owned by whoever trains it (the optimiser).

    density (N,) and sh (N, 3B) in the grid's dtype, touched bool (N,): the voxels that got a
    gradient since the last ``clear``. Reusing them saves allocating and faulting in
    grid-sized buffers every step (270 MB at 2.4 M voxels of SH degree 2). ``background``:
    the GridGrads of the grid's background seen as voxels (``Background.voxels()``: density
    (K*L,), sh (K*L, 3)), which whoever owns it (its optimiser) attaches; None without one.
    """

    def __init__(self, density: torch.Tensor, sh: torch.Tensor):
        self.density = torch.zeros_like(density, memory_format=torch.contiguous_format)
        self.sh = torch.zeros_like(sh, memory_format=torch.contiguous_format)
        self._touched = torch.zeros(density.shape[0], dtype=torch.uint8, device=density.device)
        self.background: GridGrads | None = None

    @property
    def touched(self) -> torch.Tensor:
        """bool (N,): voxels that received a gradient since the last clear."""
        return self._touched.bool()

    def touched_bytes(self) -> torch.Tensor:
        """uint8 (N,) view the kernels write (1 = touched)."""
        return self._touched

    def mark(self, rows: torch.Tensor) -> None:
        """Record voxels (bool (N,)) as touched, e.g. by a regulariser's gradient."""
        self._touched |= rows.to(torch.uint8)

    def clear(self) -> None:
        """Zero the gradients and the touched mask (the background's are its owner's to clear)."""
        self.density.zero_()
        self.sh.zero_()
        self._touched.zero_()

    def background_buffers(self, arrays: GridArrays) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(density (K, L), rgb (K, 3L), touched uint8 (K, L)) for the background of ``arrays``:
        views of ``background``'s buffers, or buffers with no rows when the grid has none."""
        k, layers = arrays.bg_density.shape
        if self.background is None:
            if k:
                raise ValueError("the grid has a background but these gradient buffers have none for it")
            empty = arrays.bg_density.new_empty((0, 0))
            return empty, empty, torch.empty((0, 0), dtype=torch.uint8, device=empty.device)
        bg = self.background
        return bg.density.view(k, layers), bg.sh.view(k, 3 * layers), bg.touched_bytes().view(k, layers)


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
    """rgb, depth, acc = f(density, sh[, bg_density, bg_rgb]); gradients flow to the grid's data
    through rgb only (or into the caller's GridGrads when one is given)."""

    @staticmethod
    def forward(ctx, density, sh, arrays, march, origins, dirs, grads, bg_density=None, bg_rgb=None):
        backend = backend_for(density)
        rgb, depth, acc = backend.forward(arrays, march, origins, dirs)
        ctx.arrays, ctx.march, ctx.backend, ctx.grads = arrays, march, backend, grads
        ctx.save_for_backward(origins, dirs, rgb)
        ctx.mark_non_differentiable(depth, acc)
        return rgb, depth, acc

    @staticmethod
    def backward(ctx, grad_rgb, _grad_depth, _grad_acc):
        origins, dirs, rgb = ctx.saved_tensors
        arrays = ctx.arrays
        grads = ctx.grads
        if grads is None:   # autograd's own: fresh buffers, returned below
            grads = GridGrads(arrays.density, arrays.sh)
            if arrays.bg_density.shape[0]:
                grads.background = GridGrads(arrays.bg_density.reshape(-1), arrays.bg_rgb.reshape(-1, 3))
        ctx.backend.backward(arrays, ctx.march, origins, dirs, rgb, grad_rgb.to(rgb.dtype).contiguous(),
                             grads.density, grads.sh, grads.touched_bytes(), *grads.background_buffers(arrays))
        if ctx.grads is not None:
            return None, None, None, None, None, None, None, None, None
        bg = grads.background
        k, layers = arrays.bg_density.shape
        return (grads.density, grads.sh, None, None, None, None, None,
                None if bg is None else bg.density.view(k, layers),
                None if bg is None else bg.sh.view(k, layers, 3))


def render_rays(grid: SparseGrid, origins: torch.Tensor, dirs: torch.Tensor,
                options: RenderOptions | None = None, grads: GridGrads | None = None) -> dict:
    """Render rays through a grid (and its background, when it has one).

    origins, dirs: (M, 3) world-space tensors of the grid's dtype (dirs need not be unit).
    Returns dict(rgb (M, 3), depth (M,) world units, acc (M,) opacity); rgb carries
    gradients to grid.density, grid.sh and the background's density and rgb when they
    require grad, or into ``grads``.
    """
    options = options or RenderOptions()
    check_grid(grid)
    check_rays(origins, dirs, grid.density.dtype, grid.density.device)
    arrays = grid.kernel_arrays(options.sigma_thresh)
    bg = () if grid.background is None else (grid.background.density, grid.background.rgb)
    rgb, depth, acc = RenderFunction.apply(grid.density, grid.sh, arrays, options.march(), origins, dirs, grads, *bg)
    return {"rgb": rgb, "depth": depth, "acc": acc}


@torch.no_grad()
def fit_rays(grid: SparseGrid, origins: torch.Tensor, dirs: torch.Tensor, target: torch.Tensor,
             options: RenderOptions, grads: GridGrads) -> torch.Tensor:
    """One training batch without autograd: the rays' colours rgb (M, 3), with the gradients of
    their mean squared error against ``target`` (M, 3) added into ``grads`` (and the touched
    voxels marked), exactly what ``render_rays`` then ``mse.backward()`` give, in one kernel
    that marches each ray forward and back while its voxels are in cache.

    origins, dirs, target: (M, 3) contiguous tensors of the grid's dtype and device."""
    check_grid(grid)
    check_rays(origins, dirs, grid.density.dtype, grid.density.device)
    if target.shape != origins.shape or target.dtype != origins.dtype or not target.is_contiguous():
        raise ValueError(f"target must be a contiguous {tuple(origins.shape)} tensor of {origins.dtype}")
    arrays = grid.kernel_arrays(options.sigma_thresh)
    return backend_for(grid.density).fit(arrays, options.march(), origins, dirs, target, grads.density, grads.sh,
                                         grads.touched_bytes(), *grads.background_buffers(arrays))


@torch.no_grad()
def render_chunked(grid: SparseGrid, origins: torch.Tensor, dirs: torch.Tensor,
                   options: RenderOptions | None = None, chunk: int = 65536) -> dict:
    """Render rays of any leading shape (..., 3) in chunks of ``chunk`` rays, without gradients.

    Returns rgb (..., 3), depth and acc (...), on the grid's device."""
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
    arrays, march = grid.kernel_arrays(options.sigma_thresh), options.march()
    for i in range(0, origins.shape[0], chunk):
        backend.max_weights(arrays, march, origins[i:i + chunk], dirs[i:i + chunk], out)
    return out
