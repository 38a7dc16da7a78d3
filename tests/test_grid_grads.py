"""Gradient buffers the optimiser owns: the backward pass and the regularisers add into them,
the step clears them, and the next step reuses them."""

import copy

import torch

import pytest

from plenox.models.grid_autograd import GridGrads, RenderOptions, fit_rays, render_rays
from plenox.training.optimizer import SparseRMSProp
from plenox.training.regularizers import add_tv_grad
from gridutil import random_grid, rays_at_box, with_background


def test_owned_buffers_hold_what_autograd_computes():
    grid = random_grid(seed=4)
    origins, dirs = rays_at_box(grid, 16, seed=4)
    grads = GridGrads(grid.density.detach(), grid.sh.detach())
    render_rays(grid, origins, dirs, grads=grads)["rgb"].sum().backward()
    assert grid.density.grad is None and grid.sh.grad is None   # the owner got them, not autograd
    reference = copy.deepcopy(grid)
    render_rays(reference, origins, dirs)["rgb"].sum().backward()
    assert torch.equal(grads.density, reference.density.grad)
    assert torch.equal(grads.sh, reference.sh.grad)


@pytest.mark.parametrize("background", [False, True])
def test_fused_fit_equals_render_then_mse_backward(background):
    """fit_rays (forward and backward in one kernel) gives autograd's colours, gradients of the
    mean squared error and touched voxels, in float64 (and adds to what the buffers hold)."""
    grid = random_grid(seed=9, density_range=(-2.0, 8.0))
    if background:
        grid = with_background(grid, seed=9)
    origins, dirs = rays_at_box(grid, 40, seed=9, spread=1.2 if background else 0.5)
    target = torch.rand(origins.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    options = RenderOptions(stop_thresh=1e-4)
    fused = SparseRMSProp(grid).grads
    reference = SparseRMSProp(grid).grads
    for _ in range(2):   # the second batch adds to the first's gradients
        rgb = fit_rays(grid, origins, dirs, target, options, fused)
        out = render_rays(grid, origins, dirs, options, reference)
        torch.mean((out["rgb"] - target) ** 2).backward()
        assert torch.allclose(rgb, out["rgb"], rtol=0, atol=1e-14)
    assert reference.density.abs().max() > 1e-5 and reference.sh.abs().max() > 1e-5   # not a vacuous match
    for got, want in ((fused, reference), (fused.background, reference.background)) if background else ((fused, reference),):
        assert torch.allclose(got.density, want.density, rtol=1e-12, atol=1e-15)
        assert torch.allclose(got.sh, want.sh, rtol=1e-12, atol=1e-15)
        assert torch.equal(got.touched, want.touched)


def test_buffers_accumulate_until_cleared():
    grid = random_grid(seed=6)
    origins, dirs = rays_at_box(grid, 16, seed=6)
    grads = GridGrads(grid.density.detach(), grid.sh.detach())
    render_rays(grid, origins, dirs, grads=grads)["rgb"].sum().backward()
    once = grads.density.clone()
    render_rays(grid, origins, dirs, grads=grads)["rgb"].sum().backward()
    assert torch.allclose(grads.density, 2 * once)
    grads.clear()
    assert not grads.density.any() and not grads.sh.any() and not grads.touched.any()


def test_training_steps_reuse_the_grid_gradients():
    grid = random_grid(seed=5, dtype=torch.float32)
    origins, dirs = rays_at_box(grid, 16, seed=5)
    opt = SparseRMSProp(grid)
    ptrs = []
    for _ in range(3):
        # The same gradient from a copy through autograd: reuse must not leak values.
        fresh = copy.deepcopy(grid)
        render_rays(fresh, origins, dirs)["rgb"].sum().backward()
        render_rays(grid, origins, dirs, grads=opt.grads)["rgb"].sum().backward()
        ptrs.append(opt.grads.sh.data_ptr())
        assert torch.equal(opt.grads.sh, fresh.sh.grad)
        assert torch.equal(opt.grads.density, fresh.density.grad)
        opt.step(0.1, 0.01)
        assert not opt.grads.sh.any() and not opt.grads.touched.any()
    assert ptrs[0] == ptrs[1] == ptrs[2]


def test_clearing_the_touched_rows_equals_clearing_everything():
    """The step clears only what it updated (the kernel zeroes the gradients it consumes and
    unmarks their voxels); with TV and sparsity adding gradients too, three steps give
    bit-identical grids to steps followed by zeroing the whole buffers."""
    grids = [random_grid(seed=8, dtype=torch.float32) for _ in range(2)]
    origins, dirs = rays_at_box(grids[0], 32, seed=8, spread=0.2)
    opts = [SparseRMSProp(g) for g in grids]
    for step in range(3):
        for grid, opt in zip(grids, opts):
            render_rays(grid, origins, dirs, grads=opt.grads)["rgb"].sum().backward()
            add_tv_grad(grid, opt.grads, (step * 40, step * 40 + 200), 1e-2, 1e-2)
            assert 0 < opt.grads.touched.sum() < grid.n_voxels
            opt.step(1.0, 0.1, sparsity=1e-3)
            assert not opt.grads.density.any() and not opt.grads.sh.any() and not opt.grads.touched.any()
        opts[1].grads.clear()
    assert torch.equal(grids[0].density, grids[1].density) and torch.equal(grids[0].sh, grids[1].sh)
