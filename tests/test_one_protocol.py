"""One protocol: ``plenox eval`` on a fresh run reproduces fit's own final figure, and the
metrics file names the ray-marching thresholds it was rendered with."""

import json
import shutil

from plenox.commands.evaluate import eval_run
from plenox.training.grid_config import FitConfig


def test_eval_reproduces_fits_final_metrics(tiny_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    fitted = json.loads((copy / "eval" / "metrics.json").read_text())
    again = eval_run(str(copy), views=fitted["protocol"]["views"], device="cpu")
    assert again["results"]["psnr"] == fitted["results"]["psnr"]
    assert [p["psnr"] for p in again["per_image"]] == [p["psnr"] for p in fitted["per_image"]]
    for metrics in (fitted, again):
        protocol = metrics["protocol"]
        assert protocol["stop_thresh"] == FitConfig().render_stop_thresh
        assert {"step_size", "sigma_thresh", "background"} <= protocol.keys()


def test_training_and_viewing_options_differ_only_in_the_stop():
    from plenox.data import builtin_scene

    cfg, scene = FitConfig(), builtin_scene()
    train, view = cfg.render_options(scene, "train"), cfg.render_options(scene, "view")
    assert train.stop_thresh == cfg.stop_thresh and view.stop_thresh == cfg.render_stop_thresh
    assert (train.step, train.sigma_thresh, train.background) == (view.step, view.sigma_thresh, view.background)
