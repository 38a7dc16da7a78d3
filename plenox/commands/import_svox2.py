"""``plenox import``: a run folder from an svox2 ckpt.npz and the scene it was fitted to.

Every other command (render, eval, prune, export, info) then reads it like a fitted run.
"""

import json
from pathlib import Path

from plenox.errors import GridFileError, RunError
from plenox.io.atomic import atomic_write_json
from plenox.models.svox2_files import read_svox2
from plenox.runs.folder import RunDir
from plenox.runs.loading import scene_config, scene_record


def import_run(checkpoint: str, source: str | None, out: str, config: str | None = None, overrides=(),
               scene_scale: float = 1.0, force: bool = False) -> dict:
    """Make the run folder ``out`` from an svox2 ckpt.npz and the scene it was fitted to.

    The run holds config.json (the scene's default config, or ``config``, with the
    checkpoint's resolution and SH size; it sets the render options), scene.json, grid.npz
    (float32 SH, so float16 values stay exact) and import.json. Returns import.json's record.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise GridFileError(f"{path}: no such checkpoint file")
    run = RunDir(out)
    if run.exists() and not force:
        raise RunError(f"{run.path}: already holds a run (choose another --out or use --force)")
    grid = read_svox2(path, scene_scale)
    fixed = [f"resolutions={json.dumps([list(grid.resolution)])}", "upsample_steps=[]",
             f"basis_dim={grid.basis_dim}"]
    cfg, scene = scene_config(source, config, [*overrides, *fixed], model="plenoxels")
    run.create(cfg.to_dict(), scene_record(source, scene, scene.downscale), force=force)
    run.save_grid(grid, exact=True)
    record = {"checkpoint": str(path.resolve()), "scene_scale": scene_scale, "out": str(run.path),
              "resolution": list(grid.resolution), "voxels": grid.n_voxels, "basis_dim": grid.basis_dim}
    atomic_write_json(run.import_file, record)
    return record
