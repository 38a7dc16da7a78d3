"""Training throughput of a Plenoxels grid at a fixed grid size, with where a step's time goes.

Loads a run folder's checkpoint (grid, optimiser state, step) into a GridTrainer with the run's
config and scene, compiles, then times ``--steps`` training steps (wall clock, rays/s), and
profiles ``--profile-steps`` more with cProfile to split a step into its parts. Nothing is
written to the run folder (the trainer's loop, which writes, is not used). Run it with each code
version (e.g. a git worktree of the older commit with its own install) on the same run to get
a ratio, back to back on a quiet machine.

    python benchmarks/train_step.py runs/fern4 --steps 60
"""

import argparse
import cProfile
import json
import pstats
import time

import torch

from plenox.runs.folder import RunDir
from plenox.runs.loading import run_config, run_scene
from plenox.training.grid_trainer import GridTrainer

# Functions whose cumulative time is reported (substring of "file:line(name)" in cProfile's stats).
PARTS = ("fit_rays", "render_rays", "backward", "add_tv_grad", "add_cauchy_sparsity_grad", "step", "clear",
         "active_occupancy", "voxels_of_cells", "upsample")   # old and new names, so old commits run too


def time_steps(trainer: GridTrainer, steps: int) -> float:
    """Seconds for ``steps`` training steps."""
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return time.perf_counter() - start


def profile_parts(trainer: GridTrainer, steps: int) -> dict[str, float]:
    """Milliseconds per step spent in each of PARTS (cumulative, so parts may nest)."""
    profiler = cProfile.Profile()
    profiler.enable()
    time_steps(trainer, steps)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    parts = {}
    for (file, line, name), (_, _, _, cumulative, _) in stats.items():
        if "plenox" not in file and name != "backward":
            continue
        if name in PARTS:
            parts[name] = parts.get(name, 0.0) + 1000.0 * cumulative / steps
    return parts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run folder of a Plenoxels fit (its checkpoint is read, not written)")
    parser.add_argument("--steps", type=int, default=60, help="timed steps")
    parser.add_argument("--profile-steps", type=int, default=20, help="profiled steps (0: no profile)")
    args = parser.parse_args()

    run = RunDir(args.run).require()
    config, scene = run_config(run), run_scene(run)
    trainer = GridTrainer(scene, config, run, torch.device("cpu"))
    trainer.resume()
    trainer.warm_up()
    time_steps(trainer, 3)   # caches (occupancy, part buffers) and first-touch page faults
    seconds = time_steps(trainer, args.steps)
    rays_per_s = args.steps * config.batch_size / seconds
    result = {"run": args.run, "voxels": trainer.grid.n_voxels, "resolution": list(trainer.grid.resolution),
              "batch_size": config.batch_size, "steps": args.steps, "ms_per_step": 1000.0 * seconds / args.steps,
              "rays_per_s": rays_per_s, "threads": torch.get_num_threads()}
    print(f"{trainer.grid.n_voxels:,} voxels at {'x'.join(map(str, trainer.grid.resolution))}: "
          f"{result['ms_per_step']:.1f} ms/step, {rays_per_s:,.0f} rays/s ({args.steps} steps of {config.batch_size})")
    if args.profile_steps:
        result["parts_ms"] = profile_parts(trainer, args.profile_steps)
        for name, ms in sorted(result["parts_ms"].items(), key=lambda kv: -kv[1]):
            print(f"  {name:26s} {ms:8.1f} ms/step")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
