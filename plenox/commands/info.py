"""``plenox info``: what a run folder holds, read without loading its scene.

``run_info`` gathers the model's size (a grid's resolution and voxels, or a NeRF's
networks), the training summary from log.jsonl, the evaluation from eval/metrics.json and
the prune/import records when present; ``format_info`` turns that into the lines the command
prints.
"""

from plenox.runs.folder import RunDir
from plenox.runs.registry import model_kind

MB = 1e6


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
    metrics = run.read_json(path)
    r, p = metrics["results"], metrics["protocol"]
    return {"psnr": r["psnr"], "ssim": r["ssim"], "fps": r["fps"], "split": p["split"], "views": p["views"],
            "resolution": p["resolution"]}


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
        "pruned": run.read_json(run.prune_file) if run.prune_file.exists() else None,
        "imported": run.read_json(run.import_file) if run.import_file.exists() else None,
    }


def model_lines(info: dict) -> list[str]:
    """The lines describing the model and its size."""
    if info["model"] == "nerf":
        (depth, width), (coarse, fine) = info["network"], info["samples_per_ray"]
        return [f"nerf: coarse and fine MLPs of {depth}x{width}, {info['parameters']:,} parameters, "
                f"{coarse} samples per ray for the coarse one, {fine} for the fine one",
                f"size {info['memory_bytes'] / MB:.1f} MB in memory, nerf.pt {info['nerf_file_bytes'] / MB:.1f} MB, "
                f"folder {info['folder_bytes'] / MB:.1f} MB"]
    res = "x".join(str(r) for r in info["resolution"])
    return [f"grid {res}, {info['voxels']:,} voxels ({100 * info['occupancy']:.1f}% of the box), "
            f"SH degree {info['sh_degree']} ({info['basis_dim']} coefficients per channel)",
            f"size {info['memory_bytes'] / MB:.1f} MB in memory, grid.npz {info['grid_file_bytes'] / MB:.1f} MB, "
            f"folder {info['folder_bytes'] / MB:.1f} MB"]


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
