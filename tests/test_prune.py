"""plenox prune: fewer voxels, the same test PSNR, the source run left alone."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from plenox.models.grid import dilate_mask
from plenox.commands.prune import prune_run
from plenox.models.grid_autograd import max_weights
from plenox.runs.folder import RunDir
from plenox.runs.loading import load_grid_run
from plenox.training.pruning import PruneRule, prune_grid, strided_rays
from plenox.errors import PruneError, RunError


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_default_prune_keeps_psnr_and_removes_voxels(tiny_run, tmp_path):
    before = {p.name: digest(p) for p in tiny_run.iterdir() if p.is_file()}
    report = prune_run(str(tiny_run), out=str(tmp_path / "pruned"))
    assert report["rule"] == "weight" and report["threshold"] == pytest.approx(0.256 / 24)
    assert report["after"]["voxels"] < 0.8 * report["before"]["voxels"]
    assert report["after"]["memory_bytes"] < report["before"]["memory_bytes"]
    assert report["after"]["file_bytes"] < report["before"]["file_bytes"]
    assert abs(report["after"]["psnr"] - report["before"]["psnr"]) < 0.1
    assert before == {p.name: digest(p) for p in tiny_run.iterdir() if p.is_file()}  # source untouched
    out = RunDir(tmp_path / "pruned")
    assert json.loads(out.prune_file.read_text()) == report
    assert out.load_grid().n_voxels == report["after"]["voxels"]
    assert not out.state_file.exists() and out.log_file.read_text() == RunDir(tiny_run).log_file.read_text()
    unpruned = json.loads((out.path / "eval_unpruned" / "metrics.json").read_text())
    assert unpruned["results"]["psnr"] == report["before"]["psnr"] and unpruned["protocol"]["views"] == 4


def test_weight_rule_keeps_exactly_the_seen_voxels(tiny_run):
    _, cfg, scene, grid = load_grid_run(str(tiny_run))
    options = cfg.render_options(scene, "train")
    rule = PruneRule("weight", dilate=0, ray_stride=2)
    pruned = prune_grid(grid, scene, options, rule)
    origins, dirs = strided_rays(scene, 2)
    seen = grid.voxel_mask(max_weights(grid, origins, dirs, options) >= 0.256 / grid.resolution[2])
    assert np.array_equal(pruned.links.numpy() >= 0, seen)
    assert rule.record(grid) == {"rule": "weight", "weight_thresh": 0.256, "threshold": 0.256 / grid.resolution[2],
                                 "ray_stride": 2, "dilate": 0}
    # Values move with their voxels.
    old = grid.links.numpy()[seen]
    assert torch.equal(pruned.density, grid.density.detach()[torch.from_numpy(old.astype(np.int64))])


def test_density_rule_in_place_drops_resume_state(tiny_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    grid = RunDir(copy).load_grid()
    expected = dilate_mask(grid.voxel_mask(grid.density.detach() >= 1.0), 1) & (grid.links.numpy() >= 0)
    report = prune_run(str(copy), density_thresh=1.0, dilate=1, views=2, in_place=True)
    assert report["rule"] == "density" and report["views"] == 2
    run = RunDir(copy)
    assert np.array_equal(run.load_grid().links.numpy() >= 0, expected)
    assert not run.state_file.exists() and run.prune_file.exists()


def test_bad_options_and_destinations(tiny_run, tmp_path):
    with pytest.raises(PruneError, match="not both"):
        prune_run(str(tiny_run), out=str(tmp_path / "a"), weight_thresh=0.01, density_thresh=1.0)
    with pytest.raises(PruneError, match="positive"):
        prune_run(str(tiny_run), out=str(tmp_path / "a"), weight_thresh=-0.1)
    with pytest.raises(PruneError, match="dilate"):
        prune_run(str(tiny_run), out=str(tmp_path / "a"), dilate=-1)
    with pytest.raises(RunError, match="--in-place"):
        prune_run(str(tiny_run), out=str(tiny_run))
    RunDir(tmp_path / "taken").create({"a": 1}, {"source": "builtin", "downscale": 1})
    with pytest.raises(RunError, match="already holds a run"):
        prune_run(str(tiny_run), out=str(tmp_path / "taken"))
    assert not (tmp_path / "a").exists()
