"""Gradient buffers the optimiser hands back and the next backward pass reuses."""

import copy

import torch

from plenox.grad_buffers import GradBuffers
from plenox.optim import SparseRMSProp
from plenox.render import render_rays
from gridutil import random_grid, rays_at_box


def _param_with_grad(values):
    param = torch.nn.Parameter(torch.zeros(len(values)))
    (param * torch.tensor(values)).sum().backward()
    return param


def test_released_gradient_comes_back_zeroed_in_place():
    buffers = GradBuffers()
    param = _param_with_grad([1.0, 2.0, 3.0])
    ptr = param.grad.data_ptr()
    buffers.release("p", param)
    assert param.grad is None
    again = buffers.zeros_like("p", param)
    assert again.data_ptr() == ptr
    assert torch.equal(again, torch.zeros(3))
    # Taken once: the next request allocates.
    assert buffers.zeros_like("p", param).data_ptr() != ptr


def test_gradient_still_referred_to_is_not_reused():
    buffers = GradBuffers()
    param = _param_with_grad([1.0, 2.0, 3.0])
    kept = param.grad
    buffers.release("p", param)
    fresh = buffers.zeros_like("p", param)
    assert fresh.data_ptr() != kept.data_ptr()
    assert torch.equal(kept, torch.tensor([1.0, 2.0, 3.0]))
    view_holder = _param_with_grad([4.0, 5.0])
    view = view_holder.grad[1:]
    buffers.release("v", view_holder)
    assert buffers.zeros_like("v", view_holder).data_ptr() != view.data_ptr()
    assert torch.equal(view, torch.tensor([5.0]))


def test_spare_of_another_shape_is_not_used():
    buffers = GradBuffers()
    buffers.release("p", _param_with_grad([1.0, 2.0, 3.0]))
    other = torch.nn.Parameter(torch.zeros(4))
    out = buffers.zeros_like("p", other)
    assert out.shape == (4,) and torch.equal(out, torch.zeros(4))


def test_training_steps_reuse_the_grid_gradients():
    grid = random_grid(seed=5, dtype=torch.float32)
    origins, dirs = rays_at_box(grid, 16, seed=5)
    opt = SparseRMSProp(grid)
    ptrs = []
    for _ in range(3):
        # The same gradient from a copy whose buffers start empty: reuse must not leak values.
        fresh = copy.deepcopy(grid)
        fresh.grad_buffers = GradBuffers()
        render_rays(fresh, origins, dirs)["rgb"].sum().backward()
        render_rays(grid, origins, dirs)["rgb"].sum().backward()
        ptrs.append(grid.sh.grad.data_ptr())
        assert torch.equal(grid.sh.grad, fresh.sh.grad)
        assert torch.equal(grid.density.grad, fresh.density.grad)
        opt.step(0.1, 0.01)
    assert ptrs[1] == ptrs[2]
