"""The ``plenox`` command: parse, validate, call the library, print.

Every command is a thin wrapper over ``plenox.runs.loading``; errors the user can fix (bad
data, bad config, bad run folder, unusable device) print one line and exit with code 2.
"""

import argparse
import json
import sys

from plenox import __version__

USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plenox", description="Plenoxels radiance fields on the CPU and GPU.")
    parser.add_argument("--version", action="version", version=f"plenox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fit = sub.add_parser("fit", help="fit a radiance field to a folder of posed photos (or the built-in scene)")
    fit.add_argument("data", nargs="?", default=None,
                     help="scene folder (Blender, LLFF or nerfstudio); omit for the built-in scene")
    fit.add_argument("--model", default=None,
                     help="what to fit (default: the config's model, else plenoxels)")
    fit.add_argument("--config", default=None,
                     help="config name (synthetic, llff, custom, builtin, tiny; nerf_synthetic, nerf_llff, nerf_tiny) "
                          "or JSON file")
    fit.add_argument("--out", default="runs/latest", help="run folder to write (default: runs/latest)")
    fit.add_argument("--minutes", type=float, default=None, help="wall-clock training budget")
    fit.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    fit.add_argument("--force", action="store_true", help="replace an existing run in --out")
    add_device(fit)
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. steps=2000")

    render = sub.add_parser("render", help="render a run's views, an orbit video, depth maps")
    render.add_argument("run", help="run folder written by plenox fit")
    render.add_argument("--split", default="test", choices=["train", "val", "test"])
    render.add_argument("--orbit", type=int, default=0, metavar="FRAMES", help="render an orbit of FRAMES views")
    render.add_argument("--video", default=None, metavar="OUT.mp4", help="also write the frames as a video")
    render.add_argument("--depth", action="store_true", help="also write 16-bit depth PNGs and previews")
    render.add_argument("--views", type=int, default=0, help="render only the first N views")
    add_device(render)

    ev = sub.add_parser("eval", help="measure a run on a split: DIR/eval/metrics.json")
    ev.add_argument("run", help="run folder written by plenox fit")
    ev.add_argument("--split", default="test", choices=["train", "val", "test"])
    ev.add_argument("--views", type=int, default=0, help="evaluate only the first N views (default: all)")
    add_device(ev)
    add_prune(sub)
    add_export(sub)
    add_import(sub)
    add_compare(sub)
    info = sub.add_parser("info", help="what a run folder holds: grid size, training, evaluation")
    info.add_argument("run", help="run folder")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def add_device(parser) -> None:
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where to train or render (default auto: a CUDA GPU when usable, else the CPU)")


def add_prune(sub) -> None:
    prune = sub.add_parser("prune", help="drop voxels no training ray sees; write a smaller run")
    prune.add_argument("run", help="run folder written by plenox fit")
    rule = prune.add_mutually_exclusive_group()
    rule.add_argument("--weight-thresh", type=float, default=None, metavar="W",
                      help="keep voxels whose max rendered weight is >= W / Rz, as the fit prunes (default 0.256)")
    rule.add_argument("--density-thresh", type=float, default=None, metavar="S",
                      help="keep voxels whose raw density is >= S instead")
    prune.add_argument("--dilate", type=int, default=None, metavar="K",
                       help="grow the kept set by K voxels (default 1)")
    prune.add_argument("--ray-stride", type=int, default=1, metavar="K",
                       help="weight rule: use every K-th training pixel per axis (default 1: all)")
    prune.add_argument("--views", type=int, default=None, help="test views to evaluate (default: the fit's)")
    where = prune.add_mutually_exclusive_group()
    where.add_argument("--out", default=None, help="new run folder (default: DIR_pruned)")
    where.add_argument("--in-place", action="store_true", help="replace the run's own grid")
    prune.add_argument("--force", action="store_true", help="replace an existing run in --out")
    add_device(prune)


def add_export(sub) -> None:
    export = sub.add_parser("export", help="write a run as svox2 ckpt.npz, PLY points, a mesh, a video, depth maps")
    export.add_argument("run", help="run folder")
    export.add_argument("--format", required=True, metavar="FORMAT", help="svox2, ply, mesh, video or depth")
    export.add_argument("--out", default=None, help="output file (folder for depth); default DIR/export/...")
    export.add_argument("--density-thresh", type=float, default=None, metavar="S",
                        help="ply: least density of a point; mesh: iso level (default 10)")
    export.add_argument("--resolution", type=int, default=None, help="mesh: samples along the longest axis")
    export.add_argument("--frames", type=int, default=None, help="video: orbit frames (120); depth: render an orbit")
    export.add_argument("--split", default="test", choices=["train", "val", "test"], help="depth: views to render")
    export.add_argument("--views", type=int, default=0, help="depth: only the first N views")
    add_device(export)
    export.add_argument("--scene-scale", type=float, default=1.0,
                        help="svox2: world scale of the file (2/3 for svox2's Blender fits)")


def add_import(sub) -> None:
    imp = sub.add_parser("import", help="make a run folder from an svox2 ckpt.npz and its scene")
    imp.add_argument("checkpoint", help="svox2 ckpt.npz (or a grid.npz)")
    imp.add_argument("data", nargs="?", default=None, help="the scene it was fitted to; omit for the built-in scene")
    imp.add_argument("--out", required=True, help="run folder to create")
    imp.add_argument("--config", default=None, help="config whose render settings to use (default: the scene's)")
    imp.add_argument("--scene-scale", type=float, default=1.0,
                     help="world scale of the file (2/3 for svox2's Blender fits)")
    imp.add_argument("--force", action="store_true", help="replace an existing run in --out")
    imp.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. step_size=0.25")


def add_compare(sub) -> None:
    compare = sub.add_parser("compare", help="fit models under the same budget and report PSNR vs time, quality, "
                                             "speed, size, memory (or report on existing runs)")
    compare.add_argument("data", nargs="?", default=None, help="scene folder; omit for the built-in scene")
    compare.add_argument("--runs", nargs="+", default=None, metavar="DIR",
                         help="report on these existing runs instead of fitting (the first is the reference)")
    compare.add_argument("--out", default="runs/compare", help="report folder; fits go to OUT/<model>")
    compare.add_argument("--budget-minutes", type=float, default=10.0, metavar="M",
                         help="training minutes per model (default 10)")
    compare.add_argument("--models", default="plenoxels,nerf",
                         help="comma-separated models, each optionally model:config (default plenoxels,nerf)")
    compare.add_argument("--eval-every", type=float, default=None, metavar="S",
                         help="training seconds between held-out evaluations (default: budget / 10)")
    compare.add_argument("--views", type=int, default=5,
                         help="test views for the curve and the final evaluation (default 5; 0: all)")
    compare.add_argument("--curve-stride", type=int, default=0, metavar="K",
                         help="held-out curve: every K-th pixel per axis (default 0: about 24 pixels across)")
    compare.add_argument("--downscale", type=int, default=None,
                         help="image downscale for every fit (default: the largest of the models' configs)")
    compare.add_argument("--levels", default="20,25,30", help="PSNR levels (dB) for time-to-PSNR (default 20,25,30)")
    compare.add_argument("--force", action="store_true", help="replace existing runs in OUT")
    add_device(compare)
    compare.add_argument("--quiet", action="store_true", help="no progress bars")


def split_overrides(args: argparse.Namespace) -> None:
    """argparse puts a lone key=value into ``data``; move it to the overrides."""
    if args.data is not None and "=" in args.data:
        args.overrides.insert(0, args.data)
        args.data = None


def run_command(args: argparse.Namespace) -> int:
    """Call the command function ``args`` names and print its result; returns the exit code."""
    if args.command == "fit":
        from plenox.commands.fit import fit

        split_overrides(args)
        metrics = fit(args.data, args.out, args.config, args.overrides, args.minutes, args.resume, args.force,
                      args.device, progress=not args.quiet, model=args.model)
        if metrics.get("interrupted"):
            print(f"interrupted at step {metrics['step']}; checkpoint saved in {args.out} (continue with --resume)")
            return 130
        print_metrics(metrics, args.out)
    elif args.command == "eval":
        from plenox.commands.evaluate import eval_run

        print_metrics(eval_run(args.run, args.split, args.views, args.device), args.run)
    elif args.command == "render":
        from plenox.commands.render import render_run

        summary = render_run(args.run, args.split, args.orbit, args.video, args.depth, args.views, device=args.device)
        print(f"rendered {summary['frames']} frames to {summary['folder']} at {summary['fps']:.1f} fps"
              + (f"; video {summary['video']}" if summary["video"] else ""))
    elif args.command == "prune":
        from plenox.commands.prune import prune_run

        print_prune(prune_run(args.run, args.out, args.weight_thresh, args.density_thresh, args.dilate,
                              args.ray_stride, args.views, args.in_place, args.force, args.device))
    elif args.command == "export":
        from plenox.commands.export import export_run

        result = export_run(args.run, args.format, args.out, args.density_thresh, args.resolution, args.frames,
                            args.split, args.views, args.scene_scale, args.device)
        counts = ", ".join(f"{k} {v:,}" for k, v in result.items()
                           if k not in ("format", "path", "seconds", "fps", "note"))
        print(f"wrote {result['format']} {result['path']} ({counts}) in {result['seconds']:.1f} s")
        if "note" in result:
            print(result["note"])
    elif args.command == "import":
        from plenox.commands.import_svox2 import import_run

        split_overrides(args)
        record = import_run(args.checkpoint, args.data, args.out, args.config, args.overrides, args.scene_scale,
                            args.force)
        print(f"imported {record['checkpoint']} ({'x'.join(map(str, record['resolution']))}, "
              f"{record['voxels']:,} voxels) as the run {record['out']}")
    elif args.command == "compare":
        run_compare(args)
    else:
        from plenox.commands.info import format_info, run_info

        summary = run_info(args.run)
        print(json.dumps(summary) if args.json else "\n".join(format_info(summary)))
    return 0


def run_compare(args: argparse.Namespace) -> None:
    from plenox.commands import compare
    from plenox.errors import CompareError

    if args.runs and args.data:
        raise CompareError("give a scene to fit or --runs to report on, not both")
    levels = compare.parse_levels(args.levels)
    if args.runs:
        report = compare.compare_runs(args.runs, args.out, levels)
    else:
        report = compare.compare_fit(args.data, args.out, args.budget_minutes, args.models.split(","),
                                     args.eval_every, args.views, args.curve_stride, args.downscale, args.force,
                                     args.device, progress=not args.quiet, levels=levels)
    print("\n".join(compare.format_summary(report, args.out)))


def print_prune(report: dict) -> None:
    b, a = report["before"], report["after"]
    print(f"pruned by {report['rule']} >= {report['threshold']:.4g} (dilate {report['dilate']}) "
          f"in {report['prune_seconds']:.1f} s")
    print(f"voxels {b['voxels']:,} -> {a['voxels']:,} ({100 * a['voxels'] / max(b['voxels'], 1):.1f}%), "
          f"memory {b['memory_bytes'] / 1e6:.1f} -> {a['memory_bytes'] / 1e6:.1f} MB, "
          f"grid.npz {b['file_bytes'] / 1e6:.1f} -> {a['file_bytes'] / 1e6:.1f} MB")
    print(f"{report['split']} PSNR ({report['views']} views) {b['psnr']:.3f} -> {a['psnr']:.3f} dB "
          f"({a['psnr'] - b['psnr']:+.3f}); run written to {report['out']}")


def print_metrics(metrics: dict, folder: str) -> None:
    r, p = metrics["results"], metrics["protocol"]
    print(f"{p['scene']} {p['split']} ({p['views']} views, {p['resolution'][0]}x{p['resolution'][1]}): "
          f"PSNR {r['psnr']:.2f} +- {r['psnr_std']:.2f} dB, SSIM {r['ssim']:.4f}, {r['fps']:.1f} fps")
    print(f"results in {folder} (metrics: {folder}/eval/metrics.json)")


def parse(parser: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """Parse argv; key=value words anywhere after a command that takes overrides (fit, import)
    are config overrides (argparse alone only takes them before the options)."""
    args, extra = parser.parse_known_args(argv)
    overrides = [word for word in extra if "=" in word and not word.startswith("-")]
    unknown = [word for word in extra if word not in overrides]
    if unknown or (overrides and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or overrides)}")
    if overrides:
        args.overrides.extend(overrides)
    return args


def main(argv=None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    if args.command is None:
        parser.print_help()
        return 0
    from plenox.errors import UserError
    from plenox.models.nerf import configure_threads

    configure_threads()
    try:
        return run_command(args)
    except UserError as err:
        print(f"plenox {args.command}: error: {err}", file=sys.stderr)
        return USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
