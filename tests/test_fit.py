"""End-to-end fitting on the built-in scene: quality floor, exact resume, run-folder safety."""

import json

import pytest
import torch

from plenox.runs.registry import load_config
from plenox.data import builtin_scene
from plenox.training.grid_trainer import GridTrainer, log_linear_lr
from plenox.runs.folder import RunDir
from plenox.runs.fitting import fit_run
from plenox.errors import ConfigError, RunError

# A small, fast fit: 24^3 -> 32^3 on 32x32 images.
FAST = ["resolutions=[[24,24,24],[32,32,32]]", "upsample_steps=[60]", "steps=120", "batch_size=1024",
        "lr_decay_steps=120", "lr_density_delay_steps=10", "log_every=20"]


@pytest.fixture(scope="module")
def scene():
    return builtin_scene(size=32, n_train=20, n_test=4)


def make_trainer(scene, path, steps=None):
    overrides = FAST + ([f"steps={steps}"] if steps else [])
    cfg = load_config("tiny", overrides)
    run = RunDir(path)
    run.create(cfg.to_dict(), {"source": "builtin", "downscale": 1})
    return GridTrainer(scene, cfg, run)


def test_log_linear_lr_schedule():
    assert log_linear_lr(0, 30.0, 0.05, 100) == pytest.approx(30.0)
    assert log_linear_lr(100, 30.0, 0.05, 100) == pytest.approx(0.05)
    assert log_linear_lr(50, 1.0, 0.01, 100) == pytest.approx(0.1)
    assert log_linear_lr(0, 1.0, 0.01, 100, delay_steps=10, delay_mult=0.01) == pytest.approx(0.01)
    assert log_linear_lr(10, 1.0, 1.0, 100, delay_steps=10, delay_mult=0.01) == pytest.approx(1.0)


def test_tiny_fit_beats_psnr_floor(tmp_path):
    metrics = fit_run(None, str(tmp_path / "run"), "tiny", FAST + ["steps=200"], progress=False)
    # An untrained grid (density 0.1, grey SH) scores about 11 dB on this scene.
    assert metrics["results"]["psnr"] > 17.0
    run = RunDir(tmp_path / "run")
    log = run.read_log()
    assert log[-1]["step"] == 200 and log[-1]["resolution"] == [32, 32, 32]
    assert log[-1]["voxels"] < 32 ** 3  # pruned at the upsample
    saved = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    assert saved["protocol"]["views"] == 10 and len(saved["per_image"]) == 10
    assert {"psnr", "psnr_std", "ssim", "ssim_std", "fps", "num_rays_per_sec"} <= set(saved["results"])
    assert (tmp_path / "run" / "eval" / "images").is_dir()


def test_resume_matches_uninterrupted(scene, tmp_path):
    whole = make_trainer(scene, tmp_path / "whole")
    whole.train(progress=False)
    first = make_trainer(scene, tmp_path / "split", steps=70)  # interrupted after the upsample
    first.train(progress=False)
    second = GridTrainer(scene, load_config("tiny", FAST), RunDir(tmp_path / "split"))
    second.resume()
    assert second.step == 70
    second.train(progress=False)
    assert torch.equal(second.grid.links, whole.grid.links)
    assert torch.equal(second.grid.density, whole.grid.density)
    assert torch.equal(second.grid.sh, whole.grid.sh)


def test_existing_run_is_not_clobbered(tmp_path):
    run = RunDir(tmp_path / "run")
    run.create({"a": 1}, {"source": "builtin", "downscale": 1})
    with pytest.raises(RunError, match="already holds a run"):
        fit_run(None, str(tmp_path / "run"), "tiny", FAST, progress=False)
    assert json.loads(run.config_file.read_text()) == {"a": 1}


def test_unknown_config_key_and_bad_values():
    with pytest.raises(ConfigError, match="unknown config key 'stepz'"):
        load_config("tiny", ["stepz=3"])
    with pytest.raises(ConfigError, match="steps must be int"):
        load_config("tiny", ["steps=fast"])
    with pytest.raises(ConfigError, match="unknown config 'nope'"):
        load_config("nope")
    with pytest.raises(ConfigError, match="upsample_steps"):
        load_config("tiny", ["upsample_steps=[]"])
