"""``plenox info``: what a run folder holds, read without loading its scene.

``run_info`` gathers the model's size (a grid's resolution and voxels, or a NeRF's
networks), the training summary from log.jsonl, the evaluation from eval/metrics.json and
the prune/import records when present; ``format_info`` turns that into the lines the command
prints.
"""

from plenox.io.checked import require_fields
from plenox.runs.folder import RunDir
from plenox.runs.registry import model_kind

MB = 1e6
ADVICE = "a record of plenox prune or import; restore it or delete it (the run works without it)"


def folder_bytes(run: RunDir) -> int:
    """Bytes of every file under the run folder (renders and evaluation images included)."""
    return sum(p.stat().st_size for p in run.path.rglob("*") if p.is_file())


def training_summary(run: RunDir) -> dict | None:
    """From log.jsonl: the last training record's step, seconds, batch PSNR and rays/s, and the
    last held-out PSNR when the fit logged one (``eval_every_s``). None if nothing is logged.

    The fit logs every ``log_every`` steps, so a run stopped by --minutes may have trained a
    few steps past the record."""
    log = run.read_log()
    batches = [r for r in log if "loss" in r]
    if not batches:
        return None
    last = batches[-1]
    heldout = [r for r in log if "heldout_psnr" in r]
    return {"steps": last["step"], "seconds": last["time"], "psnr": last["psnr"], "rays_per_s": last["rays_per_s"],
            "heldout_psnr": heldout[-1]["heldout_psnr"] if heldout else None}


def eval_summary(run: RunDir) -> dict | None:
    """PSNR, SSIM, split, views and fps from eval/metrics.json (None if absent)."""
    path = run.eval_dir() / "metrics.json"
    if not path.exists():
        return None
    metrics = run.read_metrics()
    r, p = metrics["results"], metrics["protocol"]
    return {"psnr": r["psnr"], "ssim": r["ssim"], "fps": r["fps"], "split": p["split"], "views": p["views"],
            "resolution": p["resolution"]}


def prune_record(run: RunDir) -> dict:
    """prune.json, checked for what the summary line reads."""
    record = require_fields(run.read_json(run.prune_file, ADVICE), run.prune_file,
                            {"source": str, "rule": str, "threshold": (int, float), "dilate": int,
                             "before": dict, "after": dict}, ADVICE)
    for side in ("before", "after"):
        require_fields(record[side], run.prune_file, {"voxels": int, "psnr": (int, float)}, ADVICE, f"{side}: ")
    return record


def import_record(run: RunDir) -> dict:
    """import.json, checked for what the summary line reads."""
    return require_fields(run.read_json(run.import_file, ADVICE), run.import_file,
                          {"checkpoint": str, "scene_scale": (int, float)}, ADVICE)


def run_info(path: str) -> dict:
    """Everything ``plenox info`` reports about run ``path``, as a JSON-ready dict."""
    run = RunDir(path).require()
    kind = run.model_kind()
    scene = run.scene_info()
    return {
        "path": str(run.path), "model": kind, "scene": scene.get("name", scene["source"]), "source": scene["source"],
        **model_kind(kind, str(run.config_file)).describe(run),
        "folder_bytes": folder_bytes(run), "resumable": run.state_file.exists(),
        "training": training_summary(run), "eval": eval_summary(run),
        "pruned": prune_record(run) if run.prune_file.exists() else None,
        "imported": import_record(run) if run.import_file.exists() else None,
    }


def model_lines(info: dict) -> list[str]:
    """The lines describing the model and its size (the model kind's own words) and the folder's size."""
    lines = model_kind(info["model"]).describe_lines(info)
    return [*lines[:-1], f"{lines[-1]}, folder {info['folder_bytes'] / MB:.1f} MB"]


def box_lines(info: dict) -> list[str]:
    """Where a grid's box ends and what lies behind it (nothing for other models)."""
    if "box_radius" not in info:
        return []
    center = ", ".join(f"{c:.3g}" for c in info["box_center"])
    radius = ", ".join(f"{r:.3g}" for r in info["box_radius"])
    bg = info["background_model"]
    behind = ("the background colour only" if bg is None else
              f"a background model of {bg['layers']} layers of {bg['map'][0]}x{bg['map'][1]} pixels "
              "(svox2's multi-sphere image) from the box's inscribed sphere to infinity")
    return [f"box: centre ({center}), half-size ({radius}); behind it: {behind}"]


def training_line(t: dict, resumable: bool) -> str:
    """One line of a ``training_summary``."""
    line = (f"training: step {t['steps']} after {t['seconds']:.0f} s (last log record), "
            f"batch PSNR {t['psnr']:.2f} dB, {t['rays_per_s']:,.0f} rays/s")
    if t["heldout_psnr"] is not None:
        line += f", held-out PSNR {t['heldout_psnr']:.2f} dB"
    return line + ("" if resumable else " (not resumable)")


def format_info(info: dict) -> list[str]:
    """Human-readable lines of a ``run_info`` dict."""
    lines = [f"{info['path']}: {info['scene']} ({info['source']})", *model_lines(info), *box_lines(info)]
    if info["training"]:
        lines.append(training_line(info["training"], info["resumable"]))
    e = info["eval"]
    lines.append(f"eval: {e['split']} {e['views']} views ({e['resolution'][0]}x{e['resolution'][1]}), PSNR "
                 f"{e['psnr']:.2f} dB, SSIM {e['ssim']:.4f}, {e['fps']:.1f} fps" if e else "eval: none yet")
    p = info["pruned"]
    if p:
        lines.append(f"pruned from {p['source']} by {p['rule']} >= {p['threshold']:.4g} (dilate {p['dilate']}): "
                     f"{p['before']['voxels']:,} -> {p['after']['voxels']:,} voxels, PSNR "
                     f"{p['before']['psnr']:.2f} -> {p['after']['psnr']:.2f} dB")
    if info["imported"]:
        lines.append(f"imported from {info['imported']['checkpoint']} (scene scale {info['imported']['scene_scale']})")
    return lines
