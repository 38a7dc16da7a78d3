"""fit-many on one machine: wall time of many scenes on Ray against running them one after another.

1. Real scenes (lego_200, fern at downscale 8, the built-in scene), each with its default config
   compressed to ``--steps`` steps (upsampling and learning-rate schedule scaled to fit), so every
   variant does the same work whatever the load:
     sequential    one ``plenox fit`` process per scene, one after another (all cores each)
     ray-parallel  ``plenox fit-many --cpus-per-scene K`` (cores / K scenes at once)
     ray-one       ``plenox fit-many`` (default: all cores per scene, so one at a time)
2. Ray's cost per scene: N small built-in variants (written as Blender folders, ``--tiny-steps``
   steps each), all cores per scene, fitted by ``plenox fit-many`` with Ray and with Ray hidden
   (its sequential fallback: the same process and code path without Ray) and by N ``plenox fit``
   processes. (Ray - fallback) / N is what Ray adds per scene, cluster start and stop included;
   split into the fixed part (command wall minus the scenes' walls) and the part per scene
   (a scene's wall minus its training seconds: worker start, loading, evaluation), which
   training-time noise on a loaded machine does not touch.

    python benchmarks/fit_many.py --out runs/bench_fit_many
    python benchmarks/fit_many.py --steps 300 --max-resolution 128 --out runs/bench_fit_many   # quick

The real scenes come from --data (default $PLENOX_DATA, else ../shared/data); missing ones are
left out with a note. Prints a Markdown table and, last, one JSON object (also OUT/benchmark.json).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from plenox.data import builtin_scene, write_blender_scene
from plenox.runs.loading import default_config_name
from plenox.runs.registry import load_config

# Scene folder, and overrides of its own (fern at a quarter of images_4's size).
REAL = [("lego_200", []), ("fern", ["downscale=8"]), ("builtin", [])]
HIDE_RAY = "import sys; sys.modules['ray'] = None; from plenox.cli import main; sys.exit(main(sys.argv[1:]))"


def compressed(source: str, steps: int, max_resolution: int | None) -> list[str]:
    """Overrides that fit the scene's default config into ``steps`` steps: its upsampling steps,
    learning-rate decay and density delay scaled by steps / the config's steps; with
    ``max_resolution``, the grid levels larger than that along an axis are left out."""
    cfg = load_config(default_config_name(source))
    scale = steps / cfg.steps
    levels = [r for r in cfg.resolutions if max_resolution is None or max(r) <= max_resolution] or \
        [cfg.resolutions[0]]
    upsample = [max(1, round(s * scale)) for s in cfg.upsample_steps][:len(levels) - 1]
    words = [f"steps={steps}", f"lr_decay_steps={max(1, round(cfg.lr_decay_steps * scale))}",
             f"upsample_steps={json.dumps(upsample).replace(' ', '')}",
             f"resolutions={json.dumps([list(r) for r in levels]).replace(' ', '')}"]
    if hasattr(cfg, "lr_density_delay_steps"):
        words.append(f"lr_density_delay_steps={round(cfg.lr_density_delay_steps * scale)}")
    return words


def plenox(*args, hide_ray: bool = False) -> float:
    """Run a plenox command in a fresh process; returns its wall seconds (exit code 0 required)."""
    command = [sys.executable, "-c", HIDE_RAY] if hide_ray else [sys.executable, "-m", "plenox.cli"]
    start = time.perf_counter()
    done = subprocess.run([*command, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"plenox {' '.join(map(str, args))} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def fit_many_run(list_file: Path, out: Path, extra: list, hide_ray: bool = False) -> dict:
    """fit-many of the scenes in ``list_file`` into ``out`` (replacing earlier runs): wall seconds and its summary."""
    seconds = plenox("fit-many", list_file, "--out", out, "--force", "--quiet", *extra, hide_ray=hide_ray)
    report = json.loads((out / "summary.json").read_text())
    rows = report["scenes"]
    return {"wall_seconds": seconds,
            # with one scene at a time: process start, Ray start and stop, probes, summary
            "outside_scenes_seconds": seconds - sum(r["wall_seconds"] for r in rows),
            # per scene: worker start, scene loading, evaluation
            "per_scene_outside_training": sum(r["wall_seconds"] - r["training_seconds"] for r in rows) / len(rows),
            "scenes": {r["name"]: {k: r.get(k) for k in ("psnr", "training_seconds",
                                                                                  "wall_seconds", "attempts")}
                                                for r in report["scenes"]},
            "runner": report["settings"]["runner"]}


def sequential_fits(scenes: list[tuple[str, list]], out: Path, overrides: list) -> dict:
    """One ``plenox fit`` process per scene, one after another: total wall seconds and PSNRs."""
    total, psnrs = 0.0, {}
    for source, own in scenes:
        name = Path(source).name
        total += plenox("fit", source, "--out", out / name, "--force", "--quiet", *overrides, *own)
        psnrs[name] = json.loads((out / name / "eval" / "metrics.json").read_text())["results"]["psnr"]
    return {"wall_seconds": total, "psnr": psnrs}


def real_scenes(data: Path, steps: int, max_resolution: int | None) -> list[tuple[str, list]]:
    scenes = []
    for name, own in REAL:
        source = "builtin" if name == "builtin" else str(data / name)
        if source != "builtin" and not Path(source).is_dir():
            print(f"note: {source} is missing; left out", file=sys.stderr)
            continue
        scenes.append((source, [*compressed(source, steps, max_resolution), *own]))
    return scenes


def write_list(path: Path, scenes: list[tuple[str, list]]) -> Path:
    path.write_text("".join(f"{source} {' '.join(words)}\n" for source, words in scenes))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("PLENOX_DATA", str(Path(__file__).resolve().parents[2]
                                                                                 / "shared" / "data")))
    parser.add_argument("--out", default="runs/bench_fit_many")
    parser.add_argument("--steps", type=int, default=1000, help="training steps of each real scene")
    parser.add_argument("--max-resolution", type=int, default=None,
                        help="leave out grid levels larger than this along an axis (a quick run)")
    parser.add_argument("--cpus-per-scene", type=int, default=1, help="ray-parallel: CPUs of each scene")
    parser.add_argument("--tiny-scenes", type=int, default=3, help="part 2: how many small built-in variants")
    parser.add_argument("--tiny-steps", type=int, default=100, help="part 2: training steps of each")
    parser.add_argument("--skip-real", action="store_true", help="part 2 only")
    args = parser.parse_args()

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0))
    result = {"cores": cores, "machine": platform.machine(), "load_average_at_start": os.getloadavg()}

    if not args.skip_real:
        scenes = real_scenes(Path(args.data), args.steps, args.max_resolution)
        listed = write_list(out / "real.txt", scenes)
        result["real"] = {
            "steps": args.steps, "max_resolution": args.max_resolution, "scenes": [Path(s).name for s, _ in scenes],
            "sequential": sequential_fits(scenes, out / "real_sequential", []),
            "ray_parallel": {"cpus_per_scene": args.cpus_per_scene, **fit_many_run(
                listed, out / "real_parallel", ["--cpus-per-scene", args.cpus_per_scene])},
            "ray_one_at_a_time": fit_many_run(listed, out / "real_one", []),
        }

    tiny = []
    for seed in range(1, args.tiny_scenes + 1):
        folder = out / "tiny_data" / f"variant{seed}"
        if not (folder / "transforms_train.json").exists():
            write_blender_scene(builtin_scene(size=32, n_train=20, n_test=4, seed=seed), folder)
        tiny.append((str(folder), [f"steps={args.tiny_steps}", f"lr_decay_steps={args.tiny_steps}",
                                   f"upsample_steps=[{args.tiny_steps // 2}]", "eval_views=4"]))
    tiny_list = write_list(out / "tiny.txt", tiny)
    ray = fit_many_run(tiny_list, out / "tiny_ray", ["--config", "tiny"])
    fallback = fit_many_run(tiny_list, out / "tiny_fallback", ["--config", "tiny"], hide_ray=True)
    separate = sequential_fits(tiny, out / "tiny_sequential", ["--config", "tiny"])
    result["overhead"] = {"scenes": len(tiny), "steps": args.tiny_steps, "ray": ray, "no_ray": fallback,
                          "separate_fit_processes": separate,
                          "ray_seconds_per_scene": (ray["wall_seconds"] - fallback["wall_seconds"]) / len(tiny),
                          "ray_fixed_seconds": ray["outside_scenes_seconds"] - fallback["outside_scenes_seconds"],
                          "ray_per_scene_seconds": (ray["per_scene_outside_training"]
                                                    - fallback["per_scene_outside_training"])}
    result["load_average_at_end"] = os.getloadavg()
    print_table(result)
    (out / "benchmark.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


def print_table(result: dict) -> None:
    print("| run | wall (s) | notes |\n|---|---:|---|")
    if "real" in result:
        real = result["real"]
        psnr = ", ".join(f"{k} {v:.2f}" for k, v in real["sequential"]["psnr"].items())
        print(f"| {' + '.join(real['scenes'])}, {real['steps']} steps each: plenox fit x{len(real['scenes'])} "
              f"| {real['sequential']['wall_seconds']:.1f} | PSNR {psnr} |")
        for key, label in (("ray_parallel", f"fit-many --cpus-per-scene {real['ray_parallel']['cpus_per_scene']}"),
                           ("ray_one_at_a_time", "fit-many (all cores per scene)")):
            run = real[key]
            psnr = ", ".join(f"{k} {v['psnr']:.2f}" for k, v in run["scenes"].items())
            print(f"| same: {label} | {run['wall_seconds']:.1f} | PSNR {psnr} |")
    over = result["overhead"]
    n = over["scenes"]
    print(f"| {n} small built-in variants, {over['steps']} steps: fit-many on Ray | {over['ray']['wall_seconds']:.1f} "
          f"| vs without Ray: {over['ray_seconds_per_scene']:+.1f} s per scene overall; Ray start/stop "
          f"{over['ray_fixed_seconds']:+.1f} s, per scene outside training {over['ray_per_scene_seconds']:+.1f} s |")
    print(f"| same: fit-many without Ray | {over['no_ray']['wall_seconds']:.1f} | one process |")
    print(f"| same: plenox fit x{n} | {over['separate_fit_processes']['wall_seconds']:.1f} | one process each |")


if __name__ == "__main__":
    main()
