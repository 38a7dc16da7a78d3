"""``plenox compare``: models fitted to one scene, side by side: PSNR over training time, final
quality, speed, size on disk and memory.

compare_fit    fit each model (Plenoxels, NeRF, ...) on the same scene under the same
               wall-clock budget, one after another, with the same held-out views, then report
compare_runs   the same report from existing run folders, without training

The report folder holds report.md, report.json, psnr_vs_time.png (held-out PSNR curves and
final evaluations) and side_by_side.png (ground truth | each model | each model's error).

Figures:
  time to a PSNR level   from the held-out curve in log.jsonl (training seconds, mean PSNR of
                         the held-out views): the first crossing of the level, linearly
                         interpolated between the two curve points around it; None when no
                         point reaches it ("not reached")
  to final PSNR          when the first run's curve reaches the PSNR of another run's last
                         held-out point, against the other's own first crossing of it
  speed-up               time of another run / time of the first run at each level; when
                         only the first run reaches it, at least (the other's training time) /
                         (the first's time)
  training rays/s        rays per step x steps / training seconds, at the last training record
  render fps             from eval/metrics.json (the final evaluation)
  size on disk           the file rendering needs: grid.npz (float32 SH) or nerf.pt (float32 weights)
  peak memory            the largest peak_rss_mb in log.jsonl: resident set size of the fitting
                         process (Linux VmHWM, reset when the fit starts; plenox.memory)
"""

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import imageio.v3 as iio
import matplotlib
import numpy as np
import torch
# Figure without pyplot renders through Agg and leaves the host program's backend alone.
from matplotlib.figure import Figure

from plenox.errors import CompareError, RunError
from plenox.options import require_number
from plenox.io.atomic import atomic_write, atomic_write_json, atomic_write_text
from plenox.runs.fitting import fit_run
from plenox.runs.folder import RunDir
from plenox.runs.loading import run_config, run_scene, scene_format
from plenox.runs.registry import load_config, model_kind

LEVELS = (20.0, 25.0, 30.0)
SIDE_BY_SIDE_VIEWS = 3
ERROR_MAX = 0.25          # error maps: mean absolute RGB error, colour scale clipped at this value
DEFAULT_CURVE_POINTS = 10  # compare_fit without eval_every_s: held-out evaluations per budget
FIRST_POINT_FRACTION = 1 / 600  # compare_fit: first held-out point at this share of the budget,
                                # then at doubling times (1, 2, 4, ... s of a 10-minute budget)
ALL_VIEWS_CURVE = 10       # views of the held-out curve when the final evaluation uses every view



# ----- curves ---------------------------------------------------------------------------
def parse_levels(text: str) -> tuple[float, ...]:
    """"20,25,30" -> (20.0, 25.0, 30.0); CompareError for anything else."""
    try:
        levels = tuple(float(word) for word in text.split(","))
    except ValueError:
        raise CompareError(f"levels must be comma-separated numbers (dB), got {text!r}") from None
    if not all(np.isfinite(levels)):
        raise CompareError(f"levels must be finite numbers, got {text!r}")
    return levels


def heldout_curve(log: list[dict]) -> list[tuple[float, float]]:
    """(training seconds, held-out PSNR) of a run's held-out log records, in time order."""
    return sorted((r["time"], r["heldout_psnr"]) for r in log if "heldout_psnr" in r)


def time_to_psnr(curve: list[tuple[float, float]], level: float) -> float | None:
    """Training seconds at which ``curve`` first reaches ``level`` dB; None if it never does.

    Between the last point below the level and the first at or above it the time is
    interpolated linearly in PSNR; a curve whose first point is already at the level
    returns that point's time.
    """
    for i, (t, value) in enumerate(curve):
        if value >= level:
            if i == 0:
                return t
            t0, v0 = curve[i - 1]
            return t0 + (level - v0) / (value - v0) * (t - t0)
    return None


def speedup(first: float | None, other: float | None, other_seconds: float) -> dict:
    """How many times sooner the first run reached a level than another run.

    Returns {"ratio": other / first} when both reached it, {"at_least": other_seconds /
    first} when only the first did (the other trained other_seconds without reaching it),
    and {} when the first did not reach it.
    """
    if first is None:
        return {}
    first = max(first, 1e-9)   # a level reached at the very first point
    if other is None:
        return {"at_least": other_seconds / first}
    return {"ratio": other / first}


# ----- one run ------------------------------------------------------------------------------
def require_files(run: RunDir, model_file: str) -> None:
    """RunError naming the first file compare needs that the run lacks."""
    needs = [(run.path / model_file, "the run has no checkpoint"),
             (run.eval_dir() / "metrics.json", f"run plenox eval {run.path} first"),
             (run.log_file, "the run has no training log")]
    for path, why in needs:
        if not path.exists():
            raise RunError(f"{path}: missing ({why})")


def training_figures(log: list[dict], rays_per_step: int, source: Path) -> dict:
    """Steps, training seconds and rays/s at the last training record; peak memory over the log
    (RunError naming ``source``, the log file, when it has no training record)."""
    training = [r for r in log if "rays_per_s" in r]
    if not training:
        raise RunError(f"{source}: no training records")
    last = training[-1]
    peaks = [r["peak_rss_mb"] for r in log if "peak_rss_mb" in r]
    return {"steps": last["step"], "training_seconds": last["time"],
            "train_rays_per_s": last["step"] * rays_per_step / max(last["time"], 1e-9),
            "peak_rss_mb": max(peaks) if peaks else None}


def run_summary(path, levels=LEVELS) -> dict:
    """What the report says about one run folder (see the module docstring for each figure)."""
    run = RunDir(path).require()
    cfg = run_config(run)
    kind = model_kind(cfg.model)
    require_files(run, kind.model_file)
    metrics = run.read_metrics()
    log = run.read_log()
    curve = heldout_curve(log)
    heldout = [r for r in log if "heldout_psnr" in r]
    r = metrics["results"]
    return {
        "run": str(run.path), "model": cfg.model, "label": cfg.model,
        "psnr": r["psnr"], "psnr_std": r["psnr_std"], "ssim": r["ssim"], "ssim_std": r["ssim_std"],
        "render_fps": r["fps"], "render_seconds_per_frame": r["render_seconds_per_frame"],
        **training_figures(log, cfg.rays_per_step, run.log_file),
        "model_file": kind.model_file, "model_bytes": (run.path / kind.model_file).stat().st_size,
        "curve": curve, "curve_views": heldout[-1]["heldout_views"] if heldout else None,
        "curve_stride": heldout[-1].get("heldout_stride") if heldout else None,
        "time_to_psnr": {str(level): time_to_psnr(curve, level) for level in levels},
        "protocol": metrics["protocol"], "views": [p["name"] for p in metrics["per_image"]],
        "per_image": metrics["per_image"],
    }


def check_comparable(summaries: list[dict]) -> None:
    """RunError unless every run was evaluated on the same scene, split, views and resolution."""
    first = summaries[0]
    for other in summaries[1:]:
        for key in ("scene", "split", "resolution"):
            if other["protocol"][key] != first["protocol"][key]:
                raise RunError(f"{other['run']}: evaluated with {key} {other['protocol'][key]}, but {first['run']} "
                               f"with {first['protocol'][key]}")
        if other["views"] != first["views"]:
            raise RunError(f"{other['run']}: evaluated on other test views than {first['run']} "
                           f"({len(other['views'])} vs {len(first['views'])}); re-run plenox eval on both with the "
                           "same --views")


def label_runs(summaries: list[dict]) -> None:
    """Label each run by its model, or by model and folder name when two runs share a model."""
    models = [s["model"] for s in summaries]
    for s in summaries:
        if models.count(s["model"]) > 1:
            s["label"] = f"{s['model']} ({Path(s['run']).name})"


# ----- the report ------------------------------------------------------------------------------
def machine() -> dict:
    """Cores this process may use, the processor, torch's version and threads, the GPU if any."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cores": cores, "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def build_report(summaries: list[dict], levels=LEVELS, budget_minutes: float | None = None) -> dict:
    """report.json's content: runs, time-to-PSNR with speed-ups over the first run, protocol."""
    first, p = summaries[0], summaries[0]["protocol"]
    table = []
    for level in levels:
        key = str(level)
        table.append({"psnr": level, "seconds": {s["label"]: s["time_to_psnr"][key] for s in summaries},
                      "speedup_of_first": {s["label"]: speedup(first["time_to_psnr"][key], s["time_to_psnr"][key],
                                                              s["training_seconds"]) for s in summaries[1:]}})
    protocol = {"scene": p["scene"], "format": p["format"], "split": p["split"], "views": len(first["views"]),
                "view_names": first["views"], "views_in_split": p["views_in_split"], "resolution": p["resolution"],
                "background": {s["label"]: s["protocol"]["background"] for s in summaries},
                "averaging": p["averaging"], "ssim": p["ssim"], "budget_minutes": budget_minutes,
                "curve": {s["label"]: {"views": s["curve_views"], "stride": s["curve_stride"],
                                       "points": len(s["curve"])} for s in summaries},
                "device": {s["label"]: s["protocol"]["device"] for s in summaries},
                "threads": {s["label"]: s["protocol"]["threads"] for s in summaries},
                "machine": machine(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return {"runs": summaries, "levels": list(levels), "time_to_psnr": table,
            "to_final_psnr": [reach_final(first, other) for other in summaries[1:]], "protocol": protocol}


def reach_final(first: dict, other: dict) -> dict:
    """When the first run reaches the PSNR the other ended at (the other's last held-out point,
    so both sides are the same views and pixels), against when the other got there itself.

    Returns {"target", "psnr" (None without a curve), "seconds" {label: time or None},
    "speedup_of_first" (see ``speedup``)}.
    """
    if not other["curve"]:
        return {"target": other["label"], "psnr": None, "seconds": {}, "speedup_of_first": {}}
    level = other["curve"][-1][1]
    mine, theirs = time_to_psnr(first["curve"], level), time_to_psnr(other["curve"], level)
    return {"target": other["label"], "psnr": level, "seconds": {first["label"]: mine, other["label"]: theirs},
            "speedup_of_first": {} if mine == 0.0 else speedup(mine, theirs, other["training_seconds"])}


def fmt_seconds(seconds: float | None, limit: float) -> str:
    """A time to a level, or that the run did not reach it in its ``limit`` training seconds."""
    return f"not reached in {limit:.0f} s" if seconds is None else f"{seconds:.1f} s"


def fmt_speedup(entry: dict) -> str:
    """A ``speedup`` entry as text: "12.3x", "> 12.3x" (a lower bound) or why there is none."""
    if "ratio" in entry:
        return f"{entry['ratio']:.1f}x"
    if "at_least" in entry:
        return f"> {entry['at_least']:.1f}x"
    return "n/a (first run did not reach it)"


def report_table(report: dict) -> list[str]:
    """The comparison table, as Markdown lines."""
    runs = report["runs"]
    rows = [("final PSNR (dB), mean +- std", [f"{s['psnr']:.2f} +- {s['psnr_std']:.2f}" for s in runs]),
            ("final SSIM, mean +- std", [f"{s['ssim']:.4f} +- {s['ssim_std']:.4f}" for s in runs])]
    for entry in report["time_to_psnr"]:
        rows.append((f"time to {entry['psnr']:g} dB (training s)",
                     [fmt_seconds(entry["seconds"][s["label"]], s["training_seconds"]) for s in runs]))
    rows += [("training steps / seconds", [f"{s['steps']:,} / {s['training_seconds']:.0f}" for s in runs]),
             ("training rays/s", [f"{s['train_rays_per_s']:,.0f}" for s in runs]),
             ("render frames/s", [f"{s['render_fps']:.2f} ({1000 * s['render_seconds_per_frame']:.0f} ms/frame)"
                                  for s in runs]),
             ("model size on disk", [f"{s['model_file']} {s['model_bytes'] / 1e6:.2f} MB" for s in runs]),
             ("peak memory (RSS)", ["n/a" if s["peak_rss_mb"] is None else f"{s['peak_rss_mb']:,.0f} MB"
                                    for s in runs])]
    lines = ["| | " + " | ".join(s["label"] for s in runs) + " |", "|---" * (len(runs) + 1) + "|"]
    return lines + [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows]


def protocol_lines(report: dict) -> list[str]:
    """The protocol as Markdown list items: views, background, metrics, fits, curves, machine."""
    p, runs = report["protocol"], report["runs"]
    m = p["machine"]
    names = ", ".join(p["view_names"][:5]) + (", ..." if p["views"] > 5 else "")
    budget = "" if p["budget_minutes"] is None else f" under a {p['budget_minutes']:g}-minute training budget each"
    curves = "; ".join(f"{s['label']}: {c['points']} points on {c['views']} views, pixel stride {c['stride']} per axis"
                       for s, c in ((s, p["curve"][s["label"]]) for s in runs) if c["points"])
    return [f"- scene: {p['scene']} ({p['format']}), {p['split']} split, {p['views']} of {p['views_in_split']} views "
            f"({names}) at {p['resolution'][0]}x{p['resolution'][1]}",
            "- background: " + ", ".join(f"{k} {v}" for k, v in p["background"].items()),
            f"- metrics: {p['averaging']}; SSIM {p['ssim']}",
            f"- fits: one after another{budget}; runs: " + ", ".join(f"{s['label']} {s['run']}" for s in runs),
            f"- held-out curve (training seconds vs mean PSNR of subsampled held-out views): {curves or 'none'}",
            f"- machine: {m['cores']} cores ({m['processor']}), torch {m['torch']}, threads "
            + ", ".join(f"{k} {v}" for k, v in p["threads"].items()) + ", device "
            + ", ".join(f"{k} {v}" for k, v in p["device"].items()) + f"; {p['date']}"]


def speedup_lines(report: dict) -> list[str]:
    """One Markdown list item per run after the first: the first's speed-up over it at each level."""
    first = report["runs"][0]["label"]
    lines = []
    for other in report["runs"][1:]:
        cells = [f"{e['psnr']:g} dB: {fmt_speedup(e['speedup_of_first'][other['label']])}"
                 for e in report["time_to_psnr"]]
        lines.append(f"- {first} over {other['label']} (time to reach the level): " + "; ".join(cells))
    for entry in report["to_final_psnr"]:
        lines.append(final_line(first, entry))
    return lines


def final_line(first: str, entry: dict) -> str:
    """A ``reach_final`` entry as a Markdown list item."""
    other = entry["target"]
    if entry["psnr"] is None:
        return f"- {first} to {other}'s final PSNR: n/a ({other} has no held-out curve)"
    mine, theirs = entry["seconds"][first], entry["seconds"][other]
    head = f"- {first} to {other}'s final held-out PSNR ({entry['psnr']:.2f} dB): "
    if mine is None:
        return head + f"not reached ({other}: {theirs:.1f} s)"
    if mine == 0.0:
        return head + f"already there before training ({other}: {theirs:.1f} s)"
    return head + f"{mine:.1f} s vs {other}'s {theirs:.1f} s, {fmt_speedup(entry['speedup_of_first'])} sooner"


def report_markdown(report: dict) -> str:
    """report.md: title, table, speed-ups, protocol, how the figures are computed, the two images."""
    labels = " vs ".join(s["label"] for s in report["runs"])
    return "\n".join([
        f"# {labels} on {report['protocol']['scene']}", "", *report_table(report), "",
        "Speed-up:", *speedup_lines(report), "", "Protocol:", *protocol_lines(report), "",
        "How: time to a level is the first crossing of the held-out curve, interpolated linearly between "
        "the curve points around it (\"not reached\" when no point reaches it); the speed-up is the other "
        "run's time over the first's (\"> x\" when only the first reached it: the other's whole training time "
        "over the first's). Training rays/s = steps x rays per step / training seconds. Size on disk is the "
        "file rendering needs. Peak memory is the fitting process's peak resident set size (Linux VmHWM, "
        "reset at the start of each fit).", "",
        "![PSNR vs training time](psnr_vs_time.png)", "",
        f"![ground truth, renders and error maps (mean absolute RGB error, scale 0 to {ERROR_MAX})]"
        "(side_by_side.png)", ""])


# ----- figures ------------------------------------------------------------------------------------
def plot_psnr_vs_time(curves: dict, finals: dict, path: Path, title: str, levels=()) -> None:
    """PSNR against training time: one line per curve {label: [(seconds, psnr)]}, a star per
    final evaluation {label: (seconds, psnr)}, dotted lines at ``levels``. The time axis is in
    seconds up to two minutes, else in minutes."""
    longest = max([t for points in curves.values() for t, _ in points] + [t for t, _ in finals.values()] + [0.0])
    unit, scale = ("seconds", 1.0) if longest <= 120 else ("minutes", 60.0)
    fig = Figure(figsize=(6.5, 4), dpi=120)
    ax = fig.subplots()
    for label, points in curves.items():
        if points:
            ax.plot([t / scale for t, _ in points], [p for _, p in points], marker=".", label=f"{label} (held-out)")
    for label, (seconds, value) in finals.items():
        ax.scatter([seconds / scale], [value], marker="*", s=120, zorder=3, label=f"{label}: final evaluation")
    for level in levels:
        ax.axhline(level, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel(f"training time ({unit})")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, fig.savefig)


def error_map(render: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 colour map of the mean absolute RGB error of (H, W, 3) images in [0, 1], 0 to ERROR_MAX."""
    error = np.abs(render - truth).mean(axis=-1) / ERROR_MAX
    return (matplotlib.colormaps["magma"](np.clip(error, 0.0, 1.0))[..., :3] * 255).astype(np.uint8)


def eval_image(summary: dict, name: str) -> np.ndarray:
    """(H, W, 3) float64 in [0, 1]: the run's final-evaluation render of view ``name``."""
    return iio.imread(Path(summary["run"]) / "eval" / "images" / f"{name}.png")[..., :3].astype(np.float64) / 255


def plot_side_by_side(report: dict, path: Path, views: int = SIDE_BY_SIDE_VIEWS) -> None:
    """The first ``views`` evaluated views, one row each: ground truth | each run's render (with its
    PSNR) | each run's error map. Renders come from the runs' eval/images, so nothing is re-rendered."""
    runs = report["runs"]
    split = run_scene(RunDir(runs[0]["run"])).splits[report["protocol"]["split"]]
    names = report["protocol"]["view_names"][:views]
    columns = 1 + 2 * len(runs)
    fig = Figure(figsize=(2.2 * columns, 2.3 * len(names)), dpi=110)
    axes = fig.subplots(len(names), columns, squeeze=False)
    for row, name in enumerate(names):
        truth = split.images[split.names.index(name)].double().numpy()
        renders = [eval_image(s, name) for s in runs]
        psnrs = [next(p["psnr"] for p in s["per_image"] if p["name"] == name) for s in runs]
        cells = [(f"{name}: ground truth", truth)]
        cells += [(f"{s['label']}: {value:.2f} dB", image) for s, value, image in zip(runs, psnrs, renders)]
        cells += [(f"{s['label']}: |error|", error_map(image, truth)) for s, image in zip(runs, renders)]
        for ax, (title, image) in zip(axes[row], cells):
            ax.imshow(image)
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    atomic_write(path, fig.savefig)


# ----- entry points ------------------------------------------------------------------------------------
def compare_runs(paths: list, out, levels=LEVELS, budget_minutes: float | None = None) -> dict:
    """Write the report of existing run folders ``paths`` (the first is the reference for speed-ups)
    to the folder ``out``: report.md, report.json, psnr_vs_time.png, side_by_side.png. Returns
    report.json's content."""
    if len(paths) < 2:
        raise CompareError(f"compare needs at least two runs, got {len(paths)}")
    summaries = [run_summary(path, levels) for path in paths]
    check_comparable(summaries)
    label_runs(summaries)
    report = build_report(summaries, levels, budget_minutes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    p = report["protocol"]
    title = (f"{p['scene']}: held-out PSNR during training ({p['machine']['cores']} cores); "
             f"stars: {p['views']} test views")
    plot_psnr_vs_time({s["label"]: s["curve"] for s in summaries},
                      {s["label"]: (s["training_seconds"], s["psnr"]) for s in summaries},
                      out / "psnr_vs_time.png", title, levels)
    plot_side_by_side(report, out / "side_by_side.png")
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", report_markdown(report))
    return report


def model_specs(models: list[str], source: str | None) -> list[tuple[str, str, str]]:
    """(label, model, config name) for each "model" or "model:config" entry; the label names the run folder."""
    specs = []
    for entry in models:
        model, _, config = entry.partition(":")
        config = config or model_kind(model).default_config(scene_format(source))
        specs.append((model, model, config))
    if len(specs) < 2:
        raise CompareError(f"compare needs at least two models, got {', '.join(models) or 'none'}")
    if len({m for m, _, _ in specs}) < len(specs):
        specs = [(f"{m}-{Path(c).stem}", m, c) for _, m, c in specs]
    if len({label for label, _, _ in specs}) < len(specs):
        raise CompareError(f"models {', '.join(models)} name the same run twice")
    return specs


def compare_fit(source: str | None, out, budget_minutes: float = 10.0, models=("plenoxels", "nerf"),
                eval_every_s: float | None = None, views: int = 5, curve_stride: int = 0,
                downscale: int | None = None, force: bool = False, device: str = "auto",
                progress: bool = True, levels=LEVELS) -> dict:
    """Fit each of ``models`` ("model" or "model:config") to ``source`` into out/<model> for
    ``budget_minutes`` of training each, one after another, then write the report (compare_runs).

    Every fit is evaluated on the first ``views`` test views (0: all): its held-out curve from
    budget x FIRST_POINT_FRACTION training seconds at doubling times, then every
    ``eval_every_s`` training seconds (default: budget / 10), on every ``curve_stride``-th pixel
    per axis of those views (0: about 24 pixels across; at most ALL_VIEWS_CURVE views when
    ``views`` is 0), and its final evaluation on the whole views. All fits load the scene at
    the same ``downscale`` (default: the largest of their configs', e.g. nerf_llff's 8).
    """
    if not budget_minutes > 0:
        raise CompareError(f"the budget must be positive, got {budget_minutes} minutes")
    require_number("--budget-minutes", budget_minutes, 0, low_open=True)
    require_number("--eval-every", eval_every_s, 0, low_open=True)
    require_number("--downscale", downscale, 1, integer=True)
    if views < 0 or curve_stride < 0:
        raise CompareError(f"views and curve stride must be >= 0, got {views} and {curve_stride}")
    specs = model_specs(list(models), source)
    out = Path(out)
    for label, _, _ in specs:
        if RunDir(out / label).exists() and not force:
            raise RunError(f"{out / label}: already holds a run (use --force to replace it, or --runs to report on it)")
    if downscale is None:
        downscale = max(load_config(config, model=model).downscale for _, model, config in specs)
    every = eval_every_s if eval_every_s is not None else budget_minutes * 60 / DEFAULT_CURVE_POINTS
    first = min(budget_minutes * 60 * FIRST_POINT_FRACTION, every)
    overrides = [f"eval_every_s={every}", f"eval_first_s={first}", f"eval_every_views={views or ALL_VIEWS_CURVE}",
                 f"eval_every_stride={curve_stride}", f"eval_views={views}", f"downscale={downscale}"]
    for label, model, config in specs:
        fit_run(source, str(out / label), config, overrides, minutes=budget_minutes, force=force, device=device,
                progress=progress, model=model)
    return compare_runs([out / label for label, _, _ in specs], out, levels, budget_minutes)


def format_summary(report: dict, out) -> list[str]:
    """The lines ``plenox compare`` prints: the table, the speed-ups and where the report is."""
    return [*report_table(report), *speedup_lines(report),
            f"report: {Path(out) / 'report.md'} (report.json, psnr_vs_time.png, side_by_side.png)"]
