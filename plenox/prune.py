"""Prune a fitted grid: drop the voxels no training ray sees, or the nearly empty ones.

``prune_grid`` applies a rule to a grid in memory; ``prune_run`` is the ``plenox prune``
command: it prunes a run folder's grid, writes the result as a new run folder (or in place
when asked) and measures the voxels, the bytes and the test PSNR before and after.

Rules (svox2's, as the fit uses them at each upsample):
  weight   keep voxels whose maximum rendered weight T_i * alpha_i over the training rays
           is >= W (an absolute weight in [0, 1]; default 0.256 / Rz, svox2's upsample rule)
  density  keep voxels whose raw density is >= S
then grow the kept set by ``dilate`` steps of the 26-neighbourhood.
"""

import math
import shutil
import time
from pathlib import Path

import torch

from plenox.fit import render_options, strided_rays
from plenox.grid import SparseGrid
from plenox.render import RenderOptions, max_weights
from plenox.runs import RunDir, RunError, atomic_write_json
from plenox.workflow import evaluate_grid, load_run

DEFAULT_WEIGHT_THRESH_RZ = 0.256   # svox2: kept if max weight >= 0.256 / Rz
DEFAULT_DILATE = 1


class PruneError(ValueError):
    """A pruning option is out of range (the message names it)."""


def check_prune_options(weight_thresh: float | None, density_thresh: float | None, dilate: int,
                        ray_stride: int) -> None:
    """Raise PruneError unless the options make sense together."""
    if weight_thresh is not None and density_thresh is not None:
        raise PruneError("give a weight threshold or a density threshold, not both")
    if weight_thresh is not None and not 0.0 < weight_thresh <= 1.0:
        raise PruneError(f"weight threshold must be in (0, 1] (a rendered weight), got {weight_thresh}")
    if density_thresh is not None and not math.isfinite(density_thresh):
        raise PruneError(f"density threshold must be a finite number, got {density_thresh}")
    if dilate < 0:
        raise PruneError(f"dilate must be >= 0, got {dilate}")
    if ray_stride < 1:
        raise PruneError(f"ray stride must be >= 1, got {ray_stride}")


def default_weight_thresh(grid: SparseGrid) -> float:
    """svox2's upsample threshold for the grid's z resolution: 0.256 / Rz."""
    return DEFAULT_WEIGHT_THRESH_RZ / grid.resolution[2]


@torch.no_grad()
def prune_grid(grid: SparseGrid, scene, options: RenderOptions, weight_thresh: float | None = None,
               density_thresh: float | None = None, dilate: int = DEFAULT_DILATE,
               ray_stride: int = 1) -> tuple[SparseGrid, dict]:
    """Prune ``grid`` by max weight over ``scene``'s training rays (every ``ray_stride``-th
    pixel per axis) or, when ``density_thresh`` is given, by density.

    Returns the new grid and the rule applied: {"rule", "threshold", "dilate", "ray_stride"}.
    """
    check_prune_options(weight_thresh, density_thresh, dilate, ray_stride)
    if density_thresh is not None:
        keep = grid.density >= density_thresh
        rule = {"rule": "density", "threshold": density_thresh}
    else:
        thresh = default_weight_thresh(grid) if weight_thresh is None else weight_thresh
        origins, dirs = strided_rays(scene, ray_stride)
        device = grid.density.device
        keep = max_weights(grid, origins.to(device), dirs.to(device), options) >= thresh
        rule = {"rule": "weight", "threshold": thresh, "ray_stride": ray_stride}
    return grid.prune(grid.voxel_mask(keep), dilate), {**rule, "dilate": dilate}


def grid_size(grid: SparseGrid, grid_file: Path) -> dict:
    """Voxel count and bytes (in memory; on disk as ``grid_file``) of a grid."""
    return {"voxels": grid.n_voxels, "memory_bytes": grid.nbytes, "file_bytes": grid_file.stat().st_size}


def output_run(source: RunDir, out: str | None, in_place: bool, force: bool) -> RunDir:
    """The run folder the pruned grid goes to: the source itself, ``out``, or DIR_pruned."""
    if in_place:
        if out is not None:
            raise PruneError("--out and --in-place exclude each other")
        return source
    dest = RunDir(out if out is not None else f"{source.path}_pruned")
    if dest.path.resolve() == source.path.resolve():
        raise RunError(f"{dest.path}: is the run being pruned (use --in-place to replace its grid)")
    if dest.exists() and not force:
        raise RunError(f"{dest.path}: already holds a run (choose another --out or use --force)")
    return dest


def prune_run(path: str, out: str | None = None, weight_thresh: float | None = None,
              density_thresh: float | None = None, dilate: int | None = None, ray_stride: int = 1,
              views: int | None = None, in_place: bool = False, force: bool = False) -> dict:
    """Prune the grid of run ``path`` into a new run folder (``out``, default ``path``_pruned)
    or, with ``in_place``, into the run itself (its resume state is then dropped: the
    optimiser state no longer matches the voxels).

    The destination gets config.json, scene.json and log.jsonl of the source, the pruned
    grid.npz, eval/ (the pruned grid's metrics and images), eval_unpruned/metrics.json (the
    source grid on the same views) and prune.json (the report returned here): rule,
    threshold, voxels and bytes before and after, PSNR/SSIM before and after, seconds.
    ``views``: test views to evaluate (default: the fit's ``eval_views``; 0 = all).
    None for ``dilate`` means DEFAULT_DILATE.
    """
    dilate = DEFAULT_DILATE if dilate is None else dilate
    check_prune_options(weight_thresh, density_thresh, dilate, ray_stride)
    if views is not None and views < 0:
        raise PruneError(f"views must be >= 0, got {views}")
    dest = output_run(RunDir(path).require(), out, in_place, force)
    source, cfg, scene, grid = load_run(path)
    before_size = grid_size(grid, source.grid_file)
    start = time.perf_counter()
    pruned, rule = prune_grid(grid, scene, render_options(scene, cfg), weight_thresh, density_thresh,
                              dilate, ray_stride)
    seconds = time.perf_counter() - start
    if not in_place:
        dest.create(source.config(), source.scene_info(), force=force)
        if source.log_file.exists():
            shutil.copyfile(source.log_file, dest.log_file)
    log = source.read_log()
    train_seconds = log[-1]["time"] if log else 0.0
    count = cfg.eval_views if views is None else views
    before = evaluate_grid(dest, scene, cfg, grid, cfg.eval_split, count, train_seconds,
                           out_dir=dest.path / "eval_unpruned", save_images=False)
    dest.save_grid(pruned, exact=True)
    dest.state_file.unlink(missing_ok=True)
    after = evaluate_grid(dest, scene, cfg, pruned, cfg.eval_split, count, train_seconds)
    report = {"source": str(source.path), "out": str(dest.path), **rule, "prune_seconds": seconds,
              "split": cfg.eval_split, "views": after["protocol"]["views"],
              "before": {**before_size, "psnr": before["results"]["psnr"], "ssim": before["results"]["ssim"]},
              "after": {**grid_size(pruned, dest.grid_file), "psnr": after["results"]["psnr"],
                        "ssim": after["results"]["ssim"]}}
    atomic_write_json(dest.prune_file, report)
    return report
