"""The CUDA backend on a real GPU equals the CPU backend; device selection without one.

The GPU tests skip when torch or Numba sees no CUDA GPU (``numba.cuda.is_available()``).
"""

import numpy as np
import pytest
import torch
from numba import cuda

from cuda_cases import DTYPES, RAY_CASES, assert_outputs_match, run_optimiser_case, run_ray_case
from gridutil import random_grid, rays_at_box
from plenox.backend import backend_for, resolve_device
from plenox.models.grid_autograd import GridGrads, RenderOptions, render_rays
from plenox.errors import DeviceError

GPU = torch.cuda.is_available() and cuda.is_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="no CUDA GPU (torch and numba.cuda must both see one)")
# The cases are small on purpose; Numba warns that a few blocks leave the GPU idle.
pytestmark = pytest.mark.filterwarnings("ignore:.*GPU under-utilization")


@pytest.mark.skipif(GPU, reason="a GPU is present")
def test_cuda_request_without_gpu_is_a_clear_error():
    with pytest.raises(DeviceError, match="CUDA was requested"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


@needs_gpu
def test_resolve_device_picks_the_gpu():
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cuda").type == "cuda"
    assert backend_for(torch.zeros(1, device="cuda")).name == "cuda"


@needs_gpu
@pytest.mark.parametrize("case", RAY_CASES)
def test_rays_match_cpu(case):
    assert_outputs_match(run_ray_case(case, "cuda"), run_ray_case(case, "cpu"), case)


@needs_gpu
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_optimiser_step_matches_cpu(dtype):
    assert_outputs_match(run_optimiser_case(dtype, "cuda"), run_optimiser_case(dtype, "cpu"), dtype)


@needs_gpu
def test_grid_moves_to_the_gpu_whole():
    grid = random_grid(dtype=torch.float32).to("cuda")
    for name in ("links", "density", "sh", "center", "radius"):
        assert getattr(grid, name).is_cuda, name
    assert grid.occupancy().is_cuda
    assert grid.to("cpu").occupancy().device.type == "cpu"


@needs_gpu
def test_prune_and_resample_stay_on_the_gpu():
    on_cpu, on_gpu = random_grid(dtype=torch.float64), random_grid(dtype=torch.float64).to("cuda")
    keep = np.ones(on_cpu.resolution, dtype=bool)
    keep[::2] = False
    for make in (lambda g: g.prune(keep, dilate=1), lambda g: g.resample((7, 9, 5))):
        want, got = make(on_cpu), make(on_gpu)
        assert got.density.is_cuda and got.links.is_cuda
        assert torch.equal(got.links.cpu(), want.links)
        assert torch.allclose(got.sh.detach().cpu(), want.sh.detach(), rtol=1e-12, atol=1e-12)


def _fit(device, steps=5):
    """A few RMSProp steps of photometric loss towards grey, as the trainer would take them."""
    grid = random_grid(seed=12, dtype=torch.float64)
    origins, dirs = (t.to(device) for t in rays_at_box(grid, 256, seed=12))
    grid = grid.to(device)
    backend = backend_for(grid.density)
    avg = {name: torch.zeros_like(getattr(grid, name)) for name in ("density", "sh")}
    for _ in range(steps):
        grads = GridGrads(grid.density.detach(), grid.sh.detach())
        rgb = render_rays(grid, origins, dirs, grads=grads)["rgb"]
        ((rgb - 0.5) ** 2).mean().backward()
        with torch.no_grad():
            backend.rmsprop_step(grid.density.data[:, None], grads.density[:, None], avg["density"][:, None],
                                 grid.sh.data, grads.sh, avg["sh"], grads.touched_bytes(), 0.1, 0.01, 0.95, 1e-8,
                                 1e-3)
    return {"density": grid.density.detach().cpu().numpy(), "sh": grid.sh.detach().cpu().numpy()}


@needs_gpu
def test_training_steps_match_cpu():
    # RMSProp divides by the gradient's running RMS, which magnifies summation-order noise
    # in tiny gradients: looser than the one-pass cases.
    assert_outputs_match(_fit("cuda"), _fit("cpu"), "fit", rtol={np.dtype(np.float64): 1e-9})


@needs_gpu
def test_kernels_follow_torchs_current_stream():
    grid = random_grid(dtype=torch.float32)
    origins, dirs = rays_at_box(grid, 4096, seed=13)
    expected = render_rays(grid, origins, dirs)["rgb"]
    grid = grid.to("cuda")
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        # Inputs made on the side stream: a kernel on another stream could read them unfinished.
        o, d = origins.to("cuda", non_blocking=True), dirs.to("cuda", non_blocking=True)
        rgb = render_rays(grid, o, d, RenderOptions())["rgb"] * 1.0
    side.synchronize()
    assert torch.allclose(rgb.cpu(), expected, rtol=1e-5, atol=1e-5)
