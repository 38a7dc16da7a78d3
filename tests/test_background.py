"""The background model (svox2's multi-sphere image) in the kernels against the plain-torch
reference, float64: outputs and gradients of the grid and the background together."""

import pytest
import torch

from gridutil import (random_grid, rays_at_box, rays_inside_box, rays_missing_box, rays_pole_and_seam,
                      with_background)
from plenox.models.grid import SparseGrid
from plenox.models.grid_autograd import GridGrads, RenderFunction, RenderOptions, render_rays
from plenox.models.grid_oracle import render_reference

RTOL = 1e-6


def assert_close(actual, expected, name):
    scale = max(expected.abs().max().item(), 1e-12)
    err = (actual - expected).abs().max().item()
    assert err <= RTOL * scale, f"{name}: max error {err:.3e} vs scale {scale:.3e}"


def params(grid):
    return [grid.density, grid.sh, grid.background.density, grid.background.rgb]


def compare(grid, origins, dirs, options=RenderOptions(background=(0.2, 0.5, 0.7)), seed=0):
    """Forward outputs and the gradients of all four parameters must agree with the reference."""
    out = render_rays(grid, origins, dirs, options)
    ref = render_reference(grid, origins, dirs, options.step, options.sigma_thresh, options.stop_thresh,
                           options.background)
    for key in ("rgb", "depth", "acc"):
        assert_close(out[key], ref[key], key)
    g = torch.randn(origins.shape[0], 3, generator=torch.Generator().manual_seed(seed), dtype=origins.dtype)
    grads = torch.autograd.grad((out["rgb"] * g).sum(), params(grid), allow_unused=True)
    ref_grads = torch.autograd.grad((ref["rgb"] * g).sum(), params(grid), allow_unused=True)
    for name, got, want in zip(("density", "sh", "bg density", "bg rgb"), grads, ref_grads):
        want = torch.zeros_like(got) if want is None else want
        assert_close(got, want, f"grad {name}")
    return out, grads


@pytest.mark.parametrize("basis_dim", [1, 9])
def test_cameras_outside_the_box(basis_dim):
    """Rays from distance 3 (outside the background's unit sphere): some start the background
    at their closest approach, those aimed away at the origin."""
    grid = with_background(random_grid(basis_dim=basis_dim, seed=basis_dim), seed=basis_dim)
    origins, dirs = rays_at_box(grid, 64, seed=basis_dim, spread=1.5)
    out, grads = compare(grid, origins, dirs)
    assert grads[2].abs().sum() > 0 and grads[3].abs().sum() > 0
    assert (out["acc"] > 0.5).any()


def test_cameras_inside_the_box():
    grid = with_background(random_grid(seed=3, density_range=(-4.0, 2.0)), seed=3)
    compare(grid, *rays_inside_box(grid, 40, seed=3))


def test_rays_that_miss_the_box_see_the_background():
    grid = with_background(random_grid(), seed=1)
    origins, dirs = rays_missing_box()
    out, grads = compare(grid, origins, dirs)
    assert (out["acc"] > 0).all() and grads[0].abs().sum() == 0


def test_pole_and_longitude_seam():
    grid = with_background(random_grid(seed=2, center=(0.0, 0.0, 0.0), density_range=(-4.0, 1.0)), reso=8, seed=2)
    compare(grid, *rays_pole_and_seam(grid))


def test_early_stop_in_the_grid_and_in_the_background():
    """A dense grid stops some rays before the background; a dense background stops the rest in it."""
    grid = with_background(random_grid(seed=6, density_range=(5.0, 30.0), fill=1.0), seed=6,
                           density_range=(100.0, 400.0))
    origins, dirs = rays_at_box(grid, 40, seed=6, spread=1.5)
    options = RenderOptions(stop_thresh=0.05)
    out, _ = compare(grid, origins, dirs, options)
    full = render_rays(grid, origins, dirs, RenderOptions(stop_thresh=0.0))
    assert (out["rgb"] - full["rgb"]).abs().max() > 1e-6


def test_empty_background_pixels_read_zero():
    grid = with_background(random_grid(seed=4), fill=0.3, seed=4)
    compare(grid, *rays_at_box(grid, 48, seed=4, spread=1.5))


def test_background_costs_a_grid_nothing_when_absent():
    """Without a background the kernels render what they rendered before: the reference
    without a background, and a background of zero density changes nothing but depth."""
    grid = random_grid(seed=5)
    origins, dirs = rays_at_box(grid, 32, seed=5)
    plain = render_rays(grid, origins, dirs)
    ref = render_reference(grid, origins, dirs)
    assert_close(plain["rgb"], ref["rgb"], "rgb")
    clear = with_background(grid, seed=5, density_range=(-1.0, 0.0))
    assert torch.equal(render_rays(clear, origins, dirs)["rgb"], plain["rgb"])


def test_touched_background_voxels_are_recorded():
    grid = with_background(random_grid(seed=9), seed=9)
    origins, dirs = rays_at_box(grid, 8, seed=9, spread=1.5)
    voxels = grid.background.voxels()
    grads = GridGrads(grid.density.detach(), grid.sh.detach())
    grads.background = GridGrads(voxels.density, voxels.sh)
    render_rays(grid, origins, dirs, grads=grads)["rgb"].sum().backward()
    bg = grads.background
    assert bg.touched.any() and not bg.touched.all()
    assert torch.equal(bg.touched, bg.touched | (bg.density != 0) | (bg.sh != 0).any(dim=1))
    grads_without = GridGrads(grid.density.detach(), grid.sh.detach())
    with pytest.raises(ValueError, match="background"):
        render_rays(grid, origins, dirs, grads=grads_without)["rgb"].sum().backward()


def test_float32_close_to_float64():
    grid64 = with_background(random_grid(seed=7), seed=7)
    origins, dirs = rays_at_box(grid64, 64, seed=7, spread=1.5)
    bg = grid64.background
    grid32 = SparseGrid(grid64.links, grid64.density.detach().float(), grid64.sh.detach().float(),
                        grid64.center, grid64.radius, grid64.basis_dim,
                        type(bg)(bg.links, bg.density.detach().float(), bg.rgb.detach().float()))
    out64 = render_rays(grid64, origins, dirs)["rgb"]
    out32 = render_rays(grid32, origins.float(), dirs.float())["rgb"]
    assert (out32.double() - out64).abs().max() < 1e-4


def test_gradcheck_tiny_grid_and_background():
    grid = with_background(random_grid(resolution=(3, 3, 3), basis_dim=4, fill=1.0, seed=8,
                                       density_range=(0.5, 3.0)), reso=3, layers=3, fill=1.0, seed=8,
                           density_range=(1.0, 40.0))
    origins, dirs = rays_at_box(grid, 6, seed=8, spread=1.0)
    options = RenderOptions(stop_thresh=0.0)
    bg = grid.background

    def fn(density, sh, bg_density, bg_rgb):
        with torch.no_grad():
            grid.density.copy_(density)
            grid.sh.copy_(sh)
            bg.density.copy_(bg_density)
            bg.rgb.copy_(bg_rgb)
        grid.mark_density_changed()
        arrays = grid.kernel_arrays(options.sigma_thresh)
        return RenderFunction.apply(density, sh, arrays, options.march(), origins, dirs, None, bg_density, bg_rgb)[0]

    inputs = tuple(p.detach().clone().requires_grad_(True) for p in params(grid))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)
