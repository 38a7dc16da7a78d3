"""Bad input to the renderer gets a clear ValueError before any kernel runs."""

import pytest
import torch

from gridutil import random_grid, rays_at_box
from plenox.models.grid_autograd import RenderOptions, render_rays


@pytest.fixture(scope="module")
def grid():
    return random_grid(dtype=torch.float32, seed=0)


@pytest.fixture(scope="module")
def rays(grid):
    return rays_at_box(grid, 4)


def test_wrong_dtype(grid, rays):
    o, d = rays
    with pytest.raises(ValueError, match="float32"):
        render_rays(grid, o.double(), d.double())


def test_wrong_shape(grid, rays):
    o, d = rays
    with pytest.raises(ValueError, match=r"\(M, 3\)"):
        render_rays(grid, o[:, :2].contiguous(), d)
    with pytest.raises(ValueError, match="differ in length"):
        render_rays(grid, o, d[:3])


def test_non_contiguous(grid, rays):
    o, d = rays
    with pytest.raises(ValueError, match="contiguous"):
        render_rays(grid, torch.cat([o, o], dim=1)[:, ::2], d)


def test_nan_in_rays(grid, rays):
    o, d = rays
    bad = d.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        render_rays(grid, o, bad)
    with pytest.raises(ValueError, match="zero-length"):
        render_rays(grid, o, torch.zeros_like(d))


def test_not_a_tensor(grid, rays):
    with pytest.raises(ValueError, match="torch.Tensor"):
        render_rays(grid, rays[0].numpy(), rays[1])


def test_bad_options():
    with pytest.raises(ValueError, match="step"):
        RenderOptions(step=0)
    with pytest.raises(ValueError, match="background"):
        RenderOptions(background=(1.0, float("nan"), 0.0))


def test_mixed_grid_dtypes(grid, rays):
    bad = random_grid(dtype=torch.float32, seed=1)
    bad.sh.data = bad.sh.data.double()
    with pytest.raises(ValueError, match="share float32 or float64"):
        render_rays(bad, *rays)


def test_empty_batch(grid):
    out = render_rays(grid, torch.zeros(0, 3), torch.zeros(0, 3))
    assert out["rgb"].shape == (0, 3)
