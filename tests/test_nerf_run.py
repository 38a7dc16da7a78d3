"""NeRF through the run-folder machinery: configs, exact resume, the LLFF path (NDC, all-image batches)."""

import json

import pytest
import torch

from plenox.runs.registry import load_config
from plenox.training.nerf_config import NerfFitConfig
from plenox.training.nerf_trainer import NerfTrainer
from plenox.runs.folder import RunDir
from plenox.runs.fitting import fit_run
from plenox.runs.loading import scene_config

from scenes import tiny_scene, write_llff_scene
from plenox.errors import ConfigError, RunError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# A few-millisecond network: resume and pipeline tests need steps, not quality.
SMALL = ["n_coarse=4", "n_fine=4", "netdepth=2", "netwidth=8", "multires=2", "multires_views=1", "chunk=64",
         "log_every=2", "eval_views=1"]


def make_trainer(scene, path, overrides):
    cfg = load_config("nerf_tiny", SMALL + overrides).for_scene(scene)
    run = RunDir(path)
    run.create(cfg.to_dict(), {"source": "builtin", "downscale": 1})
    return NerfTrainer(scene, cfg, run)


@pytest.mark.parametrize("batching", [
    ["batching=image", "precrop_iters=3", "batch_rays=48"],   # crosses the end of the centre crop
    ["batching=all", "batch_rays=300"],                       # 768 rays: crosses into a second shuffled pass
])
def test_resume_matches_uninterrupted(tmp_path, batching):
    scene = tiny_scene(size=16, n_train=3, n_test=1)
    whole = make_trainer(scene, tmp_path / "whole", batching + ["steps=6", "raw_noise_std=0.5"])
    whole.train(progress=False)
    first = make_trainer(scene, tmp_path / "split", batching + ["steps=4", "raw_noise_std=0.5"])
    first.train(progress=False)
    cfg = load_config("nerf_tiny", SMALL + batching + ["steps=6", "raw_noise_std=0.5"]).for_scene(scene)
    second = NerfTrainer(scene, cfg, RunDir(tmp_path / "split"))
    second.resume()
    assert second.step == 4 and second.elapsed == first.elapsed
    second.train(progress=False)
    assert second.step == whole.step == 6
    for a, b in zip(second.model.parameters(), whole.model.parameters()):
        assert torch.equal(a, b)


def test_config_story():
    cfg = load_config("nerf_tiny", ["n_fine=0"])
    assert isinstance(cfg, NerfFitConfig) and cfg.model == "nerf" and cfg.n_fine == 0
    assert (cfg.near, cfg.far, cfg.white_bkgd) == (None, None, None)   # the scene's, filled in by for_scene
    resolved = cfg.for_scene(tiny_scene(size=8, n_train=1, n_test=1))
    assert (resolved.near, resolved.far, resolved.white_bkgd) == (2.0, 6.0, True)
    with pytest.raises(ConfigError, match="unknown config key 'resolutions'"):
        load_config("nerf_tiny", ["resolutions=[[8,8,8]]"])
    with pytest.raises(ConfigError, match="unknown config key 'n_fine'"):
        load_config("tiny", ["n_fine=3"])
    with pytest.raises(ConfigError, match="is a nerf config, not a plenoxels one"):
        load_config("nerf_tiny", model="plenoxels")
    with pytest.raises(ConfigError, match="model is chosen with --model"):
        load_config("nerf_tiny", ["model=plenoxels"])
    with pytest.raises(ConfigError, match="batching must be image or all"):
        load_config("nerf_tiny", ["batching=rows"])
    with pytest.raises(ConfigError, match="white_bkgd"):
        load_config("nerf_tiny", ["white_bkgd=yes"])
    # --model nerf without --config picks the reference preset for the scene's format
    assert scene_config(None, None, SMALL, model="nerf")[0].batching == "image"


def test_llff_path_ndc_and_all_image_batches(tmp_path):
    write_llff_scene(tmp_path / "llff", n=9, width=48, height=36, factor=4)
    metrics = fit_run(str(tmp_path / "llff"), str(tmp_path / "run"), None, SMALL + ["steps=3", "batch_rays=64"],
                      progress=False, model="nerf")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    # nerf_llff: the reference's fern settings, near/far of the NDC scene, black background, factor 8
    preset = (saved["batching"], saved["raw_noise_std"], saved["lr_decay_steps"], saved["downscale"])
    assert preset == ("all", 1.0, 250_000, 8)
    assert (saved["near"], saved["far"], saved["white_bkgd"]) == (0.0, 1.0, False)
    assert metrics["protocol"]["resolution"] == [24, 18] and metrics["protocol"]["model"] == "nerf"
    assert metrics["protocol"]["background"] == [0.0, 0.0, 0.0]


def test_resume_refuses_another_model(tmp_path):
    fit_run(None, str(tmp_path / "run"), "nerf_tiny", SMALL + ["steps=2"], progress=False)
    with pytest.raises(RunError, match="holds a nerf run, not a plenoxels one"):
        fit_run(None, str(tmp_path / "run"), resume=True, progress=False, model="plenoxels")
