"""plenox info: sizes, the training summary and the evaluation, read without the scene."""

import torch

from gridutil import random_grid
from plenox.commands.info import format_info, run_info
from plenox.runs.folder import RunDir


def test_info_of_a_run_with_batch_and_heldout_records(tmp_path):
    run = RunDir(tmp_path / "run")
    run.create({}, {"source": "/nowhere/lego", "name": "lego", "downscale": 1})   # the scene is never read
    grid = random_grid(resolution=(8, 6, 4), basis_dim=4, dtype=torch.float32)
    run.save_grid(grid)
    run.append_log({"step": 50, "time": 10.0, "loss": 0.01, "psnr": 20.0, "rays_per_s": 1000.0})
    run.append_log({"step": 60, "time": 12.5, "heldout_psnr": 18.5, "heldout_views": 2, "voxels": grid.n_voxels})
    info = run_info(str(run.path))
    assert info["resolution"] == [8, 6, 4] and info["voxels"] == grid.n_voxels
    assert info["occupancy"] == grid.n_voxels / (8 * 6 * 4) and info["sh_degree"] == 1
    assert info["memory_bytes"] == 8 * 6 * 4 * 4 + grid.n_voxels * (1 + 12) * 4
    assert info["grid_file_bytes"] == run.grid_file.stat().st_size <= info["folder_bytes"]
    assert info["training"] == {"steps": 50, "seconds": 10.0, "psnr": 20.0, "rays_per_s": 1000.0, "heldout_psnr": 18.5}
    assert info["eval"] is None and info["pruned"] is None and not info["resumable"]
    text = "\n".join(format_info(info))
    assert "8x6x4" in text and "held-out PSNR 18.50" in text and "eval: none yet" in text
