"""Per-voxel training kernels (RMSProp, TV, max weight) against their torch references."""

import torch

from gridutil import random_grid, rays_at_box
from plenox.backend import CpuBackend
from plenox.training.optimizer import SparseRMSProp, rmsprop_reference
from plenox.models.grid_oracle import max_weights_reference
from plenox.training.regularizers import add_tv_grad, tv_loss_reference, voxels_of_cells
from plenox.models.grid_autograd import GridGrads, RenderOptions, max_weights, render_rays


def test_rmsprop_kernel_matches_reference():
    """The fused step (Cauchy sparsity gradient, then RMSProp on density and SH) on the marked
    voxels against autograd's sparsity gradient and the plain-torch RMSProp."""
    gen = torch.Generator().manual_seed(0)
    density, grad_density, avg_density = (torch.randn(50, 1, generator=gen, dtype=torch.float64) for _ in range(3))
    sh, grad_sh, avg_sh = (torch.randn(50, 7, generator=gen, dtype=torch.float64) for _ in range(3))
    avg_density.abs_()
    avg_sh.abs_()
    avg_density[::3] = 0.0  # first visits
    avg_sh[::3] = 0.0
    rows = torch.tensor([0, 3, 4, 10, 11, 30, 49])
    touched = torch.zeros(50, dtype=torch.uint8)
    touched[rows] = 1
    sparsity = 0.05
    sigma = density[:, 0].clone().requires_grad_(True)
    (cauchy,) = torch.autograd.grad(sparsity * torch.log(1 + 2 * sigma ** 2).sum(), sigma)
    expected = [t.clone() for t in (density, grad_density, avg_density, sh, grad_sh, avg_sh)]
    expected[1][rows, 0] += cauchy[rows]
    rmsprop_reference(*expected[:3], rows, 0.3, 0.95, 1e-8)
    rmsprop_reference(*expected[3:], rows, 0.02, 0.95, 1e-8)
    CpuBackend().rmsprop_step(density, grad_density, avg_density, sh, grad_sh, avg_sh, touched, 0.3, 0.02,
                              0.95, 1e-8, sparsity)
    for got, want in zip((density, grad_density, avg_density, sh, grad_sh, avg_sh), expected):
        assert torch.allclose(got, want, rtol=1e-12, atol=1e-14)
    assert not grad_density[rows].any() and not grad_sh[rows].any()   # consumed: zeroed for the next step
    assert not touched.any()
    untouched = torch.ones(50, dtype=torch.bool)
    untouched[rows] = False
    assert torch.equal(density[untouched], expected[0][untouched]) and torch.equal(sh[untouched], expected[3][untouched])


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
    opt.step(lr_density=1.0, lr_sh=0.1)
    assert torch.equal(grid.density.detach()[~touched], before_d[~touched])
    assert torch.equal(grid.sh.detach()[~touched], before_sh[~touched])
    assert not torch.equal(grid.density.detach()[touched], before_d[touched])
    assert not opt.grads.touched.any() and not opt.grads.density.any() and not opt.grads.sh.any()
