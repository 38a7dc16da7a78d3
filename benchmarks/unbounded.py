"""Unbounded captures: the background model against the bounded grid on beer_360, same budget.

Fits a walk-around phone capture (default ../shared/data/beer_360 at downscale 2, 360x640)
twice for the same ``--minutes`` with ``plenox fit``'s own path (``fit_run``): with the
``unbounded`` config (the grid over a box that holds the cameras, plus svox2's background
model) and with the bounded ``custom`` config (the loader's box of half-size 1.5 around the
object); both are evaluated on the held-out views (every 8th frame: 0, 8, 16, ...). Writes a
side-by-side image of three of them (ground truth / bounded / unbounded) and prints one JSON
object as its last line. The loader frames the capture (plenox.data: object-centric cameras,
median distance 4), as ``plenox fit ../shared/data/beer_360`` does.

    python benchmarks/unbounded.py --minutes 30 --out runs/bench_unbounded
    python benchmarks/unbounded.py --minutes 2 --image docs/images/unbounded_beer360.png
    python benchmarks/unbounded.py --reuse --out runs/bench_unbounded --no-truth --image docs/images/unbounded_beer360.png

Overrides (``key=value``) apply to both configs.
"""

import argparse
import json
import os
import platform
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from plenox.io.atomic import atomic_write_image
from plenox.runs.evaluation import to_uint8
from plenox.runs.fitting import fit_run
from plenox.runs.loading import open_scene

HOLDOUT_EVERY = 8
CONFIGS = (("bounded", "custom"), ("unbounded", "unbounded"))


def side_by_side(scene, runs: dict, views: list[int], path: Path, truth: bool = True) -> None:
    """Rows of ground truth (unless ``truth`` is False) / each run's render of the held-out
    ``views``, from the runs' eval images."""
    rows = []
    for i in views:
        name = scene.splits["test"].names[i]
        tiles = [to_uint8(scene.splits["test"].images[i])] if truth else []
        tiles += [iio.imread(out / "eval" / "images" / f"{name}.png")[..., :3] for out in runs.values()]
        rows.append(np.concatenate(tiles, axis=1))
    atomic_write_image(path, np.concatenate(rows, axis=0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/beer_360"))
    parser.add_argument("--downscale", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=None, help="training minutes per fit")
    parser.add_argument("--out", default="runs/bench_unbounded")
    parser.add_argument("--image", default="docs/images/unbounded_beer360.png")
    parser.add_argument("--views", type=int, nargs=3, default=[1, 4, 7], help="held-out views in the image")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--no-truth", action="store_true",
                        help="leave the ground-truth column out of the image (for pictures of data that may not be copied)")
    parser.add_argument("--reuse", action="store_true", help="read the fits an earlier run left in --out instead of fitting")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_intermixed_args()

    data = Path(os.environ.get("PLENOX_DATA", "")) / "beer_360" if not Path(args.data).exists() else Path(args.data)
    if not data.exists():
        raise SystemExit(f"scene not found: {args.data} (set PLENOX_DATA or give --data)")
    out = Path(args.out)
    results, runs = {}, {}
    for label, config in CONFIGS:
        if args.reuse:
            metrics = json.loads((out / label / "eval" / "metrics.json").read_text())
        else:
            metrics = fit_run(str(data), str(out / label), config, [f"downscale={args.downscale}", *args.overrides],
                              args.minutes, force=True, progress=not args.quiet)
        r, p = metrics["results"], metrics["protocol"]
        runs[label] = out / label
        results[label] = {"config": config, "psnr": r["psnr"], "psnr_std": r["psnr_std"], "ssim": r["ssim"],
                          "views": p["views"], "training_seconds": p["training_seconds"],
                          "voxels": p["voxels"], "grid_resolution": p["grid_resolution"],
                          "box_radius": p["box_radius"], "background_model": p["background_model"]}
        print(f"{data.name} {label} ({config}): held-out PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.3f} on "
              f"{p['views']} views ({p['resolution'][0]}x{p['resolution'][1]}), {p['training_seconds']:.0f} s "
              f"training, {p['voxels']:,} voxels", flush=True)
    scene = open_scene(str(data), args.downscale)
    side_by_side(scene, runs, args.views, Path(args.image), truth=not args.no_truth)
    print(json.dumps({"scene": scene.name, "downscale": args.downscale, "minutes": args.minutes,
                      "holdout": f"every {HOLDOUT_EVERY}th view (0, 8, 16, ...)", "runs": results,
                      "gain_db": results["unbounded"]["psnr"] - results["bounded"]["psnr"],
                      "image": args.image, "cpus": os.cpu_count(), "machine": platform.machine()}))


if __name__ == "__main__":
    main()
