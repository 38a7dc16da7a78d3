"""The cases on which the CUDA kernels must reproduce the CPU kernels.

Two suites run them: ``test_cuda_sim.py`` (the CUDA kernels on Numba's CUDA simulator, no
GPU needed) and ``test_cuda_gpu.py`` (on a real GPU). Each case runs through the public API
(``render_rays`` with autograd, ``max_weights``) and the backend's optimiser kernels on
whichever backend serves the device it is given, and returns its outputs as numpy arrays.
Grids and ray counts are small: the simulator runs every CUDA thread in Python.
"""

import numpy as np
import torch

from gridutil import (corner_density_grid, random_grid, rays_at_box, rays_grazing_unit_box, rays_inside_box,
                      rays_missing_box, rays_pole_and_seam, two_cluster_scene, with_background)
from plenox.backend import backend_for
from plenox.models.background import Background
from plenox.models.grid import SparseGrid
from plenox.models.grid_autograd import GridGrads, RenderOptions, fit_rays, max_weights, render_rays

# Relative to the largest expected magnitude. Float64 differs only by summation order
# (atomics on the GPU, part buffers on the CPU).
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
# The CUDA simulator runs the maths as Python on NumPy scalars, and NumPy's promotion rules
# keep float32 where compiled Numba widens to float64 (e.g. `s = 0.0; s += w * d` with
# float32 w, d): float32 results carry up to ~2e-5 of extra rounding there.
SIM_RTOL = {np.dtype(np.float32): 5e-5, np.dtype(np.float64): 1e-12}


def _random(dtype, basis_dim, seed, n_rays):
    grid = random_grid(basis_dim=basis_dim, seed=seed, dtype=dtype)
    return grid, *rays_at_box(grid, n_rays, seed=seed), RenderOptions()


def _inside(dtype):
    grid = random_grid(seed=3, dtype=dtype)
    return grid, *rays_inside_box(grid, 16, seed=3), RenderOptions()


def _gated_blocks(dtype):
    grid = corner_density_grid(dtype)
    return grid, *rays_at_box(grid, 12, seed=10), RenderOptions()


def _early_stop(dtype):
    grid = random_grid(seed=6, density_range=(20.0, 60.0), fill=1.0, dtype=dtype)
    return grid, *rays_at_box(grid, 16, seed=6), RenderOptions(stop_thresh=0.05)


_RAY_CASES = {
    "sh1": lambda dtype: _random(dtype, 1, 1, 12),
    "sh9": lambda dtype: _random(dtype, 9, 9, 12),
    "sh16": lambda dtype: _random(dtype, 16, 16, 12),
    "miss": lambda dtype: (random_grid(dtype=dtype), *rays_missing_box(dtype),
                           RenderOptions(background=(0.2, 0.3, 0.4))),
    "inside": _inside,
    "grazing": lambda dtype: (random_grid(seed=4, center=(0.0, 0.0, 0.0), radius=(1.0, 1.0, 1.0), dtype=dtype),
                              *rays_grazing_unit_box(dtype), RenderOptions()),
    "pruned_empty_blocks": lambda dtype: (*two_cluster_scene(12, dtype), RenderOptions(stop_thresh=0.0)),
    "early_stop": _early_stop,
    "gated_blocks": _gated_blocks,
    "background": lambda dtype: _background(dtype),
    "background_inside_stop": lambda dtype: _background_inside_stop(dtype),
}


def _background(dtype):
    """Rays from outside the box through a grid and a sparse background."""
    grid = with_background(random_grid(basis_dim=4, seed=12, dtype=dtype), seed=12, fill=0.7)
    return grid, *rays_at_box(grid, 12, seed=12, spread=1.5), RenderOptions()


def _background_inside_stop(dtype):
    """Rays from inside the box (and along the map's pole and seam) through a dense
    background that stops them."""
    grid = with_background(random_grid(seed=13, density_range=(-4.0, 2.0), dtype=dtype), seed=13,
                           density_range=(50.0, 300.0))
    origins, dirs = rays_inside_box(grid, 8, seed=13)
    pole_o, pole_d = rays_pole_and_seam(grid)
    return grid, torch.cat([origins, pole_o]), torch.cat([dirs, pole_d]), RenderOptions(stop_thresh=0.01)
DTYPES = {"float32": torch.float32, "float64": torch.float64}
RAY_CASES = [f"{name}-{dtype}" for name in _RAY_CASES for dtype in DTYPES]


def _fresh(grid: SparseGrid, device) -> SparseGrid:
    """A copy of ``grid`` (and its background) on ``device`` with no gradients or touched voxels."""
    bg = grid.background
    if bg is not None:
        bg = Background(bg.links, bg.density.detach().clone(), bg.rgb.detach().clone())
    return SparseGrid(grid.links, grid.density.detach().clone(), grid.sh.detach().clone(),
                      grid.center, grid.radius, grid.basis_dim, bg).to(device)


def _fit_case(grid: SparseGrid, origins, dirs, options) -> dict:
    """The fused training kernel's colours, gradients and touched voxels (keys fit_*) for a
    squared error against a random target."""
    grads = GridGrads(grid.density.detach(), grid.sh.detach())
    if grid.background is not None:
        voxels = grid.background.voxels()
        grads.background = GridGrads(voxels.density, voxels.sh)
    target = torch.rand(origins.shape, generator=torch.Generator().manual_seed(1), dtype=origins.dtype)
    rgb = fit_rays(grid, origins, dirs, target.to(origins.device), options, grads)
    out = {"fit_rgb": rgb, "fit_grad_density": grads.density, "fit_grad_sh": grads.sh, "fit_touched": grads.touched}
    if grads.background is not None:
        out.update(fit_grad_bg_density=grads.background.density, fit_grad_bg_rgb=grads.background.sh)
    return out


def run_ray_case(case: str, device) -> dict:
    """Density-aware block occupancy, forward outputs, density/SH gradients, touched voxels
    and max weights of ray case ``case`` (an entry of RAY_CASES) rendered on ``device``."""
    name, dtype = case.rsplit("-", 1)
    grid, origins, dirs, options = _RAY_CASES[name](DTYPES[dtype])
    grid = _fresh(grid, device)
    origins, dirs = origins.to(device), dirs.to(device)
    grads = GridGrads(grid.density.detach(), grid.sh.detach())
    if grid.background is not None:
        voxels = grid.background.voxels()
        grads.background = GridGrads(voxels.density, voxels.sh)
    out = render_rays(grid, origins, dirs, options, grads)
    weights = torch.randn(origins.shape[0], 3, generator=torch.Generator().manual_seed(0),
                          dtype=origins.dtype).to(device)
    (out["rgb"] * weights).sum().backward()
    results = dict(out, active_blocks=grid.active_occupancy(options.sigma_thresh), grad_density=grads.density,
                   grad_sh=grads.sh, touched=grads.touched, max_weight=max_weights(grid, origins, dirs, options))
    if grads.background is not None:
        results.update(grad_bg_density=grads.background.density, grad_bg_rgb=grads.background.sh,
                       bg_touched=grads.background.touched)
    results.update(_fit_case(grid, origins, dirs, options))
    return {key: value.detach().cpu().numpy() for key, value in results.items()}


def run_optimiser_case(dtype: str, device) -> dict:
    """TV gradients (all cells of the density column; a slab of cells of some SH columns)
    and two RMSProp steps with sparsity (the first sets the running mean) on every third row."""
    grid = random_grid(resolution=(6, 5, 7), basis_dim=4, fill=0.7, seed=11, dtype=DTYPES[dtype])
    data = torch.cat([grid.density.detach()[:, None], grid.sh.detach()], dim=1).to(device)
    links = grid.links.to(device)
    backend = backend_for(data)
    n_cells = links.numel()
    scale = [r / 256.0 for r in grid.resolution]
    tv = torch.zeros_like(data)
    backend.tv_grad(links, data, 0, 1, scale, 0, n_cells, 1.0, tv)
    backend.tv_grad(links, data, 2, 7, scale, n_cells // 3, 2 * n_cells // 3, 0.5, tv)
    grad = torch.randn(data.shape, generator=torch.Generator().manual_seed(1), dtype=data.dtype).to(device)
    avg = torch.zeros_like(data)
    density, sh = data[:, :1].contiguous(), data[:, 1:].contiguous()
    avg_density, avg_sh = avg[:, :1].contiguous(), avg[:, 1:].contiguous()
    for step_grad in (grad, grad + tv):
        touched = torch.zeros(data.shape[0], dtype=torch.uint8, device=device)
        touched[::3] = 1
        backend.rmsprop_step(density, step_grad[:, :1].contiguous(), avg_density, sh, step_grad[:, 1:].contiguous(),
                             avg_sh, touched, 0.1, 0.01, 0.95, 1e-8, 0.1)
    return {key: value.cpu().numpy() for key, value in (("tv", tv), ("data", torch.cat([density, sh], dim=1)),
                                                         ("avg", torch.cat([avg_density, avg_sh], dim=1)))}


def all_outputs(device) -> dict:
    """Every case's outputs on ``device``, keyed 'case/output'."""
    outputs = {}
    for case in RAY_CASES:
        outputs.update({f"{case}/{k}": v for k, v in run_ray_case(case, device).items()})
    for dtype in DTYPES:
        outputs.update({f"optimiser-{dtype}/{k}": v for k, v in run_optimiser_case(dtype, device).items()})
    return outputs


def assert_outputs_match(actual: dict, expected: dict, label: str, rtol: dict = RTOL) -> None:
    """Every array of ``expected`` is in ``actual`` with the same shape and dtype and equal
    values: exactly for integer/bool arrays, for floats within ``rtol[dtype]`` of the largest
    magnitude."""
    for key, want in expected.items():
        got = actual[key]
        assert got.shape == want.shape and got.dtype == want.dtype, \
            f"{label} {key}: got {got.dtype} {got.shape}, expected {want.dtype} {want.shape}"
        if want.dtype.kind in "biu":
            assert np.array_equal(got, want), f"{label} {key}: {int((got != want).sum())} elements differ"
            continue
        scale = max(float(np.abs(want).max(initial=0.0)), 1e-12)
        err = float(np.abs(got - want).max(initial=0.0))
        assert err <= rtol[want.dtype] * scale, f"{label} {key}: max error {err:.3e} vs scale {scale:.3e}"
