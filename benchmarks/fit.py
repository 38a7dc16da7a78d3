"""Fit quality and speed on a real scene under a wall-clock budget.

Runs ``plenox fit SCENE --minutes M`` (the library call behind it) once per budget, each a
fresh run with the full test-split evaluation at the end, records the held-out PSNR curve
(a few test views every ``--curve-every`` training seconds), the training throughput and the
render speed, plots PSNR vs time, and prints one JSON object as its last line.

    python benchmarks/fit.py ../shared/data/lego_200 --minutes 5 10 --out runs/bench_lego
    python benchmarks/fit.py ../shared/data/fern --minutes 10 --out runs/bench_fern downscale=8

The scene folder may also come from $PLENOX_DATA/<name>.
"""

import argparse
import json
import os
import platform
from pathlib import Path

from plenox.commands.compare import heldout_curve, plot_psnr_vs_time
from plenox.models.nerf import configure_threads
from plenox.runs.folder import RunDir
from plenox.runs.fitting import fit_run


def resolve_scene(path: str) -> str:
    if Path(path).exists():
        return path
    alt = Path(os.environ.get("PLENOX_DATA", "")) / path
    if alt.exists():
        return str(alt)
    raise SystemExit(f"scene not found: {path} (set PLENOX_DATA or give a path)")


def mean_rays_per_s(run: RunDir) -> float:
    values = [r["rays_per_s"] for r in run.read_log() if "rays_per_s" in r]
    return sum(values) / len(values) if values else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene")
    parser.add_argument("--minutes", type=float, nargs="+", default=[5.0, 10.0])
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--config", default=None)
    parser.add_argument("--curve-every", type=float, default=30.0, help="training seconds between held-out evaluations")
    parser.add_argument("--curve-views", type=int, default=10)
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_intermixed_args()

    configure_threads()
    scene = resolve_scene(args.scene)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, curves, finals = {}, {}, {}
    for minutes in args.minutes:
        label = f"{minutes:g}min"
        overrides = [f"eval_every_s={args.curve_every}", f"eval_every_views={args.curve_views}", *args.overrides]
        metrics = fit_run(scene, str(out / label), args.config, overrides, minutes=minutes, force=True,
                          progress=False)
        run = RunDir(out / label)
        r, p = metrics["results"], metrics["protocol"]
        results[label] = {"psnr": r["psnr"], "psnr_std": r["psnr_std"], "ssim": r["ssim"],
                          "test_views": p["views"], "render_fps": r["fps"],
                          "training_seconds": p["training_seconds"], "train_rays_per_s": mean_rays_per_s(run),
                          "voxels": p["voxels"], "grid_resolution": p["grid_resolution"]}
        curves[label] = heldout_curve(run.read_log())
        finals[label] = (p["training_seconds"], r["psnr"])
        print(f"{p['scene']} {label}: PSNR {r['psnr']:.2f} dB (SSIM {r['ssim']:.3f}) on {p['views']} test views, "
              f"{results[label]['train_rays_per_s']:.0f} training rays/s, render {r['fps']:.1f} fps at "
              f"{p['resolution'][0]}x{p['resolution'][1]}, {p['voxels']} voxels")
    name = Path(scene).name
    plot_psnr_vs_time(curves, finals, out / f"psnr_vs_time_{name}.png",
                      f"plenox fit on {name}, {os.cpu_count()} CPU cores")
    print(json.dumps({"scene": name, "runs": results, "curves": curves, "cpus": os.cpu_count(),
                      "machine": platform.machine(), "plot": str(out / f"psnr_vs_time_{name}.png")}))


if __name__ == "__main__":
    main()
