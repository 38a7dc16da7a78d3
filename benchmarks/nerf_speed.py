"""Time NerfModel.train_step at the reference configuration (8 x 256, 64 + 128 samples, 1024 rays).

Rays are random (origins on a sphere of radius 4 looking inward, random colours), so the
figure measures compute only. Prints one line per timed step, a summary, and as its last
line a JSON object: {"iters_per_s", "rays_per_s", "sec_per_iter", ...}.

    python benchmarks/nerf_speed.py [--steps 3] [--warmup 1] [--chunk 128]

(with plenox installed, or PYTHONPATH=. from the repository root).
"""

import argparse
import json
import os
import platform
import statistics
import time

import torch

from plenox.models.nerf import NerfConfig, NerfModel, configure_threads


def random_batch(n_rays: int, generator: torch.Generator):
    """(origins, dirs, colours), each (n_rays, 3): rays from radius 4 through the origin's neighbourhood."""
    dirs = torch.nn.functional.normalize(torch.randn(n_rays, 3, generator=generator), dim=-1)
    origins = -4.0 * dirs + 0.5 * torch.randn(n_rays, 3, generator=generator)
    return origins, dirs, torch.rand(n_rays, 3, generator=generator)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--chunk", type=int, default=NerfConfig.chunk, help="rays per forward/backward pass")
    args = parser.parse_args()

    threads = configure_threads()
    config = NerfConfig(chunk=args.chunk)
    model = NerfModel(config)
    generator = torch.Generator().manual_seed(0)
    batches = [random_batch(config.batch_rays, generator) for _ in range(args.warmup + args.steps)]
    for batch in batches[:args.warmup]:
        model.train_step(*batch)
    times = []
    for batch in batches[args.warmup:]:
        start = time.perf_counter()
        model.train_step(*batch)
        times.append(time.perf_counter() - start)
        print(f"step {model.step}: {times[-1]:.2f} s", flush=True)

    sec_per_iter = statistics.median(times)
    result = {
        "benchmark": "nerf_train_step",
        "iters_per_s": 1.0 / sec_per_iter,
        "rays_per_s": config.batch_rays / sec_per_iter,
        "sec_per_iter": sec_per_iter,
        # On shared cores the fastest step is the least disturbed one.
        "best_iters_per_s": 1.0 / min(times),
        "sec_per_iter_all": times,
        "batch_rays": config.batch_rays,
        "samples_per_ray": config.n_coarse + config.n_fine,
        "chunk": config.chunk,
        "parameters": model.num_parameters(),
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    print(f"{result['iters_per_s']:.4f} iterations/s, {result['rays_per_s']:.1f} rays/s "
          f"(median of {len(times)} steps, {threads} threads)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
