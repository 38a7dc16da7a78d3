"""The plenox command: one-line errors with exit code 2, nothing half-written."""

import json


from plenox.cli import main


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_missing_data_folder(tmp_path, capsys):
    code, _, err = run_cli(["fit", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    assert "nowhere" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_malformed_transforms(tmp_path, capsys):
    scene = tmp_path / "scene"
    scene.mkdir()
    (scene / "transforms_train.json").write_text("{not json")
    code, _, err = run_cli(["fit", str(scene), "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "transforms_train.json" in err
    assert not (tmp_path / "run").exists()


def test_unknown_config_key(tmp_path, capsys):
    code, _, err = run_cli(["fit", "--out", str(tmp_path / "run"), "--config", "tiny", "bogus=1"], capsys)
    assert code == 2 and "bogus" in err
    assert not (tmp_path / "run").exists()


def test_eval_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    code, _, err = run_cli(["eval", str(tmp_path)], capsys)
    assert code == 2 and "config.json" in err


def test_cuda_requested_without_gpu(tmp_path, capsys, monkeypatch):
    import plenox.backend as backend
    monkeypatch.setattr(backend, "cuda_usable", lambda: False)
    code, _, err = run_cli(["fit", "--out", str(tmp_path / "run"), "--device", "cuda"], capsys)
    assert code == 2 and "CUDA" in err


def test_fit_render_eval_on_builtin(tmp_path, capsys):
    out = tmp_path / "run"
    fast = ["resolutions=[[16,16,16],[24,24,24]]", "upsample_steps=[20]", "steps=40", "batch_size=512",
            "eval_views=2", "log_every=10"]
    code, stdout, _ = run_cli(["fit", "--out", str(out), "--config", "tiny", "--quiet", *fast], capsys)
    assert code == 0 and "PSNR" in stdout and str(out) in stdout
    code, stdout, _ = run_cli(["render", str(out), "--views", "2", "--depth"], capsys)
    assert code == 0 and "fps" in stdout
    assert len(list((out / "renders" / "test").glob("*_depth.png"))) == 2
    code, _, _ = run_cli(["render", str(out), "--orbit", "3", "--video", str(tmp_path / "orbit.mp4")], capsys)
    assert code == 0 and (tmp_path / "orbit.mp4").stat().st_size > 0
    code, stdout, _ = run_cli(["eval", str(out), "--views", "3"], capsys)
    assert code == 0
    assert json.loads((out / "eval" / "metrics.json").read_text())["protocol"]["views"] == 3
    code, _, err = run_cli(["fit", "--out", str(out), "--config", "tiny"], capsys)
    assert code == 2 and "--force" in err
