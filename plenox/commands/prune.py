"""``plenox prune``: drop the voxels no training ray sees, or the nearly empty ones.

``prune_run`` prunes a run folder's grid by the rule the fit uses at every upsample
(``plenox.training.pruning``: the weight threshold is per-Rz there and here), writes the
result as a new run folder (or in place when asked) and measures the voxels, the bytes and
the test PSNR before and after.
"""

import shutil
import time
from pathlib import Path

from plenox.errors import PruneError, RunError
from plenox.io.atomic import atomic_write_json
from plenox.models.grid import SparseGrid
from plenox.models.renderer import GridRenderer
from plenox.runs.evaluation import evaluate_model, training_seconds
from plenox.runs.folder import RunDir
from plenox.runs.loading import load_grid_run
from plenox.training.pruning import DEFAULT_WEIGHT_THRESH, PruneRule, prune_grid

DEFAULT_DILATE = 1


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
              views: int | None = None, in_place: bool = False, force: bool = False, device: str = "auto") -> dict:
    """Prune the grid of run ``path`` into a new run folder (``out``, default ``path``_pruned)
    or, with ``in_place``, into the run itself (its resume state is then dropped: the
    optimiser state no longer matches the voxels).

    weight_thresh: keep voxels whose max rendered weight is >= weight_thresh / Rz (default
    0.256, svox2's and the fit's); density_thresh: keep voxels of raw density >= it instead.
    The destination gets config.json, scene.json and log.jsonl of the source, the pruned
    grid.npz, eval/ (the pruned grid's metrics and images), eval_unpruned/metrics.json (the
    source grid on the same views) and prune.json (the report returned here): rule,
    threshold, voxels and bytes before and after, PSNR/SSIM before and after, seconds.
    ``views``: test views to evaluate (default: the fit's ``eval_views``; 0 = all).
    None for ``dilate`` means DEFAULT_DILATE.
    """
    if weight_thresh is not None and density_thresh is not None:
        raise PruneError("give a weight threshold or a density threshold, not both")
    if views is not None and views < 0:
        raise PruneError(f"views must be >= 0, got {views}")
    rule = PruneRule("density" if density_thresh is not None else "weight",
                     DEFAULT_WEIGHT_THRESH if weight_thresh is None else weight_thresh,
                     0.0 if density_thresh is None else density_thresh,
                     DEFAULT_DILATE if dilate is None else dilate, ray_stride)
    dest = output_run(RunDir(path).require(), out, in_place, force)
    source, cfg, scene, grid = load_grid_run(path, device)
    before_size = grid_size(grid, source.grid_file)
    start = time.perf_counter()
    options = cfg.render_options(scene, "view")
    pruned = prune_grid(grid, scene, cfg.render_options(scene, "train"), rule)
    seconds = time.perf_counter() - start
    if not in_place:
        dest.create(source.config(), source.scene_info(), force=force)
        if source.log_file.exists():
            shutil.copyfile(source.log_file, dest.log_file)
    train_seconds = training_seconds(source)
    count = cfg.eval_views if views is None else views
    before = evaluate_model(dest, scene, GridRenderer(grid, options), cfg.eval_split, count, train_seconds,
                            out_dir=dest.path / "eval_unpruned", save_images=False)
    dest.save_grid(pruned, exact=True)
    dest.state_file.unlink(missing_ok=True)
    after = evaluate_model(dest, scene, GridRenderer(pruned, options), cfg.eval_split, count, train_seconds)
    report = {"source": str(source.path), "out": str(dest.path), **rule.record(grid), "prune_seconds": seconds,
              "split": cfg.eval_split, "views": after["protocol"]["views"],
              "before": {**before_size, "psnr": before["results"]["psnr"], "ssim": before["results"]["ssim"]},
              "after": {**grid_size(pruned, dest.grid_file), "psnr": after["results"]["psnr"],
                        "ssim": after["results"]["ssim"]}}
    atomic_write_json(dest.prune_file, report)
    return report
