"""Every file plenox reads, damaged the ways disks and interrupted copies damage files: the
command ends with exit 0 (the damage was harmless) or with exit 2 and one line naming the
file; never a traceback, never exit 1, and a failed command changes nothing in the run.

Damage: truncation at several points, flipped bytes at several offsets, an empty file, and
files of other kinds under the expected name. Truncated, empty and foreign files must be
refused (exit 2), except a log cut inside its last line, which is an interrupted append.
"""

import functools
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from plenox.cli import main

NERF_FAST = ["steps=2", "n_coarse=8", "n_fine=8", "netdepth=2", "netwidth=16", "batch_rays=64", "chunk=64",
             "eval_views=1", "log_every=1"]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
RANDOM = np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes()
TRUNCATE_AT = (0.0, 0.1, 0.5, 0.9, 0.999)
FLIP_AT = (0.0, 0.2, 0.45, 0.7, 0.98)


def damages(data: bytes, other_kind: bytes) -> list[tuple[str, bytes, bool]]:
    """(name, damaged bytes, must_refuse) for every way this test damages ``data``."""
    cases = [("empty", b"", True), ("png", PNG, True), ("random", RANDOM, True), ("other-kind", other_kind, True)]
    for fraction in TRUNCATE_AT:
        cut = min(int(len(data) * fraction), len(data) - 1)
        # Cutting only trailing whitespace (a JSON file's last newline) harms nothing.
        cases.append((f"truncated-{fraction}", data[:cut], bool(data[cut:].strip())))
    for fraction in FLIP_AT:
        at = min(int(len(data) * fraction), len(data) - 1)
        flipped = bytearray(data)
        flipped[at] ^= 0xFF
        cases.append((f"flipped-{fraction}", bytes(flipped), False))
    return cases


def folder_digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    """Generate the built-in scene once, and give torch one thread (tiny work on shared cores)."""
    from plenox.data import builtin_scene

    monkeypatch.setattr("plenox.runs.loading.builtin_scene", functools.cache(builtin_scene))
    monkeypatch.setattr("plenox.models.nerf.configure_threads", lambda: torch.set_num_threads(1))


@pytest.fixture(scope="module")
def nerf_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz_nerf") / "run"
    assert main(["fit", "--model", "nerf", "--config", "nerf_tiny", "--out", str(path), "--quiet", *NERF_FAST]) == 0
    return path


def grid_run_with_records(tiny_run, folder: Path) -> Path:
    """A copy of the tiny grid run with prune.json and import.json as those commands write them."""
    run = folder / "run"
    shutil.copytree(tiny_run, run)
    (run / "prune.json").write_text(json.dumps({
        "source": "x", "out": str(run), "rule": "weight", "weight_thresh": 0.256, "threshold": 0.01, "dilate": 1,
        "ray_stride": 1, "before": {"voxels": 10, "psnr": 20.0}, "after": {"voxels": 5, "psnr": 20.0}}))
    (run / "import.json").write_text(json.dumps({"checkpoint": "ckpt.npz", "scene_scale": 1.0}))
    return run


# (file in the run, file of another kind to put there, commands that read it)
GRID_CASES = [
    ("grid.npz", "state.pt", [["info", "{run}"], ["eval", "{run}", "--views", "1", "--device", "cpu"]]),
    ("state.pt", "grid.npz", [["fit", "--out", "{run}", "--resume", "--quiet", "--device", "cpu"]]),
    ("config.json", "log.jsonl", [["info", "{run}"], ["eval", "{run}", "--views", "1", "--device", "cpu"]]),
    ("scene.json", "grid.npz", [["info", "{run}"], ["eval", "{run}", "--views", "1", "--device", "cpu"]]),
    ("log.jsonl", "grid.npz", [["info", "{run}"]]),
    ("eval/metrics.json", "config.json", [["info", "{run}"]]),
    ("prune.json", "scene.json", [["info", "{run}"]]),
    ("import.json", "grid.npz", [["info", "{run}"]]),
]
NERF_CASES = [
    ("nerf.pt", "config.json", [["info", "{run}"], ["eval", "{run}", "--views", "1", "--device", "cpu"]]),
    ("state.pt", "nerf.pt", [["fit", "--out", "{run}", "--resume", "--quiet", "--device", "cpu"]]),
]


def check_case(run: Path, name: str, data: bytes, must_refuse: bool, commands, capsys) -> None:
    target = run / name
    original = target.read_bytes()
    target.write_bytes(data)
    try:
        for words in commands:
            before = folder_digest(run)
            code = main([w.format(run=run) for w in words])
            out, err = capsys.readouterr()
            where = f"{words[0]} with {name} damaged ({len(data)} bytes: {data[:40]!r})"
            assert "Traceback" not in out + err, where
            assert code in ((2,) if must_refuse else (0, 2)), f"{where}: exit {code}: {err}"
            if code == 2:
                assert len(err.strip().splitlines()) == 1 and Path(name).name in err, f"{where}: {err}"
                assert folder_digest(run) == before, f"{where}: a failed command changed the run"
    finally:
        target.write_bytes(original)


def fuzz(run: Path, cases, capsys) -> int:
    count = 0
    for name, other, commands in cases:
        original, other_kind = (run / name).read_bytes(), (run / other).read_bytes()
        for label, data, must_refuse in damages(original, other_kind):
            if name == "log.jsonl" and label.startswith(("truncated", "empty")):
                must_refuse = False   # a cut inside the last line is an interrupted append: dropped
            check_case(run, name, data, must_refuse, commands, capsys)
            count += len(commands)
    return count


def test_damaged_grid_run_files(tiny_run, tmp_path, capsys):
    run = grid_run_with_records(tiny_run, tmp_path)
    assert fuzz(run, GRID_CASES, capsys) == 14 * 11


def test_damaged_nerf_run_files(nerf_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(nerf_run, run)
    assert fuzz(run, NERF_CASES, capsys) == 14 * 3


def test_damaged_files_given_on_the_command_line(tiny_run, tmp_path, capsys):
    """An svox2 checkpoint to import, a config file to fit with, a camera path to render."""
    ckpt, config, camera_path = tmp_path / "ckpt.npz", tmp_path / "my.json", tmp_path / "camera_path.json"
    shutil.copyfile(tiny_run / "grid.npz", ckpt)
    config.write_text(json.dumps({"steps": 2, "resolutions": [[8, 8, 8]], "upsample_steps": []}))
    pose = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 4.0, 0, 0, 0, 1]
    camera_path.write_text(json.dumps({"camera_type": "perspective", "render_width": 16, "render_height": 12,
                                       "fps": 10, "seconds": 0.2, "camera_path": [
                                           {"camera_to_world": pose, "fov": 50.0, "aspect": 16 / 12}] * 2}))
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    cases = [(ckpt, (tiny_run / "state.pt").read_bytes(), ["import", str(ckpt), "--out", str(tmp_path / "imp")]),
             (config, (tiny_run / "grid.npz").read_bytes(),
              ["fit", "--config", str(config), "--out", str(tmp_path / "fit"), "--quiet", "--device", "cpu"]),
             (camera_path, (tiny_run / "grid.npz").read_bytes(),
              ["render", str(run), "--path", str(camera_path), "--device", "cpu"])]
    outputs = [tmp_path / "imp", tmp_path / "fit", run / "renders" / "path"]
    count = 0
    for path, other_kind, words in cases:
        original = path.read_bytes()
        for label, data, must_refuse in damages(original, other_kind):
            path.write_bytes(data)
            code = main(words)
            out, err = capsys.readouterr()
            assert "Traceback" not in out + err
            assert code in ((2,) if must_refuse else (0, 2)), f"{path.name} {label}: exit {code}: {err}"
            if code == 2:
                assert len(err.strip().splitlines()) == 1 and path.name in err, err
                assert not (tmp_path / "imp").exists() and not (tmp_path / "fit" / "grid.npz").exists()
                assert not (run / "renders" / "path").exists()
            else:
                for folder in outputs:
                    shutil.rmtree(folder, ignore_errors=True)
            count += 1
        path.write_bytes(original)
    assert count == 42
