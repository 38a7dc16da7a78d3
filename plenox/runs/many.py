"""Fitting many scenes into one folder: which scenes, each scene's run folder, one fit per
scene (new, resumed or skipped), retries, the live progress line and the summary.

Where the fits run is a *pool*: ``SequentialPool`` here (one scene after another in this
process) or ``plenox.runs.cluster.RayPool`` (one Ray task per scene). A pool has
``capacity()`` (how many scenes may fit at once), ``start(job, options, first_attempt)``,
``wait(timeout) -> [(name, outcome)]`` and ``stop() -> [(name, outcome)]`` (Ctrl-C: ask the
running fits to checkpoint and return). ``fit_scenes`` schedules over any pool.

Each scene writes only its own run folder OUT/<name>/ (names are unique, and a folder that
holds another scene's run is never reused); the summary files are OUT/summary.md and
OUT/summary.json, rewritten atomically whenever a scene ends.
"""

from __future__ import annotations

import glob
import itertools
import math
import shlex
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from plenox.errors import OptionError, UserError
from plenox.io.atomic import atomic_write_json, atomic_write_text
from plenox.io.checked import read_text
from plenox.runs.fitting import fit_run
from plenox.runs.folder import RunDir
from plenox.runs.loading import BUILTIN, run_config
from plenox.runs.registry import model_kind

LIST_SUFFIX = ".txt"                       # a file of scenes, one per line
SUMMARY_FILES = ("summary.md", "summary.json")
SUCCEEDED = ("done", "skipped")
PROGRESS_SECONDS = 2.0                     # how often the progress line's ETA is refreshed while fits run


@dataclass(frozen=True)
class SceneJob:
    """One scene to fit: ``name`` (its folder under --out), ``source`` ("builtin" or the
    absolute path of a scene folder or scene file), ``out`` (the absolute run folder) and
    ``overrides`` (key=value words for this scene alone, after the command's)."""

    name: str
    source: str
    out: str
    overrides: tuple = ()


@dataclass(frozen=True)
class FitOptions:
    """What every scene's fit gets, as ``plenox fit`` takes it; ``threads``: CPU threads of
    one fit (None: leave the process's setting)."""

    config: str | None = None
    overrides: tuple = ()
    minutes: float | None = None
    model: str | None = None
    device: str = "auto"
    force: bool = False
    threads: int | None = None


# ----- which scenes ------------------------------------------------------------------------

def expand_scenes(words) -> list[tuple[str, tuple]]:
    """The scenes the command-line words name, in order, each once, as (source, overrides):
    "builtin", scene folders or files (absolute paths), a glob's matching folders (sorted),
    and the lines of a ``.txt`` list file, each a scene or glob and optionally key=value
    overrides for it alone (relative paths are relative to the list's folder; blank lines and
    ``#`` comments skipped). A missing path is kept: its fit reports it. OptionError when a
    scene comes twice with different overrides (fit it into another --out instead)."""
    scenes = []
    for word in words:
        path = Path(word)
        if path.is_file() and path.suffix == LIST_SUFFIX:
            scenes += _listed(path)
        else:
            scenes += [(source, ()) for source in _matches(word, Path.cwd(), word)]
    unique = {}
    for source, overrides in scenes:
        if unique.setdefault(source, overrides) != overrides:
            raise OptionError(f"{source}: listed twice with different overrides; fit it again into another --out")
    if not unique:
        raise OptionError("no scenes given")
    return list(unique.items())


def _listed(path: Path) -> list[tuple[str, tuple]]:
    """The scenes a list file names, with their overrides."""
    scenes = []
    for number, line in enumerate(read_text(path, "give a text file of scenes, one per line").splitlines(), 1):
        where = f"{path}: line {number}"
        try:
            words = shlex.split(line, comments=True)
        except ValueError as err:   # an unclosed quote
            raise OptionError(f"{where}: {err}") from None
        if not words:
            continue
        if "=" in words[0] and not (path.parent / words[0]).exists():
            raise OptionError(f"{where}: starts with {words[0]}, not a scene")
        overrides = tuple(words[1:])
        bad = [w for w in overrides if "=" not in w]
        if bad:
            raise OptionError(f"{where}: {bad[0]} is not a key=value override (one scene per line)")
        scenes += [(source, overrides) for source in _matches(words[0], path.parent, f"{where}: {words[0]}")]
    return scenes


def _matches(word: str, base: Path, where: str) -> list[str]:
    """"builtin", or ``word`` (relative to ``base``) as an absolute path, or the folders it
    matches if it is a glob."""
    if word == BUILTIN:
        return [BUILTIN]
    path = base / Path(word).expanduser()
    if path.exists() or not glob.has_magic(word):
        return [str(path.resolve())]
    found = sorted(str(Path(p).resolve()) for p in glob.glob(str(path)) if Path(p).is_dir())
    if not found:
        raise OptionError(f"{where}: matches no folder")
    return found


def scene_name(source: str) -> str:
    """The folder name a scene's run gets: "builtin", the scene folder's name, or for a scene
    file (transforms_train.json, poses_bounds.npy) its folder's name."""
    if source == BUILTIN:
        return BUILTIN
    path = Path(source)
    return (path.parent.name if path.is_file() else path.name) or "scene"


def name_scenes(scenes: list[tuple[str, tuple]], out: Path) -> list[SceneJob]:
    """A job per (source, overrides) with a unique folder under ``out``: the scene's name, else
    name-2, name-3, ... when an earlier scene took it or ``out``/name holds another scene's run
    (so a re-run finds each scene's folder again, whatever the order of the scenes)."""
    taken = set(SUMMARY_FILES)
    jobs = []
    for source, overrides in scenes:
        base = scene_name(source)
        name = next(candidate for n in itertools.count(1)
                    if (candidate := base if n == 1 else f"{base}-{n}") not in taken
                    and holds_scene_or_nothing(out / candidate, source))
        taken.add(name)
        jobs.append(SceneJob(name, source, str(out / name), tuple(overrides)))
    return jobs


def holds_scene_or_nothing(folder: Path, source: str) -> bool:
    """Whether ``folder`` holds no run, or a run of ``source`` (its scene.json says so)."""
    run = RunDir(folder)
    if not run.exists():
        return True
    try:
        return run.scene_info()["source"] == source
    except UserError:   # unreadable: treat as someone else's
        return False


def prepare_out(out: Path) -> None:
    """Create ``out`` and check that this machine can write there (OptionError if not)."""
    probe = out / f".plenox-probe-{uuid.uuid4().hex}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(probe, "probe")
        probe.unlink()
    except OSError as err:
        raise OptionError(f"--out {out}: cannot write there ({err.strerror or one_line(err)})") from None


# ----- one scene ---------------------------------------------------------------------------

def finished(run: RunDir) -> bool:
    """Whether a run's fit completed: its eval/metrics.json is readable and no older than its
    last checkpoint (an interrupted ``fit --resume`` leaves a newer checkpoint)."""
    metrics = run.eval_dir() / "metrics.json"
    if not (metrics.is_file() and run.state_file.is_file()):
        return False
    if metrics.stat().st_mtime_ns < run.state_file.stat().st_mtime_ns:
        return False
    try:
        run.read_metrics()
    except UserError:
        return False
    return True


def use_threads(threads: int) -> None:
    """Let torch and the Numba kernels use ``threads`` CPU threads in this process."""
    import numba

    torch.set_num_threads(threads)
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def fit_scene(job: SceneJob, options: FitOptions, first_attempt: bool, progress: bool = False) -> dict:
    """Fit one scene into its run folder as ``plenox fit`` would: a new fit, or a resumed one
    when the folder holds a checkpoint (``--force`` on the first attempt: a new fit anyway);
    nothing when the run already finished. Never raises for a failed fit: returns the outcome
    {status: done | interrupted | failed, error: one line or None, user_error, traceback,
    resumed, seconds (wall)}."""
    start = time.perf_counter()
    run = RunDir(job.out)
    force = options.force and first_attempt
    resume = not force and run.exists() and run.state_file.exists()
    outcome = {"status": "done", "error": None, "user_error": False, "traceback": None, "resumed": False}
    try:
        if options.threads:
            use_threads(options.threads)
        if force or not finished(run):   # (a lost worker may have finished the fit before it went)
            outcome["resumed"] = resume
            # A folder with a run but no checkpoint was stopped before its first one: start it again.
            metrics = fit_run(None if resume else job.source, job.out, options.config,
                              (*options.overrides, *job.overrides),
                              options.minutes, resume=resume, force=force or (run.exists() and not resume),
                              device=options.device, progress=progress, model=options.model)
            if metrics.get("interrupted"):
                outcome["status"] = "interrupted"
    except KeyboardInterrupt:   # Ctrl-C (or a cancelled Ray task) outside training: nothing half-written
        outcome["status"] = "interrupted"
    except UserError as err:
        outcome.update(status="failed", error=str(err), user_error=True)
    except Exception as err:   # out of memory, a bug, a full disk: worth another try
        outcome.update(status="failed", error=one_line(err), traceback=traceback.format_exc())
    outcome["seconds"] = time.perf_counter() - start
    return outcome


def one_line(err: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")[:300]


def run_figures(run: RunDir) -> dict:
    """What the summary shows of a finished run: eval split, PSNR, SSIM, training seconds,
    training rays/s (all steps' rays over the training time), voxels (grids) and the model
    file's bytes. Figures a damaged log cannot give are None."""
    metrics = run.read_metrics()
    figures = {"split": metrics["protocol"]["split"], "psnr": metrics["results"]["psnr"],
               "ssim": metrics["results"]["ssim"],
               "training_seconds": metrics["protocol"].get("training_seconds"),
               "rays_per_s": None, "voxels": None, "model_bytes": None}
    try:
        cfg = run_config(run)
        model_file = run.path / model_kind(cfg.model).model_file
        figures["model_bytes"] = model_file.stat().st_size if model_file.is_file() else None
        steps = [r for r in run.read_log() if "loss" in r]
    except UserError:
        return figures
    if steps:
        last = steps[-1]
        figures["rays_per_s"] = last["step"] * cfg.rays_per_step / max(last["time"], 1e-9)
        figures["voxels"] = last.get("voxels")
    return figures


# ----- many scenes -------------------------------------------------------------------------

class SequentialPool:
    """Fits the scenes one after another in this process (when Ray is not installed)."""

    def __init__(self, progress: bool = True):
        self.progress = progress
        self.queued = []

    def capacity(self) -> int:
        return 1

    def start(self, job: SceneJob, options: FitOptions, first_attempt: bool) -> None:
        self.queued.append((job, options, first_attempt))

    def wait(self, timeout: float) -> list[tuple[str, dict]]:
        """Fit the next scene now (``timeout`` does not apply: one fit runs at a time)."""
        if not self.queued:
            return []
        job, options, first_attempt = self.queued.pop(0)
        return [(job.name, fit_scene(job, options, first_attempt, self.progress))]

    def stop(self) -> list[tuple[str, dict]]:
        """Ctrl-C reaches the fit in this process itself, which checkpoints; nothing else runs."""
        self.queued.clear()
        return []


def fit_scenes(jobs: list[SceneJob], options: FitOptions, pool, retries: int, out: Path, settings: dict,
               progress: bool = True) -> dict:
    """Fit every job on ``pool``: skip the finished runs (unless ``options.force``), start as
    many as the pool takes, try a failed scene again up to ``retries`` times unless its error
    is the user's (bad data or config fail the same way every time), and keep the summary in
    ``out`` current. Ctrl-C stops the running fits at a checkpoint. Returns the summary
    (see ``summary``); its "interrupted" is True after Ctrl-C."""
    rows = {job.name: {"name": job.name, "source": job.source, "overrides": list(job.overrides), "run": job.out,
                       "status": "pending", "attempts": 0,
                       "error": None, "user_error": False, "resumed": False, "wall_seconds": 0.0, "history": []}
            for job in jobs}
    queue = []
    for job in jobs:
        if not options.force and finished(RunDir(job.out)):
            rows[job.name].update(status="skipped", **run_figures(RunDir(job.out)))
        else:
            queue.append(job)
    started = time.perf_counter()
    line = ProgressLine(len(jobs), len(jobs) - len(queue), options.minutes, progress)
    running: dict[str, float] = {}   # scene name -> when its current attempt started
    interrupted = False

    def record(name: str, outcome: dict) -> None:
        """Account for an attempt's outcome: retry it, or settle the scene's row."""
        nonlocal interrupted
        row = rows[name]
        row["wall_seconds"] += time.perf_counter() - running.pop(name)
        row["resumed"] = row["resumed"] or outcome.get("resumed", False)
        if outcome["status"] == "failed":
            row["history"].append(outcome["error"])
            if not outcome["user_error"] and row["attempts"] <= retries and not interrupted:
                row["status"] = "retrying"
                queue.append(next(job for job in jobs if job.name == name))
                return
        row.update(status=outcome["status"], error=outcome["error"], user_error=outcome["user_error"],
                   traceback=outcome.get("traceback"))
        if outcome["status"] == "done":
            line.took.append(row["wall_seconds"])
            try:
                row.update(run_figures(RunDir(row["run"])))
            except UserError as err:   # e.g. shared storage that shows the worker's files late
                row["error"] = f"fitted, but its results cannot be read here: {err}"
        interrupted = interrupted or outcome["status"] == "interrupted"
        write_summary(out, summary(rows, settings, time.perf_counter() - started, interrupted))

    write_summary(out, summary(rows, settings, 0.0, False))
    try:
        while (queue and not interrupted) or running:
            while queue and not interrupted and len(running) < pool.capacity():
                job = queue.pop(0)
                rows[job.name]["attempts"] += 1
                rows[job.name]["status"] = "running"
                running[job.name] = time.perf_counter()
                pool.start(job, options, first_attempt=rows[job.name]["attempts"] == 1)
            for name, outcome in pool.wait(PROGRESS_SECONDS):
                record(name, outcome)
            line.show(rows, running)
    except KeyboardInterrupt:
        interrupted = True
        for name, outcome in pool.stop():
            record(name, outcome)
        for name in list(running):
            record(name, {"status": "interrupted", "error": None, "user_error": False})
    finally:
        line.close()
    report = summary(rows, settings, time.perf_counter() - started, interrupted)
    write_summary(out, report)
    return report


class ProgressLine:
    """The live line on stderr: scenes done / running / failed, and the time left."""

    def __init__(self, total: int, skipped: int, minutes: float | None, enabled: bool):
        self.bar = tqdm(total=total, initial=skipped, unit="scene", disable=not enabled, dynamic_ncols=True,
                        desc="fit-many", bar_format="{desc} {n_fmt}/{total_fmt} |{bar}| [{elapsed}{postfix}]")
        self.budget = minutes * 60.0 if minutes else None
        self.took: list[float] = []    # wall seconds of each scene fitted by this command
        self.slots = 1                 # the most scenes seen running at once

    def show(self, rows: dict, running: dict) -> None:
        counts = count_statuses(rows.values())
        self.slots = max(self.slots, len(running))
        self.bar.n = counts["done"] + counts["skipped"] + counts["failed"]
        self.bar.set_postfix_str(f"done {counts['done'] + counts['skipped']}, running {len(running)}, "
                                 f"failed {counts['failed']}, ETA {self.eta(counts, running)}")

    def eta(self, counts: dict, running: dict) -> str:
        """Pending and running scenes at the mean wall time of the scenes fitted so far (before
        the first: the --minutes budget), shared among the scenes that run at once."""
        mean = sum(self.took) / len(self.took) if self.took else self.budget
        if mean is None:
            return "?"
        now = time.perf_counter()
        left = (counts["pending"] + counts["retrying"]) * mean + sum(max(mean - (now - t), 0.0)
                                                                     for t in running.values())
        return format_seconds(left / self.slots)

    def close(self) -> None:
        self.bar.close()


def format_seconds(seconds: float) -> str:
    """"45s", "12m05s", "3h07m"."""
    seconds = int(math.ceil(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# ----- the summary -------------------------------------------------------------------------

FIGURES = ("psnr", "ssim", "training_seconds", "rays_per_s", "voxels", "model_bytes", "wall_seconds")
STATUSES = ("done", "skipped", "failed", "interrupted", "running", "retrying", "pending")


def count_statuses(rows) -> dict:
    counts = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[row["status"]] += 1
    return counts


def summary(rows: dict, settings: dict, seconds: float, interrupted: bool) -> dict:
    """The summary: per scene its row, the mean of each figure over the scenes that succeeded
    (done now or skipped as done before), the counts per status, the settings and wall time."""
    ok = [row for row in rows.values() if row["status"] in SUCCEEDED]
    mean = {"scenes": len(ok)}
    for key in FIGURES:
        values = [row[key] for row in ok if row.get(key) is not None]
        mean[key] = sum(values) / len(values) if values else None
    return {"scenes": list(rows.values()), "mean": mean, "counts": count_statuses(rows.values()),
            "settings": settings, "wall_seconds": seconds, "interrupted": interrupted}


def exit_code(report: dict) -> int:
    """0 when every scene succeeded; 2 when one failed on the user's input (bad data, config);
    1 when one failed otherwise (out of memory, a lost worker, a bug) after its retries."""
    failed = [row for row in report["scenes"] if row["status"] not in SUCCEEDED]
    if not failed:
        return 0
    return 2 if any(row["user_error"] for row in failed) else 1


def write_summary(out: Path, report: dict) -> None:
    """OUT/summary.json (the report) and OUT/summary.md (a table), each replaced atomically."""
    atomic_write_json(out / "summary.json", report)
    atomic_write_text(out / "summary.md", summary_markdown(report))


def summary_markdown(report: dict) -> str:
    """The summary as a Markdown page: settings, a row per scene, the mean of the successful ones."""
    counts, settings = report["counts"], report["settings"]
    done = counts["done"] + counts["skipped"]
    words = [f"{done} of {len(report['scenes'])} succeeded ({counts['skipped']} skipped as done before)",
             f"{counts['failed']} failed"] + ([f"{counts['interrupted']} interrupted"] if counts["interrupted"] else [])
    lines = [f"# fit-many: {len(report['scenes'])} scenes", "",
             f"{', '.join(words)}; wall time {format_seconds(report['wall_seconds'])}.", "",
             "Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items() if v not in (None, [], ())) + ".", "",
             "PSNR and SSIM are on each run's eval split (the test views unless its config says otherwise); "
             "rays/s is training throughput; size is the model file (grid.npz or nerf.pt).", "",
             "| scene | status | PSNR (dB) | SSIM | training (s) | rays/s | voxels | size (MB) | tries | error |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in report["scenes"]:
        error = (row["error"] or "").replace("|", "\\|")
        lines.append(f"| {row['name']} | {row['status']} | " + " | ".join(_cells(row))
                     + f" | {row['attempts']} | {error} |")
    mean = report["mean"]
    lines.append(f"| mean of {mean['scenes']} | | " + " | ".join(_cells(mean)) + " | | |")
    return "\n".join(lines) + "\n"


def _cells(row: dict) -> list[str]:
    def cell(key, fmt, scale=1.0):
        value = row.get(key)
        return "" if value is None else format(value * scale, fmt)

    return [cell("psnr", ".2f"), cell("ssim", ".4f"), cell("training_seconds", ".1f"), cell("rays_per_s", ",.0f"),
            cell("voxels", ",.0f"), cell("model_bytes", ".1f", 1e-6)]
