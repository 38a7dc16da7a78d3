"""Numba kernels against the plain-torch reference, float64, forward and gradients."""

import pytest
import torch

from gridutil import (corner_density_grid, random_grid, rays_at_box, rays_grazing_unit_box, rays_inside_box,
                      rays_missing_box, two_cluster_scene)
from plenox.models.grid import SparseGrid
from plenox.models.grid_oracle import render_reference
from plenox.models.grid_autograd import GridGrads, RenderOptions, render_rays

RTOL = 1e-6


def assert_close(actual, expected, name):
    scale = max(expected.abs().max().item(), 1e-12)
    err = (actual - expected).abs().max().item()
    assert err <= RTOL * scale, f"{name}: max error {err:.3e} vs scale {scale:.3e}"


def compare(grid, origins, dirs, options=RenderOptions(), seed=0):
    """Forward outputs and density/SH gradients of kernel and reference must agree."""
    out = render_rays(grid, origins, dirs, options)
    ref = render_reference(grid, origins, dirs, options.step, options.sigma_thresh,
                           options.stop_thresh, options.background)
    for key in ("rgb", "depth", "acc"):
        assert_close(out[key], ref[key], key)
    g = torch.randn(origins.shape[0], 3, generator=torch.Generator().manual_seed(seed), dtype=origins.dtype)
    grads = torch.autograd.grad((out["rgb"] * g).sum(), [grid.density, grid.sh])
    ref_grads = torch.autograd.grad((ref["rgb"] * g).sum(), [grid.density, grid.sh])
    assert_close(grads[0], ref_grads[0], "grad density")
    assert_close(grads[1], ref_grads[1], "grad sh")
    return out, grads


@pytest.mark.parametrize("basis_dim", [1, 4, 9, 16])
def test_random_sparse_grid(basis_dim):
    grid = random_grid(basis_dim=basis_dim, seed=basis_dim)
    origins, dirs = rays_at_box(grid, 96, seed=basis_dim)
    out, grads = compare(grid, origins, dirs)
    assert (out["acc"] > 0.5).any() and grads[0].abs().sum() > 0 and grads[1].abs().sum() > 0


def test_rays_that_miss_the_box():
    grid = random_grid()
    origins, dirs = rays_missing_box()
    out, _ = compare(grid, origins, dirs, RenderOptions(background=(0.2, 0.3, 0.4)))
    assert torch.allclose(out["rgb"], torch.tensor([[0.2, 0.3, 0.4]] * 2, dtype=torch.float64))
    assert (out["acc"] == 0).all() and (out["depth"] == 0).all()


def test_rays_starting_inside_the_box():
    grid = random_grid(seed=3)
    compare(grid, *rays_inside_box(grid, 40, seed=3))


def test_rays_grazing_faces_and_axis_aligned():
    grid = random_grid(seed=4, center=(0.0, 0.0, 0.0), radius=(1.0, 1.0, 1.0))
    compare(grid, *rays_grazing_unit_box())


def test_rays_cross_pruned_voxels_and_empty_blocks():
    grid, origins, dirs = two_cluster_scene(30)
    assert grid.occupancy().float().mean() < 0.5
    out, _ = compare(grid, origins, dirs, RenderOptions(stop_thresh=0.0))
    assert (out["acc"] > 0).all()


def test_early_stop_on_transmittance():
    grid = random_grid(seed=6, density_range=(20.0, 60.0), fill=1.0)
    origins, dirs = rays_at_box(grid, 50, seed=6)
    options = RenderOptions(stop_thresh=0.05)
    out, _ = compare(grid, origins, dirs, options)
    full = render_rays(grid, origins, dirs, RenderOptions(stop_thresh=0.0))
    # Stopping early must change something (otherwise this test would not exercise it).
    assert (out["rgb"] - full["rgb"]).abs().max() > 1e-6


def test_float32_close_to_float64():
    grid64 = random_grid(seed=7)
    origins, dirs = rays_at_box(grid64, 64, seed=7)
    grid32 = SparseGrid(grid64.links, grid64.density.detach().float(), grid64.sh.detach().float(),
                        grid64.center, grid64.radius, grid64.basis_dim)
    out64 = render_rays(grid64, origins, dirs)["rgb"]
    out32 = render_rays(grid32, origins.float(), dirs.float())["rgb"]
    assert out32.dtype == torch.float32
    assert (out32.double() - out64).abs().max() < 1e-4


def test_gradcheck_tiny_grid():
    grid = random_grid(resolution=(3, 3, 3), basis_dim=4, fill=1.0, seed=8, density_range=(0.5, 3.0))
    origins, dirs = rays_at_box(grid, 6, seed=8, spread=0.2)
    options = RenderOptions(stop_thresh=0.0)

    def fn(density, sh):
        with torch.no_grad():
            grid.density.copy_(density)
            grid.sh.copy_(sh)
        grid.mark_density_changed()
        from plenox.models.grid_autograd import RenderFunction
        arrays = grid.kernel_arrays(options.sigma_thresh)
        return RenderFunction.apply(density, sh, arrays, options.march(), origins, dirs, None)[0]

    density = grid.density.detach().clone().requires_grad_(True)
    sh = grid.sh.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (density, sh), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_touched_voxels_are_recorded():
    grid = random_grid(seed=9)
    origins, dirs = rays_at_box(grid, 8, seed=9)
    grads = GridGrads(grid.density.detach(), grid.sh.detach())
    render_rays(grid, origins, dirs, grads=grads)["rgb"].sum().backward()
    touched = grads.touched
    assert touched.any()
    assert torch.equal(touched, (grads.density != 0) | (grads.sh != 0).any(dim=1) | touched)
    grads.clear()
    assert not grads.touched.any()


def test_density_aware_skipping_is_exact_and_tracks_updates():
    grid = corner_density_grid()
    assert 0 < grid.active_occupancy(1e-8).sum() < grid.occupancy().sum() / 2
    origins, dirs = rays_at_box(grid, 60, seed=10)
    compare(grid, origins, dirs)
    with torch.no_grad():  # an in-place write, announced, invalidates the cached occupancy
        grid.density.add_(3.0)
    grid.mark_density_changed()
    compare(grid, origins, dirs)
    from plenox.training.optimizer import SparseRMSProp  # a kernel write (optimiser) too
    opt = SparseRMSProp(grid)
    render_rays(grid, origins, dirs, grads=opt.grads)["rgb"].sum().backward()
    opt.step(lr_density=5.0, lr_sh=0.0)
    compare(grid, origins, dirs)


def test_all_gated_grid_renders_background():
    grid = random_grid(seed=11, density_range=(-3.0, -1.0))
    assert grid.active_occupancy(1e-8).sum() == 0
    origins, dirs = rays_at_box(grid, 10, seed=11)
    out = render_rays(grid, origins, dirs, RenderOptions(background=(0.1, 0.2, 0.3)))
    assert torch.allclose(out["rgb"], torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64).expand(10, 3))
