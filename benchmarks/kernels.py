"""Kernel throughput: Numba renderer vs the plain-torch reference on the same grid and rays.

A 128^3 grid (SH degree 2, float32) holding a solid ball of random density, the way a
fitted object leaves most of the box empty, and rays from a ring of cameras aimed at it.
"Samples" are the sample positions inside the grid box along every ray (what a dense
marcher evaluates); both renderers are charged the same count, so the ratio of samples/s
is the ratio of times. ``--device cuda`` runs both on the GPU (the reference as torch CUDA
ops), timing with a device synchronisation. The last line printed is one JSON object.

    python benchmarks/kernels.py [--device cpu|cuda|auto] [--resolution 128] [--rays 4096] [--repeats 5]
"""

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from plenox.backend import resolve_device
from plenox.models.grid import SparseGrid
from plenox.models.grid_oracle import ray_samples, render_reference
from plenox.models.grid_autograd import RenderOptions, render_rays


def make_scene(resolution: int, n_rays: int, seed: int = 0):
    """Grid with a ball of radius 0.6 (box radius 1) and rays from distance 3 aimed at it."""
    rng = np.random.default_rng(seed)
    axes = [(np.arange(resolution) + 0.5) / resolution * 2 - 1] * 3
    gx, gy, gz = np.meshgrid(*axes, indexing="ij")
    ball = gx ** 2 + gy ** 2 + gz ** 2 <= 0.6 ** 2
    grid = SparseGrid.create(resolution, radius=1.0, basis_dim=9, mask=ball)
    with torch.no_grad():
        grid.density.copy_(torch.from_numpy(rng.uniform(-2.0, 8.0, grid.n_voxels).astype(np.float32)))
        grid.sh.copy_(torch.from_numpy(rng.normal(0, 0.3, grid.sh.shape).astype(np.float32)))
    angles = rng.uniform(0, 2 * np.pi, n_rays)
    heights = rng.uniform(-1.0, 1.0, n_rays)
    origins = np.stack([3 * np.cos(angles), 3 * np.sin(angles), heights], axis=1)
    targets = rng.uniform(-0.7, 0.7, (n_rays, 3))
    o = torch.from_numpy(origins.astype(np.float32))
    d = torch.from_numpy((targets - origins).astype(np.float32))
    return grid, o, d


def count_samples(grid, origins, dirs, step) -> int:
    return int(ray_samples(grid, origins, dirs, step)[2].sum())


def time_best(fns, repeats: int, device: torch.device) -> list[float]:
    """Best wall time of each of ``fns`` over ``repeats`` rounds after a warm-up (which compiles
    the kernels). A round calls every function once, so a slow spell of a shared host slows
    both sides of a ratio alike; on a GPU each call is timed until the device has finished."""
    def run(fn):
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for fn in fns:
        run(fn)
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            run(fn)
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def forward_fn(render, grid, o, d):
    def run():
        with torch.no_grad():
            render(grid, o, d)
    return run


def fwd_bwd_fn(render, grid, o, d, grad):
    def run():
        grid.density.grad = None
        grid.sh.grad = None
        out = render(grid, o, d)
        (out["rgb"] * grad).sum().backward()
    return run


def kernel_render(grid, o, d):
    return render_rays(grid, o, d, RenderOptions())


def reference_render(grid, o, d):
    return render_reference(grid, o, d)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--rays", type=int, default=4096)
    parser.add_argument("--reference-rays", type=int, default=512,
                        help="rays for the (slow, memory-hungry) reference; rates are per sample")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args()

    device = resolve_device(args.device)
    grid, o, d = (x.to(device) for x in make_scene(args.resolution, args.rays))
    grad = torch.randn(args.rays, 3).to(device)
    ref_o, ref_d, ref_grad = o[:args.reference_rays], d[:args.reference_rays], grad[:args.reference_rays]
    samples = count_samples(grid, o, d, 0.5)
    ref_samples = count_samples(grid, ref_o, ref_d, 0.5)

    results = {}
    for name, fn_k, fn_r in (
        ("fwd", forward_fn(kernel_render, grid, o, d), forward_fn(reference_render, grid, ref_o, ref_d)),
        ("fwd_bwd", fwd_bwd_fn(kernel_render, grid, o, d, grad),
         fwd_bwd_fn(reference_render, grid, ref_o, ref_d, ref_grad)),
    ):
        t_kernel, t_ref = time_best((fn_k, fn_r), args.repeats, device)
        results[f"samples_per_s_{name}"] = samples / t_kernel
        results[f"rays_per_s_{name}"] = args.rays / t_kernel
        results[f"reference_samples_per_s_{name}"] = ref_samples / t_ref
        results[f"reference_rays_per_s_{name}"] = args.reference_rays / t_ref
        results[f"ratio_{name}"] = results[f"samples_per_s_{name}"] / results[f"reference_samples_per_s_{name}"]
        print(f"{name:8s} numba {results[f'samples_per_s_{name}'] / 1e6:8.2f} M samples/s "
              f"{results[f'rays_per_s_{name}']:10.0f} rays/s | reference "
              f"{results[f'reference_samples_per_s_{name}'] / 1e6:8.3f} M samples/s "
              f"{results[f'reference_rays_per_s_{name}']:8.0f} rays/s | ratio {results[f'ratio_{name}']:6.1f}x")
    results.update(resolution=args.resolution, voxels=grid.n_voxels, rays=args.rays,
                   samples_per_ray=samples / args.rays, threads=torch.get_num_threads(),
                   cpus=os.cpu_count(), machine=platform.processor() or platform.machine(),
                   device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
