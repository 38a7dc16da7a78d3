"""Render speed of a fitted grid at several early-stop thresholds, with the PSNR each gives.

Loads a run folder written by ``plenox fit`` (a Plenoxels grid), renders ``--views`` test
views spread evenly over the split once per ``--stop`` value (after one warm-up view), and
prints frames/s and mean PSNR per threshold, the speed ratio against the first threshold,
and one JSON object as its last line.

    python benchmarks/render_speed.py RUN --views 50 --stop 1e-7 1e-3
"""

import argparse
import dataclasses
import json
import time

import numpy as np

from plenox.metrics import psnr
from plenox.runs.loading import open_run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run folder of a Plenoxels fit")
    parser.add_argument("--views", type=int, default=50, help="test views, spread over the split")
    parser.add_argument("--stop", type=float, nargs="+", default=[1e-7, 1e-3],
                        help="early-stop transmittance thresholds to time")
    args = parser.parse_args()

    _, _, scene, renderer = open_run(args.run)
    if not hasattr(renderer, "options"):
        raise SystemExit(f"{args.run}: not a Plenoxels run")
    data = scene.splits["test"]
    picks = np.unique(np.linspace(0, len(data) - 1, min(args.views, len(data))).round().astype(int))
    rays = [scene.view_rays("test", int(i)) for i in picks]
    results = []
    for stop in args.stop:
        renderer.options = dataclasses.replace(renderer.options, stop_thresh=stop)
        renderer.render_image(*rays[0])   # warm-up: compilation and the occupancy cache
        seconds, values = 0.0, []
        for i, (origins, dirs) in zip(picks, rays):
            start = time.perf_counter()
            rgb = renderer.render_image(origins, dirs)["rgb"]
            seconds += time.perf_counter() - start
            values.append(psnr(rgb, data.images[int(i)]))
        results.append({"stop_thresh": stop, "fps": len(rays) / seconds, "psnr": float(np.mean(values))})
    for r in results:
        print(f"stop {r['stop_thresh']:g}: {r['fps']:6.1f} fps ({r['fps'] / results[0]['fps']:.2f}x), "
              f"PSNR {r['psnr']:.3f} dB over {len(rays)} views")
    print(json.dumps({"run": args.run, "views": len(rays), "resolution": [data.cameras.width, data.cameras.height],
                      "results": results}))


if __name__ == "__main__":
    main()
