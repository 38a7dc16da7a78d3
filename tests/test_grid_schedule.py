"""The grid's resolutions chosen from the images and the budget (plenox.training.grid_schedule):
the shipped configs give back the grids they were tuned with at the sizes they were tuned for,
grow with the images, stay within the budget's cells, and give way to explicit resolutions; a
grid that would not fit in memory is not upsampled to."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from plenox.data.cameras import Cameras
from plenox.runs.registry import load_config
from plenox.training import grid_trainer
from plenox.training.grid_schedule import CELLS_PER_MINUTE, ROUND, plan_resolutions
from plenox.training.grid_trainer import GridTrainer
from plenox.runs.folder import RunDir
from plenox.cli import main
from scenes import look_at, tiny_scene, write_llff_scene

LEGO_DISTANCE, LEGO_ANGLE_X = 4.0311, 0.6911112   # NeRF-synthetic cameras: distance from the centre, field of view


def lego_like(size: int):
    """A scene with lego's camera geometry at ``size`` x ``size`` pixels (no images needed)."""
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    positions = LEGO_DISTANCE * np.stack([np.cos(angles) * 0.8, np.sin(angles) * 0.8, np.full(12, 0.6)], axis=1)
    focal = 0.5 * size / math.tan(0.5 * LEGO_ANGLE_X)
    cams = Cameras(c2w=look_at(positions, (0.0, 0.0, 0.0)), fx=focal, fy=focal, cx=size / 2, cy=size / 2,
                   width=size, height=size)
    return SimpleNamespace(ndc=False, center=(0.0, 0.0, 0.0), radius=(1.5, 1.5, 1.5),
                           splits={"train": SimpleNamespace(cameras=cams)})


def fern_like(width: int, height: int):
    """A forward-facing scene in NDC with fern's image size (only its cameras' size matters)."""
    cams = Cameras(c2w=torch.eye(4)[None].repeat(4, 1, 1), fx=float(width), fy=float(width), cx=width / 2,
                   cy=height / 2, width=width, height=height)
    return SimpleNamespace(ndc=True, center=(0.0, 0.0, 0.0), radius=(1.0, 1.0, 1.0),
                           splits={"train": SimpleNamespace(cameras=cams)})


def plan(config: str, scene, minutes):
    cfg = load_config(config)
    return plan_resolutions(scene, scene.radius, cfg.resolutions, cfg.voxels_per_pixel, minutes)


def test_shipped_configs_give_their_tuned_grids_at_their_tuned_sizes():
    # lego_200 for 10 minutes was tuned at 64 -> 128 -> 160; fern images_8 for 30 at 512x384x64 last.
    assert plan("synthetic", lego_like(200), 10)[0] == [[64] * 3, [128] * 3, [160] * 3]
    assert plan("llff", fern_like(504, 378), 30)[0] == [[128, 128, 64], [256, 256, 64], [512, 384, 64]]


def test_the_grid_grows_with_the_images_within_the_budget():
    levels, why = plan("synthetic", lego_like(400), None)
    assert levels[-1] == [304, 304, 304] and "310x310x310" in why and "budget" not in why   # 0.75 x 413 footprints
    for minutes in (10, 30, 60):
        levels, why = plan("synthetic", lego_like(400), minutes)
        cells = math.prod(levels[-1])
        side = levels[-1][0]   # rounding to the nearest multiple of ROUND may add up to ROUND / 2 per axis
        assert cells <= CELLS_PER_MINUTE * minutes * ((side + ROUND / 2) / (side - ROUND / 2)) ** 3 and "budget" in why
        assert all(v % ROUND == 0 for level in levels for v in level)
        assert levels == sorted(levels)   # coarse to fine
    (*_, fern), why = plan("llff", fern_like(1008, 756), 60)
    assert fern[0] > 512 and fern[1] > 384 and abs(fern[0] / fern[1] - 4 / 3) < 0.05
    # NDC depth: the budget would allow 80 disparity levels (126 scaled like x), the config's 64 are kept
    assert fern[2] == 64 and "at most 64 disparity levels" in why
    assert plan("llff", fern_like(2016, 1512), None)[0][-1] == [2016, 1504, 64]   # 1512 rounds to 16s


def test_explicit_resolutions_win_and_the_plan_is_written_into_the_config():
    assert load_config("synthetic").grid_from_images
    explicit = load_config("synthetic", ["resolutions=[[32,32,32],[48,48,48],[64,64,64]]"])
    assert not explicit.grid_from_images
    assert explicit.for_scene(lego_like(400), 30).resolutions == [[32] * 3, [48] * 3, [64] * 3]
    both = load_config("synthetic", ["resolutions=[[32,32,32],[48,48,48],[64,64,64]]", "grid_from_images=true"])
    assert both.grid_from_images
    resolved = load_config("synthetic").for_scene(lego_like(200), 10)
    assert resolved.resolutions[-1] == [160] * 3 and not resolved.grid_from_images and "footprint" in resolved.grid_plan
    assert resolved.for_scene(lego_like(400), 30).resolutions == resolved.resolutions   # resolved once, kept
    assert "160x160x160 at 5.5 min" in resolved.schedule_summary(10)


def test_a_grid_that_does_not_fit_is_not_upsampled_to(tmp_path, monkeypatch):
    scene = tiny_scene(size=16)
    cfg = load_config("tiny", ["resolutions=[[16,16,16],[32,32,32]]", "upsample_steps=[5]", "steps=10",
                               "batch_size=256", "prune=none"])
    run = RunDir(tmp_path / "run")
    run.create(cfg.to_dict(), {"source": "builtin", "format": "builtin", "name": "builtin", "downscale": 0})
    monkeypatch.setattr(grid_trainer, "available_bytes", lambda: 1000)   # about nothing free
    trainer = GridTrainer(scene, cfg, run)
    trainer.train(progress=False)
    assert trainer.grid.resolution == (16, 16, 16) and trainer.step == 10
    refused = [r for r in map(json.loads, run.log_file.read_text().splitlines()) if "upsample_refused" in r]
    assert len(refused) == 1 and "32x32x32 grid" in refused[0]["upsample_refused"]
    monkeypatch.setattr(grid_trainer, "available_bytes", lambda: 2 ** 40)
    fits = GridTrainer(scene, cfg, RunDir(tmp_path / "run"))
    fits.train(progress=False)
    assert fits.grid.resolution == (32, 32, 32)


def test_fit_prints_the_schedule_and_keeps_the_plan(tmp_path, capsys):
    write_llff_scene(tmp_path / "scene", width=24, height=18, factor=4)
    out = tmp_path / "run"
    small = ["steps=20", "upsample_steps=[5,10]", "lr_decay_steps=20", "batch_size=256", "eval_views=1",
             "downscale=4"]
    assert main(["fit", str(tmp_path / "scene"), "--out", str(out), "--config", "llff", *small]) == 0
    printed = capsys.readouterr().out
    # x: 1 voxel per pixel of the 24-pixel-wide images -> 32 (rounded to 16s), y: 18 -> 16, z: 24 x 64/512 -> 16
    assert ("grid 16x16x16 from the start, 16x16x16 at step 5, 32x16x16 at step 10 "
            "(1 voxels per image pixel (NDC) gives 24x18x3)") in printed
    config = json.loads((out / "config.json").read_text())
    assert config["resolutions"] == [[16, 16, 16], [16, 16, 16], [32, 16, 16]] and not config["grid_from_images"]
    assert "image pixel" in config["grid_plan"]
    setup = json.loads((out / "log.jsonl").read_text().splitlines()[0])["setup"]
    assert setup["resolutions"][-1] == [32, 16, 16] and setup["grid_plan"] == config["grid_plan"]
