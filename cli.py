"""The ``plenox`` command: parse, validate, call the library, print.

Every command is a thin wrapper over ``plenox.workflow``; errors the user can fix (bad
data, bad config, bad run folder, unusable device) print one line and exit with code 2.
"""

import argparse
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
    fit.add_argument("--config", default=None, help="config name (synthetic, llff, custom, builtin, tiny) or JSON file")
    fit.add_argument("--out", default="runs/latest", help="run folder to write (default: runs/latest)")
    fit.add_argument("--minutes", type=float, default=None, help="wall-clock training budget")
    fit.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    fit.add_argument("--force", action="store_true", help="replace an existing run in --out")
    fit.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. steps=2000")

    render = sub.add_parser("render", help="render a run's views, an orbit video, depth maps")
    render.add_argument("run", help="run folder written by plenox fit")
    render.add_argument("--split", default="test", choices=["train", "val", "test"])
    render.add_argument("--orbit", type=int, default=0, metavar="FRAMES", help="render an orbit of FRAMES views")
    render.add_argument("--video", default=None, metavar="OUT.mp4", help="also write the frames as a video")
    render.add_argument("--depth", action="store_true", help="also write 16-bit depth PNGs and previews")
    render.add_argument("--views", type=int, default=0, help="render only the first N views")

    ev = sub.add_parser("eval", help="measure a run on a split: DIR/eval/metrics.json")
    ev.add_argument("run", help="run folder written by plenox fit")
    ev.add_argument("--split", default="test", choices=["train", "val", "test"])
    ev.add_argument("--views", type=int, default=0, help="evaluate only the first N views (default: all)")
    return parser


def split_overrides(args: argparse.Namespace) -> None:
    """argparse puts a lone key=value into ``data``; move it to the overrides."""
    if args.data is not None and "=" in args.data:
        args.overrides.insert(0, args.data)
        args.data = None


def run_command(args: argparse.Namespace) -> int:
    from plenox import workflow

    if args.command == "fit":
        split_overrides(args)
        metrics = workflow.fit_run(args.data, args.out, args.config, args.overrides, args.minutes,
                                   args.resume, args.force, args.device, progress=not args.quiet)
        if metrics.get("interrupted"):
            print(f"interrupted at step {metrics['step']}; checkpoint saved in {args.out} (continue with --resume)")
            return 130
        print_metrics(metrics, args.out)
    elif args.command == "eval":
        print_metrics(workflow.eval_run(args.run, args.split, args.views), args.run)
    elif args.command == "render":
        summary = workflow.render_run(args.run, args.split, args.orbit, args.video, args.depth, args.views)
        print(f"rendered {summary['frames']} frames to {summary['folder']} at {summary['fps']:.1f} fps"
              + (f"; video {summary['video']}" if summary["video"] else ""))
    return 0


def print_metrics(metrics: dict, folder: str) -> None:
    r, p = metrics["results"], metrics["protocol"]
    print(f"{p['scene']} {p['split']} ({p['views']} views, {p['resolution'][0]}x{p['resolution'][1]}): "
          f"PSNR {r['psnr']:.2f} +- {r['psnr_std']:.2f} dB, SSIM {r['ssim']:.4f}, {r['fps']:.1f} fps")
    print(f"results in {folder} (metrics: {folder}/eval/metrics.json)")


def parse(parser: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """Parse argv; key=value words anywhere after ``fit`` are config overrides (argparse alone
    only takes them before the options)."""
    args, extra = parser.parse_known_args(argv)
    overrides = [word for word in extra if "=" in word and not word.startswith("-")]
    unknown = [word for word in extra if word not in overrides]
    if unknown or (overrides and args.command != "fit"):
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
    from plenox.errors import USER_ERRORS

    try:
        return run_command(args)
    except USER_ERRORS as err:
        print(f"plenox {args.command}: error: {err}", file=sys.stderr)
        return USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
