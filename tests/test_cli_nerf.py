"""plenox fit --model nerf, then render / eval / info / export on the NeRF run; grid-only commands refuse it."""

import json

import pytest
import torch

from plenox.cli import main

FAST = ["steps=4", "batch_rays=64", "precrop_iters=2", "n_coarse=8", "n_fine=8", "eval_views=2", "log_every=2",
        "eval_every_s=0.001", "eval_every_views=1", "eval_every_stride=4"]


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The CLI gives torch every core; on shared cores a tiny net then stalls at each op, so use one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("plenox.models.nerf.configure_threads", lambda: torch.set_num_threads(1))
        yield


@pytest.fixture(scope="module")
def nerf_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("nerf") / "run"
    assert main(["fit", "--model", "nerf", "--config", "nerf_tiny", "--out", str(path), "--quiet", *FAST]) == 0
    return path


def test_fit_writes_the_grid_runs_metrics_and_log_shape(nerf_run, tiny_run):
    nerf, grid = (json.loads((p / "eval" / "metrics.json").read_text()) for p in (nerf_run, tiny_run))
    assert nerf.keys() == grid.keys() and nerf["results"].keys() == grid["results"].keys()
    assert nerf["per_image"][0].keys() == grid["per_image"][0].keys() and len(nerf["per_image"]) == 2
    common = {"scene", "split", "views", "resolution", "background", "averaging", "model", "training_seconds",
              "device", "threads"}
    assert common <= nerf["protocol"].keys() and common <= grid["protocol"].keys()
    assert nerf["protocol"]["model"] == "nerf" and nerf["protocol"]["background"] == [1.0, 1.0, 1.0]
    assert json.loads((nerf_run / "config.json").read_text())["model"] == "nerf"
    log = [json.loads(line) for line in (nerf_run / "log.jsonl").read_text().splitlines()]
    training = [r for r in log if "rays_per_s" in r]
    assert [r["step"] for r in training] == [2, 4]
    assert {"step", "time", "loss", "psnr", "rays_per_s", "peak_rss_mb", "lr"} <= training[-1].keys()
    heldout = [r for r in log if "heldout_psnr" in r]
    assert heldout[0]["step"] == 0 and heldout[-1]["step"] > 0 and heldout[0]["heldout_stride"] == 4


def test_render_eval_info_and_exports(nerf_run, tmp_path, capsys):
    code, out, _ = run_cli(["render", nerf_run, "--views", 1, "--depth", "--split", "train"], capsys)
    assert code == 0 and "rendered 1 frames" in out
    assert (nerf_run / "renders" / "train" / "r_0_depth.png").exists()
    code, out, _ = run_cli(["eval", nerf_run, "--views", 1], capsys)
    assert code == 0 and "PSNR" in out
    assert json.loads((nerf_run / "eval" / "metrics.json").read_text())["protocol"]["views"] == 1
    code, out, _ = run_cli(["info", nerf_run, "--json"], capsys)
    info = json.loads(out)
    assert code == 0 and info["model"] == "nerf" and info["parameters"] > 0 and info["training"]["steps"] == 4
    code, out, _ = run_cli(["info", nerf_run], capsys)
    assert code == 0 and "MLPs of 2x32" in out
    code, out, _ = run_cli(["export", nerf_run, "--format", "depth", "--views", 1, "--out", tmp_path / "d"], capsys)
    assert code == 0 and len(list((tmp_path / "d").glob("*_depth.png"))) == 1


@pytest.mark.parametrize("args, words", [
    (["prune", "{run}"], ["holds a nerf model", "not a plenoxels grid"]),
    (["export", "{run}", "--format", "svox2"], ["holds a nerf model"]),
    (["export", "{run}", "--format", "mesh"], ["holds a nerf model"]),
    (["fit", "--model", "plenoxels", "--config", "nerf_tiny", "--out", "{tmp}/x"], ["is a nerf config"]),
    (["fit", "--resume", "--model", "plenoxels", "--out", "{run}"], ["holds a nerf run"]),
    (["fit", "--model", "nerf", "--config", "nerf_tiny", "--out", "{tmp}/x", "netwidth=wide"],
     ["netwidth must be int"]),
])
def test_wrong_kind_is_one_line(nerf_run, tmp_path, capsys, args, words):
    args = [a.format(tmp=tmp_path, run=nerf_run) for a in args]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and all(w in err for w in words), err
    assert not (tmp_path / "x").exists() and not (nerf_run.parent / "run_pruned").exists()
