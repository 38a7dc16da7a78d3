"""plenox fit-many: the scene list and folder names, the summary, and whole runs on a local Ray
cluster (two scenes succeed, a broken one is reported, a re-run skips the finished ones, a
worker killed mid-scene is retried and resumes from its checkpoint) and without Ray (one
scene after another in this process)."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import TINY_FIT
from plenox.cli import main
from plenox.commands.fit_many import fit_many
from plenox.data import builtin_scene, write_blender_scene
from plenox.errors import ClusterError, OptionError
from plenox.runs import cluster
from plenox.runs.many import (SceneJob, exit_code, expand_scenes, finished, format_seconds, name_scenes,
                              summary, summary_markdown)
from plenox.runs.folder import RunDir

NEEDS_RAY = pytest.mark.skipif(not cluster.ray_installed(),
                               reason="Ray is not installed (pip install 'plenox[cluster]'; .ci/run installs it)")
FIT = ["--config", "tiny", *TINY_FIT]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """data/variant: a small built-in scene of another seed as a Blender folder; data/broken: not a scene."""
    root = tmp_path_factory.mktemp("data")
    write_blender_scene(builtin_scene(size=24, n_train=8, n_test=4, seed=3), root / "variant")
    (root / "broken").mkdir()
    (root / "broken" / "notes.txt").write_text("not a scene\n")
    return root


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs in this process (fit-many uses the running session and leaves it up)."""
    if not cluster.ray_installed():
        pytest.skip("Ray is not installed (pip install 'plenox[cluster]'; .ci/run installs it)")
    with cluster.ray_session(None, 2):
        yield


# ----- scenes and names (no fitting) ---------------------------------------------------------

def test_scenes_from_folders_globs_and_list_files(tmp_path, monkeypatch):
    for name in ("a", "b", "c"):
        (tmp_path / "data" / name).mkdir(parents=True)
    (tmp_path / "data" / "readme.md").write_text("a file, not a scene folder\n")
    (tmp_path / "data" / "list.txt").write_text("# scenes\nb\n\nbuiltin  # the generated one\n  c downscale=2 \n")
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    found = expand_scenes(["data/[ab]", "builtin", "data/list.txt", "data/a"])
    # each once, in order; a list line's overrides are that scene's own
    assert found == [(str(data / "a"), ()), (str(data / "b"), ()), ("builtin", ()), (str(data / "c"), ("downscale=2",))]
    assert expand_scenes(["data/*"]) == [(str(data / n), ()) for n in "abc"]   # folders only
    with pytest.raises(OptionError, match="data/z\\*: matches no folder"):
        expand_scenes(["data/z*"])
    for text, words in (("a\nnothing*\n", "line 2: nothing\\*: matches no folder"),
                        ("a downscale\n", "line 1: downscale is not a key=value override"),
                        ("steps=5\n", "line 1: starts with steps=5, not a scene"),
                        ("a\na steps=5\n", "listed twice with different overrides")):
        (data / "bad.txt").write_text(text)
        with pytest.raises(OptionError, match=words):
            expand_scenes(["data/bad.txt"])
    assert expand_scenes(["missing"]) == [(str(tmp_path / "missing"), ())]   # reported by its fit, not here


def test_names_are_unique_and_found_again(tmp_path):
    one, two = str(tmp_path / "x" / "lego"), str(tmp_path / "y" / "lego")
    out = tmp_path / "out"
    jobs = name_scenes([(one, ()), (two, ("downscale=2",)), ("builtin", ())], out)
    assert [j.name for j in jobs] == ["lego", "lego-2", "builtin"]
    assert jobs[1] == SceneJob("lego-2", two, str(out / "lego-2"), ("downscale=2",))
    # out/lego holds the run of `two` (say from another command): `one` must not reuse it, and
    # `two` finds its folder again whatever the order.
    RunDir(out / "lego").create({"model": "plenoxels"}, {"source": two, "downscale": 1})
    assert [j.name for j in name_scenes([(one, ()), (two, ())], out)] == ["lego-2", "lego"]
    assert [j.name for j in name_scenes([(two, ()), (one, ())], out)] == ["lego", "lego-2"]
    assert [j.name for j in name_scenes([(str(tmp_path / "summary.json"), ())], out)] == ["summary.json-2"]


def test_summary_exit_code_and_markdown():
    rows = {"a": {"name": "a", "status": "done", "user_error": False, "attempts": 1, "error": None, "psnr": 30.0,
                  "ssim": 0.9, "training_seconds": 10.0, "rays_per_s": 1e6, "voxels": 1000, "model_bytes": 2e6,
                  "wall_seconds": 12.0},
            "b": {"name": "b", "status": "skipped", "user_error": False, "attempts": 0, "error": None, "psnr": 20.0,
                  "ssim": 0.7, "training_seconds": 30.0, "rays_per_s": 3e6, "voxels": None, "model_bytes": 4e6,
                  "wall_seconds": 0.0}}
    report = summary(rows, {"out": "runs/many"}, 12.0, False)
    assert report["mean"]["psnr"] == 25.0 and report["mean"]["voxels"] == 1000 and report["mean"]["scenes"] == 2
    assert exit_code(report) == 0
    rows["c"] = {"name": "c", "status": "failed", "user_error": False, "attempts": 3, "error": "worker | lost"}
    assert exit_code(summary(rows, {}, 1.0, False)) == 1
    rows["d"] = {"name": "d", "status": "failed", "user_error": True, "attempts": 1, "error": "bad"}
    report = summary(rows, {}, 1.0, False)
    assert exit_code(report) == 2 and report["mean"]["psnr"] == 25.0
    page = summary_markdown(report)
    assert "| a | done | 30.00 | 0.9000 | 10.0 | 1,000,000 | 1,000 | 2.0 | 1 |  |" in page
    assert "| c | failed |" in page and "worker \\| lost" in page
    assert "| mean of 2 | | 25.00 | 0.8000 |" in page
    assert [format_seconds(s) for s in (4.2, 725, 11220)] == ["5s", "12m05s", "3h07m"]


def test_out_that_cannot_be_written_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["fit-many", "builtin", "--out", str(tmp_path / "file" / "runs"), *FIT]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and "cannot write there" in err[0]


# ----- on Ray ---------------------------------------------------------------------------------

@NEEDS_RAY
def test_two_succeed_one_broken_then_rerun_skips(ray_cluster, scenes, tmp_path, capsys):
    out = tmp_path / "many"
    listed = tmp_path / "scenes.txt"   # the variant is evaluated on 2 views, the others on TINY_FIT's 4
    listed.write_text(f"builtin\n{scenes / 'variant'} eval_views=2\n{scenes / 'broken'}\n")
    report = fit_many([str(listed)], str(out), "tiny", TINY_FIT, retries=1, cpus_per_scene=1, progress=False)
    rows = {row["name"]: row for row in report["scenes"]}
    assert [rows[n]["status"] for n in ("builtin", "variant", "broken")] == ["done", "done", "failed"]
    assert exit_code(report) == 2
    broken = rows["broken"]
    assert broken["user_error"] and broken["attempts"] == 1   # bad data is not retried
    assert str(scenes / "broken") in broken["error"] and "unknown scene format" in broken["error"]
    for name in ("builtin", "variant"):
        row = rows[name]
        metrics = RunDir(out / name).read_metrics()["results"]
        assert row["psnr"] == metrics["psnr"] > 10 and row["ssim"] == metrics["ssim"]
        assert row["rays_per_s"] > 0 and row["voxels"] > 0 and row["model_bytes"] > 0 and row["attempts"] == 1
    assert not (out / "broken").exists()
    assert [RunDir(out / n).read_metrics()["protocol"]["views"] for n in ("builtin", "variant")] == [4, 2]
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["scenes"] == json.loads(json.dumps(report["scenes"]))
    assert on_disk["mean"]["psnr"] == pytest.approx((rows["builtin"]["psnr"] + rows["variant"]["psnr"]) / 2)
    assert on_disk["settings"]["runner"] == "the running Ray session" and on_disk["settings"]["cpus_per_scene"] == 1
    page = (out / "summary.md").read_text()
    assert "| broken | failed |" in page and "| mean of 2 |" in page

    grids = {n: (out / n / "grid.npz").stat().st_mtime_ns for n in ("builtin", "variant")}
    capsys.readouterr()
    assert main(["fit-many", str(listed), "--out", str(out), "--cpus-per-scene", "1", "--quiet", *FIT]) == 2
    printed = capsys.readouterr()
    assert "2 of 3 scenes succeeded (2 done before), 1 failed" in printed.out
    assert printed.err.strip().startswith("broken: failed (1 try): ") and len(printed.err.splitlines()) == 1
    again = {row["name"]: row for row in json.loads((out / "summary.json").read_text())["scenes"]}
    assert again["builtin"]["status"] == again["variant"]["status"] == "skipped"
    assert again["builtin"]["psnr"] == rows["builtin"]["psnr"]
    assert grids == {n: (out / n / "grid.npz").stat().st_mtime_ns for n in grids}


@NEEDS_RAY
def test_out_not_shared_with_the_workers_is_one_line(ray_cluster, tmp_path, monkeypatch, capsys):
    # On one machine a worker's file always appears here; make this machine miss it.
    monkeypatch.setattr(cluster, "read_text", lambda path: "something else")
    with pytest.raises(ClusterError, match="does not appear on this machine; --out must be storage that every node"):
        fit_many(["builtin"], str(tmp_path / "out"), "tiny", TINY_FIT, progress=False)
    assert list((tmp_path / "out").iterdir()) == []   # the probe file is removed, nothing was fitted


@NEEDS_RAY
@pytest.mark.slow
def test_a_killed_worker_is_retried_and_resumes(tmp_path):
    """kill -9 of the Ray worker fitting a scene (after its first checkpoint): the scene is
    tried again, continues from the checkpoint and finishes; the command's own local cluster
    stops with it."""
    out = tmp_path / "many"
    # 3000 steps: with the kernels compiled (earlier tests fill the Numba cache) 400 steps took under
    # 2 s, and CI twice missed the worker between its first checkpoint and the fit's end.
    steps = ["steps=3000", "lr_decay_steps=3000", "checkpoint_every_s=1"]
    ray_tmp = Path(tempfile.mkdtemp(prefix="fm"))   # short: Ray's socket paths live under it
    proc = subprocess.Popen([sys.executable, "-m", "plenox.cli", "fit-many", "builtin", "--out", str(out),
                             "--local-cpus", "2", "--retries", "1", "--quiet", *FIT, *steps],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "TMPDIR": str(ray_tmp)})
    run = RunDir(out / "builtin")
    deadline = time.monotonic() + 240
    workers = []
    # A checkpoint, a log record and the worker under its task's title (Ray renames the process
    # when the task starts and back to ray::IDLE when it ends).
    while not (run.state_file.exists() and run.read_log() and workers):
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "the fit did not reach its first checkpoint in time"
        time.sleep(0.05)
        workers = [pid for pid, line in command_lines().items() if line.startswith("ray::plenox fit builtin")]
    assert len(workers) == 1 and not finished(run)
    os.kill(workers[0], signal.SIGKILL)
    killed_log = run.read_log()   # the next attempt needs seconds to start: this is the killed one's log
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    row = json.loads((out / "summary.json").read_text())["scenes"][0]
    assert row["status"] == "done" and row["attempts"] == 2 and row["resumed"]
    assert row["history"] == ["the worker process died (killed, out of memory or crashed)"]
    log = run.read_log()
    assert log[-1]["step"] == 3000 and finished(run)
    assert log[:len(killed_log)] == killed_log   # continued: a new fit would have started a new log
    # The command's cluster stopped with it: no Ray process under its temporary folder, which is gone.
    assert not [line for line in command_lines().values() if str(ray_tmp) in line]
    assert list(ray_tmp.iterdir()) == []
    ray_tmp.rmdir()


def command_lines() -> dict[int, str]:
    """pid -> command line (as the process shows it) of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return found


# ----- without Ray ----------------------------------------------------------------------------

def test_without_ray_the_scenes_fit_one_after_another(scenes, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)   # import ray fails, as when it is not installed
    out = tmp_path / "many"
    assert main(["fit-many", str(scenes / "variant"), str(scenes / "broken"), "--out", str(out), "--quiet",
                 *FIT]) == 2
    printed = capsys.readouterr()
    assert printed.err.splitlines()[0] == ("Ray is not installed (pip install 'plenox[cluster]'): fitting the 2 "
                                           "scenes one after another here")
    report = json.loads((out / "summary.json").read_text())
    assert [(r["name"], r["status"]) for r in report["scenes"]] == [("variant", "done"), ("broken", "failed")]
    assert report["settings"]["runner"].startswith("one after another")
    assert main(["fit-many", "builtin", "--out", str(out), "--address", "auto", *FIT]) == 2
    assert "--address and --gpus-per-scene need Ray" in capsys.readouterr().err

    # A run stopped after a checkpoint (one newer than its metrics) is resumed, not started again.
    run = RunDir(out / "variant")
    os.utime(run.state_file, ns=(time.time_ns(), (run.eval_dir() / "metrics.json").stat().st_mtime_ns + 10**9))
    assert not finished(run)
    assert main(["fit-many", str(scenes / "variant"), "--out", str(out), "--quiet", *FIT]) == 0
    row = json.loads((out / "summary.json").read_text())["scenes"][0]
    assert row["status"] == "done" and row["resumed"] and finished(run)
    assert [r["step"] for r in run.read_log() if "loss" in r][-1] == 60   # the budget was spent: no more steps


def test_a_run_of_another_scene_is_never_touched(scenes, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    out = tmp_path / "many"
    # out/variant holds a run of the built-in scene (say, from plenox fit --out runs/many/variant).
    RunDir(out / "variant").create({"model": "plenoxels"}, {"source": "builtin", "downscale": 1})
    files = {p: p.read_bytes() for p in (out / "variant").iterdir()}
    report = fit_many([str(scenes / "variant")], str(out), "tiny", TINY_FIT, progress=False)
    assert report["scenes"][0]["name"] == "variant-2" and report["scenes"][0]["status"] == "done"
    assert {p: p.read_bytes() for p in (out / "variant").iterdir()} == files
