"""plenox compare: time-to-PSNR, the report from fitted and existing runs, clear errors for unusable runs."""

import json
import shutil

import imageio.v3 as iio
import pytest
import torch

from plenox.cli import main
from plenox.commands.compare import compare_fit, compare_runs, parse_levels, reach_final, speedup, time_to_psnr
from plenox.errors import CompareError, RunError

RUN_FIELDS = {"run", "model", "label", "psnr", "psnr_std", "ssim", "ssim_std", "render_fps", "render_seconds_per_frame",
              "steps", "training_seconds", "train_rays_per_s", "peak_rss_mb", "model_file", "model_bytes", "curve",
              "curve_views", "curve_stride", "time_to_psnr", "protocol", "views", "per_image"}
PROTOCOL_FIELDS = {"scene", "format", "split", "views", "view_names", "views_in_split", "resolution", "background",
                   "averaging", "ssim", "budget_minutes", "curve", "device", "threads", "machine", "date"}


@pytest.mark.parametrize("curve, level, expected", [
    ([(0, 10.0), (10, 18.0), (20, 22.0), (30, 26.0)], 20.0, 15.0),    # halfway from 18 to 22 dB
    ([(0, 10.0), (10, 18.0), (20, 22.0), (30, 26.0)], 25.0, 27.5),
    ([(0, 10.0), (10, 18.0), (20, 22.0), (30, 26.0)], 30.0, None),    # not reached
    ([(0, 10.0), (10, 21.0), (20, 19.0), (30, 24.0)], 20.0, 100 / 11),  # the first crossing counts
    ([(5, 21.0), (9, 23.0)], 20.0, 5.0),                              # already above at the first point
    ([(0, 10.0), (10, 20.0)], 20.0, 10.0),                            # reaching the level exactly
    ([], 20.0, None),
])
def test_time_to_psnr(curve, level, expected):
    assert time_to_psnr(curve, level) == (None if expected is None else pytest.approx(expected))


def test_parse_levels():
    assert parse_levels("20,25.5,30") == (20.0, 25.5, 30.0)
    for bad in ("20,x", "nan", ""):
        with pytest.raises(CompareError, match="levels"):
            parse_levels(bad)


def test_speedup():
    assert speedup(2.0, 30.0, 60.0) == {"ratio": 15.0}
    assert speedup(2.0, None, 60.0) == {"at_least": 30.0}   # the other trained 60 s without reaching it
    assert speedup(None, 30.0, 60.0) == {}


def test_reach_final():
    grid = {"label": "grid", "curve": [(0, 10.0), (2, 14.0), (4, 20.0)], "training_seconds": 4}
    nerf = {"label": "nerf", "curve": [(0, 8.0), (300, 11.0), (600, 12.0)], "training_seconds": 600}
    entry = reach_final(grid, nerf)
    # The grid crosses 12 dB at 1 s (halfway from 10 to 14); the NeRF first gets there at 600 s.
    assert entry["psnr"] == 12.0 and entry["seconds"] == {"grid": 1.0, "nerf": 600.0}
    assert entry["speedup_of_first"] == {"ratio": 600.0}
    ahead = reach_final(grid, {**nerf, "curve": [(0, 8.0), (600, 9.5)]})
    assert ahead["seconds"]["grid"] == 0.0 and ahead["speedup_of_first"] == {}   # better before training
    behind = reach_final(grid, {**nerf, "curve": [(0, 8.0), (600, 25.0)]})
    assert behind["seconds"] == {"grid": None, "nerf": 600.0} and behind["speedup_of_first"] == {}
    assert reach_final(grid, {**nerf, "curve": []})["psnr"] is None


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """compare_fit on the built-in scene: a tiny grid and a tiny NeRF, 3 training seconds each."""
    out = tmp_path_factory.mktemp("compare")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)   # tiny nets stall with two threads on shared cores
    report = compare_fit(None, out, budget_minutes=0.05, models=["plenoxels:tiny", "nerf:nerf_tiny"],
                         eval_every_s=1.0, views=2, progress=False)
    torch.set_num_threads(previous)
    return out, report


def check_report(out, report):
    assert [r["model"] for r in report["runs"]] == ["plenoxels", "nerf"]
    for run in report["runs"]:
        assert RUN_FIELDS <= run.keys()
        assert set(run["time_to_psnr"]) == {"20.0", "25.0", "30.0"} and len(run["curve"]) >= 2
        assert run["curve"][0][0] == 0.0 and run["curve_views"] == 2 and run["curve_stride"] == 3
        assert run["train_rays_per_s"] > 0 and run["render_fps"] > 0 and run["model_bytes"] > 0
        assert run["peak_rss_mb"] > 0 and len(run["per_image"]) == 2
    assert PROTOCOL_FIELDS <= report["protocol"].keys()
    assert report["protocol"]["views"] == 2 and report["protocol"]["resolution"] == [64, 64]
    assert [e["psnr"] for e in report["time_to_psnr"]] == [20.0, 25.0, 30.0]
    assert json.loads((out / "report.json").read_text())["runs"][1]["model"] == "nerf"
    final = report["to_final_psnr"]
    assert len(final) == 1 and final[0]["target"] == "nerf" and final[0]["psnr"] == report["runs"][1]["curve"][-1][1]
    text = (out / "report.md").read_text()
    for words in ("final PSNR", "final SSIM", "time to 20 dB", "training rays/s", "render frames/s",
                  "model size on disk", "peak memory", "Protocol", "cores", "nerf's final held-out PSNR"):
        assert words in text
    assert iio.imread(out / "psnr_vs_time.png").ndim == 3
    side = iio.imread(out / "side_by_side.png")
    assert side.shape[1] > 2 * side.shape[0]   # 3 rows of 5 images: ground truth, 2 renders, 2 error maps


def test_compare_fit_on_builtin(compared):
    out, report = compared
    check_report(out, report)
    assert report["protocol"]["budget_minutes"] == 0.05
    for name in ("plenoxels", "nerf"):
        assert (out / name / "eval" / "metrics.json").exists()   # run folders usable by render/eval/export
    assert (out / "plenoxels" / "grid.npz").exists() and (out / "nerf" / "nerf.pt").exists()
    with pytest.raises(RunError, match="already holds a run"):
        compare_fit(None, out, budget_minutes=0.05, models=["plenoxels:tiny", "nerf:nerf_tiny"], views=2)


def test_report_from_existing_runs(compared, tmp_path, capsys):
    out, _ = compared
    code = main(["compare", "--runs", str(out / "plenoxels"), str(out / "nerf"), "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert code == 0 and "final PSNR" in printed and str(tmp_path / "report.md") in printed
    report = json.loads((tmp_path / "report.json").read_text())
    check_report(tmp_path, report)
    assert report["protocol"]["budget_minutes"] is None


@pytest.mark.parametrize("damage, words", [
    (lambda run: (run / "eval" / "metrics.json").unlink(), ["metrics.json", "plenox eval"]),
    (lambda run: (run / "nerf.pt").unlink(), ["nerf.pt", "missing"]),
    (lambda run: (run / "config.json").unlink(), ["config.json", "run folder"]),
    (lambda run: (run / "config.json").write_text('{"model": "gaussians"}'), ["unknown model 'gaussians'"]),
])
def test_unusable_run_is_one_line_error(compared, tmp_path, capsys, damage, words):
    out, _ = compared
    shutil.copytree(out / "nerf", tmp_path / "nerf")
    damage(tmp_path / "nerf")
    code = main(["compare", "--runs", str(out / "plenoxels"), str(tmp_path / "nerf"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and all(w in err for w in words), err
    assert not (tmp_path / "r" / "report.md").exists()


def test_runs_on_other_views_or_too_few(compared, tmp_path):
    out, _ = compared
    shutil.copytree(out / "nerf", tmp_path / "nerf")
    metrics = json.loads((tmp_path / "nerf" / "eval" / "metrics.json").read_text())
    metrics["per_image"] = metrics["per_image"][:1]
    (tmp_path / "nerf" / "eval" / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(RunError, match="other test views"):
        compare_runs([out / "plenoxels", tmp_path / "nerf"], tmp_path / "r")
    with pytest.raises(CompareError, match="at least two runs"):
        compare_runs([out / "plenoxels"], tmp_path / "r")
    with pytest.raises(CompareError, match="at least two models"):
        compare_fit(None, tmp_path / "r", models=["nerf"])
