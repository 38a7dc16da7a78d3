"""plenox prune / export / import / info from the command line: outputs, one-line errors with exit code 2."""

import json
import shutil

import pytest

from plenox.cli import main


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code, err, *words) -> bool:
    return code == 2 and len(err.strip().splitlines()) == 1 and all(w in err for w in words)


def test_prune_export_import_info(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)   # video and depth renders write into the run folder
    code, out, _ = run_cli(["prune", run, "--out", tmp_path / "pruned", "--views", 2], capsys)
    assert code == 0 and "voxels" in out and "PSNR" in out and str(tmp_path / "pruned") in out
    code, out, _ = run_cli(["info", tmp_path / "pruned"], capsys)
    assert code == 0 and "pruned from" in out and "SH degree 2" in out and "24x24x24" in out
    code, out, _ = run_cli(["info", run, "--json"], capsys)
    info = json.loads(out)
    assert code == 0 and info["training"]["steps"] == 60 and info["eval"]["views"] == 4 and info["resumable"]
    for fmt, name in [("svox2", "ckpt.npz"), ("ply", "points.ply"), ("mesh", "mesh.obj")]:
        code, out, _ = run_cli(["export", run, "--format", fmt, "--out", tmp_path / name, "--density-thresh", 1], capsys)
        assert code == 0 and (tmp_path / name).stat().st_size > 0 and out.startswith(f"wrote {fmt}")
    code, _, _ = run_cli(["export", run, "--format", "video", "--frames", 2], capsys)
    assert code == 0 and (run / "export" / "orbit.mp4").stat().st_size > 0
    code, _, _ = run_cli(["export", run, "--format", "depth", "--views", 2], capsys)
    assert code == 0 and len(list((run / "export" / "depth").glob("*_depth.png"))) == 2
    # Overrides may follow the options (argparse alone would refuse them there).
    code, out, _ = run_cli(["import", tmp_path / "ckpt.npz", "--out", tmp_path / "imported", "stop_thresh=0.001"],
                           capsys)
    assert code == 0 and "imported" in out
    assert json.loads((tmp_path / "imported" / "config.json").read_text())["stop_thresh"] == 0.001
    code, out, _ = run_cli(["render", tmp_path / "imported", "--views", 1], capsys)
    assert code == 0 and "rendered 1 frames" in out


@pytest.mark.parametrize("args, words", [
    (["prune", "{tmp}"], ["config.json", "run folder"]),
    (["export", "{tmp}", "--format", "ply"], ["config.json"]),
    (["info", "{tmp}/nowhere"], ["no such run folder"]),
    (["export", "{run}", "--format", "stl"], ["unknown format 'stl'", "svox2, ply, mesh, video, depth"]),
    (["prune", "{run}", "--weight-thresh", "-1"], ["weight threshold", "positive"]),
    (["prune", "{run}", "--density-thresh", "nan"], ["density threshold"]),
    (["prune", "{run}", "--out", "{run}"], ["--in-place"]),
    (["export", "{run}", "--format", "mesh", "--density-thresh", "1e9"], ["no density reaches"]),
    (["import", "{tmp}/missing.npz", "--out", "{tmp}/imported"], ["missing.npz", "no such checkpoint"]),
])
def test_bad_input_is_one_line(tiny_run, tmp_path, capsys, args, words):
    args = [a.format(tmp=tmp_path, run=tiny_run) for a in args]
    code, _, err = run_cli(args, capsys)
    assert one_line_error(code, err, *words), err
    assert not (tmp_path / "imported").exists()


def test_import_of_a_malformed_checkpoint(tmp_path, capsys):
    (tmp_path / "ckpt.npz").write_bytes(b"not an npz")
    code, _, err = run_cli(["import", tmp_path / "ckpt.npz", "--out", tmp_path / "imported"], capsys)
    assert one_line_error(code, err, "ckpt.npz", "cannot read")
    assert not (tmp_path / "imported").exists()
