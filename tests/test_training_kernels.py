"""Per-voxel training kernels (RMSProp, TV, max weight) against their torch references."""

import torch

from gridutil import random_grid, rays_at_box
from plenox.backend import CpuBackend
from plenox.training.optimizer import SparseRMSProp, rmsprop_reference
from plenox.models.grid_oracle import max_weights_reference
from plenox.training.regularizers import add_tv_grad, tv_loss_reference, voxels_of_cells
from plenox.models.grid_autograd import GridGrads, RenderOptions, max_weights, render_rays


def test_rmsprop_kernel_matches_reference():
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(50, 7, generator=gen, dtype=torch.float64)
    grad = torch.randn(50, 7, generator=gen, dtype=torch.float64)
    avg = torch.rand(50, 7, generator=gen, dtype=torch.float64)
    avg[::3] = 0.0  # first visits
    rows = torch.tensor([0, 3, 4, 10, 11, 30, 49])
    expected = [t.clone() for t in (data, grad, avg)]
    rmsprop_reference(*expected, rows, 0.3, 0.95, 1e-8)
    CpuBackend().rmsprop_update(data, grad, avg, rows, 0.3, 0.95, 1e-8)
    assert torch.allclose(data, expected[0], rtol=1e-12, atol=1e-14)
    assert torch.allclose(avg, expected[2], rtol=1e-12, atol=1e-14)
    assert torch.equal(grad, expected[1]) and not grad[rows].any()   # consumed: zeroed for the next step
    untouched = torch.ones(50, dtype=torch.bool)
    untouched[rows] = False
    assert torch.equal(data[untouched], expected[0][untouched])


def test_tv_gradient_matches_autograd():
    grid = random_grid(resolution=(7, 6, 5), basis_dim=4, fill=0.7, seed=1)
    for cells in [(0, 210), (37, 95), (150, 210)]:  # whole grid, a middle slice, the far end
        grads = GridGrads(grid.density.detach(), grid.sh.detach())
        add_tv_grad(grid, grads, cells, weight_density=0.7, weight_sh=0.2)
        for param, grad, weight in ((grid.density, grads.density, 0.7), (grid.sh, grads.sh, 0.2)):
            mean_tv = tv_loss_reference(grid, cells, param) / (cells[1] - cells[0])
            expected, = torch.autograd.grad(weight * mean_tv, param)
            assert torch.allclose(grad, expected, rtol=1e-9, atol=1e-12), cells
        touched = grads.touched
        assert torch.equal(touched, voxels_of_cells(grid, cells))
        assert (touched | (grads.density == 0)).all()


def test_max_weights_matches_reference():
    grid = random_grid(seed=2, density_range=(-1.0, 10.0))
    origins, dirs = rays_at_box(grid, 80, seed=2)
    out = max_weights(grid, origins, dirs, RenderOptions(), chunk=30)
    expected = max_weights_reference(grid, origins, dirs)
    assert out.max() > 0.05
    assert torch.allclose(out, expected, rtol=1e-9, atol=1e-12)


def test_sparse_rmsprop_updates_only_touched_voxels():
    grid = random_grid(seed=3, dtype=torch.float32)
    origins, dirs = rays_at_box(grid, 4, seed=3, spread=0.05)
    opt = SparseRMSProp(grid)
    before_d, before_sh = grid.density.detach().clone(), grid.sh.detach().clone()
    render_rays(grid, origins, dirs, grads=opt.grads)["rgb"].sum().backward()
    touched = opt.grads.touched.clone()
    assert 0 < touched.sum() < grid.n_voxels
    n = opt.step(lr_density=1.0, lr_sh=0.1)
    assert n == touched.sum()
    assert torch.equal(grid.density.detach()[~touched], before_d[~touched])
    assert torch.equal(grid.sh.detach()[~touched], before_sh[~touched])
    assert not torch.equal(grid.density.detach()[touched], before_d[touched])
    assert not opt.grads.touched.any() and not opt.grads.density.any() and not opt.grads.sh.any()
