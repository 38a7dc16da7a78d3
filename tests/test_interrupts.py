"""Ctrl-C and kill -9 in the middle of fit, render, export and prune leave every file of the run
readable: every file plenox writes is replaced atomically (plenox.io.atomic), and the log's
appends lose at most an unfinished last line, which the reader drops."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import pytest

from plenox.cli import main
from plenox.io.checked import read_torch
from plenox.models.grid import SparseGrid
from plenox.runs.folder import RunDir

pytestmark = pytest.mark.slow
START_TIMEOUT = 240.0   # seconds for a command to reach the point where it is interrupted


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "plenox.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})


def wait_for(condition, proc: subprocess.Popen) -> None:
    """Poll until ``condition()`` holds (the command is mid-way), failing if the command ends first."""
    deadline = time.monotonic() + START_TIMEOUT
    while not condition():
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "the command did not get going in time"
        time.sleep(0.05)


def interrupt(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode()


def assert_readable(folder: Path) -> int:
    """Read every file under ``folder`` with the reader plenox uses for its kind; returns how many."""
    count = 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        if path.name.startswith(".") and ".tmp" in path.name:
            continue   # a write killed before its rename: never read as the file it would have replaced
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            assert RunDir(folder).read_log() is not None
        elif path.suffix == ".npz":
            SparseGrid.load(path)
        elif path.suffix == ".pt":
            read_torch(path)
        elif path.suffix == ".png":
            assert iio.imread(path).size
        count += 1
    return count


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_fit(tmp_path, sig):
    run = tmp_path / "run"
    proc = start("fit", "--out", run, "--config", "tiny", "--quiet", "--device", "cpu", "steps=1000000",
                 "checkpoint_every_s=0.3", "log_every=5", "resolutions=[[16,16,16],[24,24,24]]",
                 "upsample_steps=[900000]", "eval_views=1")
    log = run / "log.jsonl"
    wait_for(lambda: (run / "state.pt").exists() and log.exists() and log.read_text().count("\n") >= 3, proc)
    code, err = interrupt(proc, sig)
    assert "Traceback" not in err
    assert code == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    assert assert_readable(run) >= 5
    # The run goes on from what was left.
    assert main(["fit", "--out", str(run), "--resume", "--quiet", "--device", "cpu", "--minutes", "0.01"]) == 0


@pytest.mark.parametrize("command, sig", [("render", signal.SIGKILL), ("render", signal.SIGINT),
                                          ("export", signal.SIGKILL)])
def test_render_and_export_video(tiny_run, tmp_path, command, sig):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    video = run / "export" / "orbit.mp4" if command == "export" else tmp_path / "orbit.mp4"
    args = (["render", run, "--orbit", 3000, "--video", video] if command == "render"
            else ["export", run, "--format", "video", "--frames", 3000])
    proc = start(*args, "--device", "cpu")
    frames = run / "renders" / "orbit"
    wait_for(lambda: frames.exists() and len(list(frames.glob("*.png"))) >= 5, proc)
    code, err = interrupt(proc, sig)
    assert "Traceback" not in err
    assert code == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    assert not video.exists()   # the video is written whole at the end, or not at all
    assert assert_readable(run) >= 10


def test_prune(tiny_run, tmp_path):
    run, out = tmp_path / "run", tmp_path / "pruned"
    shutil.copytree(tiny_run, run)
    before = digest(run)
    proc = start("prune", run, "--out", out, "--views", 0, "--device", "cpu")
    wait_for(lambda: (out / "config.json").exists(), proc)
    interrupt(proc, signal.SIGKILL)
    assert digest(run) == before           # the source run is never touched
    assert_readable(out)
