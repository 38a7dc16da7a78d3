"""Prune and export figures on a fitted run (docs/benchmarks.md, "Prune and export (lego_200)").

Prunes RUN with the default rule (max rendered weight >= 0.256 / Rz over all training
rays, dilate 1) into OUT/pruned and measures voxels, bytes and test PSNR before and after
(on the views the fit evaluated, unless --views says otherwise); then exports the pruned
run as an svox2 checkpoint, a PLY point cloud and a marching-cubes mesh at the default
level and the grid's resolution, timing each. The last line printed is one JSON object.

    python benchmarks/export.py RUN [--out DIR] [--views N] [--mesh-resolution N]
"""

import argparse
import json
import os
import platform
import time

import torch

from plenox.commands.export import export_run
from plenox.commands.prune import prune_run

MB = 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a fitted run folder (e.g. runs/lego200_10min)")
    parser.add_argument("--out", default=None, help="where to write (default: RUN_bench)")
    parser.add_argument("--views", type=int, default=None, help="test views for the PSNR (default: the fit's)")
    parser.add_argument("--mesh-resolution", type=int, default=None, help="mesh lattice (default: the grid's)")
    args = parser.parse_args()
    out = args.out or f"{args.run.rstrip('/')}_bench"
    os.makedirs(out, exist_ok=True)

    report = prune_run(args.run, out=f"{out}/pruned", views=args.views, force=True)
    b, a = report["before"], report["after"]
    print(f"prune ({report['rule']} >= {report['threshold']:.5f}, dilate {report['dilate']}): "
          f"{report['prune_seconds']:.1f} s")
    print(f"  voxels {b['voxels']:,} -> {a['voxels']:,} ({a['voxels'] / b['voxels']:.1%})")
    print(f"  memory {b['memory_bytes'] / MB:.1f} -> {a['memory_bytes'] / MB:.1f} MB, "
          f"grid.npz {b['file_bytes'] / MB:.1f} -> {a['file_bytes'] / MB:.1f} MB")
    print(f"  {report['split']} PSNR over {report['views']} views {b['psnr']:.3f} -> {a['psnr']:.3f} dB "
          f"({a['psnr'] - b['psnr']:+.3f}), SSIM {b['ssim']:.4f} -> {a['ssim']:.4f}")

    exports = {}
    for fmt, name in (("svox2", "ckpt.npz"), ("ply", "points.ply"), ("mesh", "mesh.ply")):
        start = time.perf_counter()
        exports[fmt] = export_run(report["out"], fmt, f"{out}/{name}", resolution=args.mesh_resolution)
        exports[fmt]["wall_seconds"] = time.perf_counter() - start
        counts = ", ".join(f"{k} {v:,}" for k, v in exports[fmt].items()
                           if k not in ("format", "path", "seconds", "wall_seconds"))
        print(f"export {fmt}: {counts}, {exports[fmt]['seconds']:.1f} s")

    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__}
    print(json.dumps({"run": args.run, "prune": report, "exports": exports, "machine": machine}))


if __name__ == "__main__":
    main()
