"""The ``plenox`` command: parse, validate, call the library, print.

Every command is a thin wrapper over ``plenox.runs.loading``; errors the user can fix (bad
data, bad config, bad run folder, unusable device) print one line and exit with code 2.
"""

import argparse
import json
import logging
import os
import sys

from plenox import __version__

USER_ERROR = 2
INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plenox", description="Plenoxels radiance fields on the CPU and GPU.")
    parser.add_argument("--version", action="version", version=f"plenox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fit = sub.add_parser("fit", help="fit a radiance field to a folder of posed photos (or the built-in scene)")
    fit.add_argument("data", nargs="?", default=None,
                     help="scene folder (Blender, LLFF, nerfstudio or COLMAP), or photos / a video to run plenox "
                          "process on first (into OUT-data); omit for the built-in scene")
    fit.add_argument("--model", default=None,
                     help="what to fit (default: the config's model, else plenoxels)")
    fit.add_argument("--config", default=None,
                     help="config name (synthetic, llff, custom, builtin, tiny; nerf_synthetic, nerf_llff, nerf_tiny) "
                          "or JSON file; default: picked from the scene's format or capture kind, and printed")
    fit.add_argument("--out", default="runs/latest", help="run folder to write (default: runs/latest)")
    fit.add_argument("--minutes", type=float, default=None, help="wall-clock training budget")
    fit.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    fit.add_argument("--force", action="store_true", help="replace an existing run in --out")
    add_device(fit)
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument("--view", action="store_true",
                     help="open the live web viewer on the model while it trains (and on the result until Ctrl-C)")
    add_server_options(fit)
    fit.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. steps=2000")

    render = sub.add_parser("render", help="render a run's views, an orbit video, depth maps")
    render.add_argument("run", help="run folder written by plenox fit")
    render.add_argument("--split", default="test", choices=["train", "val", "test"])
    render.add_argument("--orbit", type=int, default=0, metavar="FRAMES", help="render an orbit of FRAMES views")
    render.add_argument("--video", default=None, metavar="OUT.mp4", help="also write the frames as a video")
    render.add_argument("--depth", action="store_true", help="also write 16-bit depth PNGs and previews")
    render.add_argument("--views", type=int, default=0, help="render only the first N views")
    add_device(render)
    render.add_argument("--path", default=None, metavar="CAMERA_PATH.json",
                        help="render a camera path (the viewer's or nerfstudio's camera_path.json)")
    render.add_argument("--spiral", type=int, default=0, metavar="FRAMES",
                        help="forward-facing (LLFF) scenes: render the papers' spiral path of FRAMES views")
    render.add_argument("--fps", type=float, default=None,
                        help="video frame rate (default: the path's, else 30); re-samples a path's key-frames")
    render.add_argument("--resolution", default=None, metavar="WxH|N", type=resolution_arg,
                        help="size of orbit, path and spiral frames: WxH, or N pixels on the long side")

    view = sub.add_parser("view", help="serve a web page that renders a run live from the browser's camera")
    view.add_argument("run", help="run folder written by plenox fit")
    add_device(view)
    add_server_options(view)

    ev = sub.add_parser("eval", help="measure a run on a split: DIR/eval/metrics.json")
    ev.add_argument("run", help="run folder written by plenox fit")
    ev.add_argument("--split", default="test", choices=["train", "val", "test"])
    ev.add_argument("--views", type=int, default=0, help="evaluate only the first N views (default: all)")
    add_device(ev)
    add_process(sub)
    add_prune(sub)
    add_export(sub)
    add_import(sub)
    add_compare(sub)
    add_fit_many(sub)
    info = sub.add_parser("info", help="what a run folder holds: grid size, training, evaluation")
    info.add_argument("run", help="run folder")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def add_device(parser) -> None:
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where to train or render (default auto: a CUDA GPU when usable, else the CPU)")


def resolution_arg(text: str):
    """argparse type of --resolution: (W, H) or a long side N."""
    from plenox.data.camera_paths import parse_resolution
    try:
        return parse_resolution(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_server_options(parser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="viewer address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 shares it)")
    parser.add_argument("--port", type=int, default=8080, help="viewer port (default 8080)")


def add_process(sub) -> None:
    from plenox.capture import options

    proc = sub.add_parser("process", help="pose a folder of photos or a video by structure-from-motion (pycolmap) "
                                          "into a scene folder plenox fit reads")
    proc.add_argument("src", help="folder of photos (.jpg/.png, one camera) or a video (.mp4, .mov, .avi)")
    proc.add_argument("--out", required=True, help="scene folder to write (images/, sparse/0/, transforms.json)")
    proc.add_argument("--frames", type=int, default=None, metavar="N",
                      help="video: keep the sharpest frame of each of N equal windows (default ~3 per second, 50-150)")
    proc.add_argument("--matcher", default="auto", choices=options.MATCHERS,
                      help=f"image pairs to match (default auto: exhaustive up to {options.EXHAUSTIVE_MAX_IMAGES} "
                           "photos, else sequential)")
    proc.add_argument("--camera-model", default=options.DEFAULT_CAMERA_MODEL, choices=options.CAMERA_MODELS,
                      help=f"COLMAP camera model shared by all images (default {options.DEFAULT_CAMERA_MODEL})")
    proc.add_argument("--max-image-size", type=sift_image_size, default=options.DEFAULT_MAX_IMAGE_SIZE, metavar="PX",
                      help=f"longest side SIFT features are found at (default {options.DEFAULT_MAX_IMAGE_SIZE})")
    proc.add_argument("--downscales", type=int, default=0, choices=range(options.MAX_DOWNSCALES + 1), metavar="K",
                      help="also write images_2 ... images_{2^K} (default 0)")
    proc.add_argument("--force", action="store_true", help="replace an earlier plenox process output in --out")
    proc.add_argument("--quiet", action="store_true", help="no progress bars")
    proc.add_argument("--verbose", action="store_true", help="show COLMAP's own log")


def sift_image_size(text: str) -> int:
    """--max-image-size: an integer of at least 32 pixels (SIFT's smallest useful image)."""
    if not text.isdigit() or int(text) < 32:
        raise argparse.ArgumentTypeError(f"must be an integer of at least 32 pixels, got {text!r}")
    return int(text)


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


def add_fit_many(sub) -> None:
    many = sub.add_parser("fit-many", help="fit many scenes, each into OUT/<name>/ as fit would, on Ray when "
                                           "installed; resumable; OUT/summary.md")
    many.add_argument("scenes", nargs="+", metavar="SCENE",
                      help="scene folders or files, globs, .txt files listing them, or builtin")
    many.add_argument("--out", required=True, help="folder of the runs (OUT/<name>/) and the summary")
    many.add_argument("--model", default=None, help="what to fit (default: the config's model, else plenoxels)")
    many.add_argument("--config", default=None, help="config name or JSON file (default: each scene's format's)")
    many.add_argument("--minutes", type=float, default=None, help="wall-clock training budget of each scene")
    many.add_argument("--retries", type=int, default=2,
                      help="tries after the first for a scene that fails other than on bad input (default 2)")
    many.add_argument("--cpus-per-scene", type=int, default=None, metavar="N",
                      help="CPUs (and threads) of each scene's fit (default: all of one machine's)")
    many.add_argument("--gpus-per-scene", type=float, default=0.0, metavar="G",
                      help="GPUs of each scene's fit, fractions allowed (default 0)")
    many.add_argument("--address", default=None,
                      help="join this running Ray cluster (HOST:PORT or auto) instead of starting a local one")
    many.add_argument("--local-cpus", type=int, default=None, metavar="N",
                      help="CPUs of the local Ray cluster (default: all of this machine's)")
    many.add_argument("--force", action="store_true", help="fit every scene again, replacing its run")
    add_device(many)
    many.add_argument("--quiet", action="store_true", help="no progress line")
    many.set_defaults(overrides=[])


def run_fit_many(args: argparse.Namespace) -> int:
    """fit-many: key=value words among the scenes are overrides; prints failures and the totals."""
    from plenox.commands.fit_many import fit_many
    from plenox.runs.many import exit_code

    scenes = [word for word in args.scenes if "=" not in word or os.path.exists(word)]
    overrides = [word for word in args.scenes if word not in scenes] + args.overrides
    report = fit_many(scenes, args.out, args.config, overrides, args.minutes, args.model, args.device,
                      args.retries, args.cpus_per_scene, args.gpus_per_scene, args.address, args.local_cpus,
                      args.force, progress=not args.quiet, notify=lambda line: print(line, file=sys.stderr))
    for row in report["scenes"]:
        if row["status"] == "failed":
            tries = f"{row['attempts']} {'try' if row['attempts'] == 1 else 'tries'}"
            print(f"{row['name']}: failed ({tries}): {row['error']}", file=sys.stderr)
    counts, mean = report["counts"], report["mean"]
    quality = f"; mean {mean['psnr']:.2f} dB PSNR, SSIM {mean['ssim']:.4f}" if mean["psnr"] is not None else ""
    print(f"{counts['done'] + counts['skipped']} of {len(report['scenes'])} scenes succeeded "
          f"({counts['skipped']} done before), {counts['failed']} failed{quality}; "
          f"summary: {report['settings']['out']}/summary.md")
    if report["interrupted"]:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return INTERRUPTED
    return exit_code(report)


def split_overrides(args: argparse.Namespace) -> None:
    """argparse puts a lone key=value into ``data``; move it to the overrides."""
    if args.data is not None and "=" in args.data:
        args.overrides.insert(0, args.data)
        args.data = None


def run_command(args: argparse.Namespace) -> int:
    """Call the command function ``args`` names and print its result; returns the exit code."""
    if args.command == "fit":
        split_overrides(args)
        if args.config is None and not args.resume:
            from plenox.runs.loading import default_config_choice
            args.config, why = default_config_choice(args.data, args.model)
            print(f"config {args.config}: {why} (choose another with --config)")
        fit_args = dict(source=args.data, out=args.out, config=args.config, overrides=args.overrides,
                        minutes=args.minutes, resume=args.resume, force=args.force, device=args.device,
                        progress=not args.quiet, model=args.model)
        if args.view:
            from plenox.commands.fit import fit_with_view
            metrics = fit_with_view(host=args.host, port=args.port, report=lambda m: print_metrics(m, args.out),
                                    **fit_args)
        else:
            from plenox.commands.fit import fit
            metrics = fit(**fit_args)
        if metrics.get("interrupted"):
            print(f"interrupted at step {metrics['step']}; checkpoint saved in {args.out} (continue with --resume)")
            return INTERRUPTED
        if args.view:
            print("viewer stopped")      # the metrics were printed before the page went on showing the result
        else:
            print_metrics(metrics, args.out)
    elif args.command == "view":
        from plenox.commands.view import view_run
        view_run(args.run, args.host, args.port, args.device,
                 announce=lambda url: print(f"viewing {args.run} at {url} (Ctrl-C to stop)", flush=True))
        print("viewer stopped")
    elif args.command == "eval":
        from plenox.commands.evaluate import eval_run

        print_metrics(eval_run(args.run, args.split, args.views, args.device), args.run)
    elif args.command == "render":
        from plenox.commands.render import render_run

        summary = render_run(args.run, args.split, args.orbit, args.video, args.depth, args.views,
                             camera_path=args.path, spiral_frames=args.spiral, fps=args.fps,
                             resolution=args.resolution, device=args.device)
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
    elif args.command == "process":
        run_process(args)
    elif args.command == "fit-many":
        return run_fit_many(args)
    else:
        from plenox.commands.info import format_info, run_info

        summary = run_info(args.run)
        print(json.dumps(summary) if args.json else "\n".join(format_info(summary)))
    return 0


def run_process(args: argparse.Namespace) -> None:
    from plenox.commands.process import format_summary, process

    record = process(args.src, args.out, args.frames, args.matcher, args.camera_model, args.max_image_size,
                     args.downscales, args.force, progress=not args.quiet, verbose=args.verbose)
    print("\n".join(format_summary(record, args.out)))


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


class _PrintHandler(logging.Handler):
    """Prints the library's notes (how a scene was framed, the downscale it was read at) as plain lines."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record))


def show_library_notes() -> None:
    logger = logging.getLogger("plenox")
    if not any(isinstance(h, _PrintHandler) for h in logger.handlers):
        logger.addHandler(_PrintHandler())
        logger.setLevel(logging.INFO)


def main(argv=None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    if args.command is None:
        parser.print_help()
        return 0
    from plenox.errors import UserError
    from plenox.models.nerf import configure_threads

    configure_threads()
    show_library_notes()
    try:
        return run_command(args)
    except UserError as err:
        print(f"plenox {args.command}: error: {err}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        # Every file is replaced atomically, so what is on disk is the last complete version.
        print(f"plenox {args.command}: interrupted; files already written are complete", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
