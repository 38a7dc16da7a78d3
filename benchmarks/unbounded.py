"""Unbounded captures: the background model against the bounded grid on beer_360, same budget.

Fits a walk-around phone capture (default ../shared/data/beer_360 at downscale 2, 360x640)
twice for the same ``--minutes`` (or ``--steps``): with the ``unbounded`` config (the grid
plus svox2's background model) and with the bounded ``custom`` config; evaluates both on the
held-out views (every 8th frame: 0, 8, 16, ...), writes a side-by-side image of three of them
(ground truth / bounded / unbounded) and prints one JSON object as its last line.

    python benchmarks/unbounded.py --minutes 30 --out runs/bench_unbounded
    python benchmarks/unbounded.py --minutes 2 --image docs/images/unbounded_beer360.png

beer_360 ships an LLFF ``poses_bounds.npy``, which plenox's LLFF loader fits in NDC as a
forward-facing scene. Until the loader recognises object-centric captures (their camera
directions surround the object), this benchmark frames it itself (``object_capture``): the
point nearest every optical axis becomes the centre, the cameras' level right axes give
the up direction (+z), and the median camera distance becomes 4, so the box of half-size
1.5 around the object is the Blender scenes' (the framing of the COLMAP work in progress).
Overrides (``key=value``) apply to both configs.
"""

import argparse
import json
import os
import platform
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from plenox.data.images import IMAGE_SUFFIXES, load_images
from plenox.data.cameras import Cameras
from plenox.data.llff import read_poses_bounds
from plenox.data.scene import Scene, Split
from plenox.io.atomic import atomic_write_image
from plenox.models.nerf import configure_threads
from plenox.runs.evaluation import evaluate_model, to_uint8
from plenox.runs.folder import RunDir
from plenox.runs.registry import load_config
from plenox.training.grid_trainer import GridTrainer

HOLDOUT_EVERY = 8
CAMERA_DISTANCE, BOX_RADIUS = 4.0, 1.5


def object_capture(folder: Path, downscale: int) -> Scene:
    """An object-centric LLFF capture framed in a box (see the module docstring); every 8th view is held out."""
    poses, _ = read_poses_bounds(folder / "poses_bounds.npy")
    c2w = np.tile(np.eye(4), (len(poses), 1, 1))
    # poses_bounds columns are [down, right, back, position]: OpenGL wants [right, up, back].
    c2w[:, :3, :4] = np.concatenate([poses[:, :, 1:2], -poses[:, :, 0:1], poses[:, :, 2:4]], axis=2)
    dirs = -c2w[:, :3, 2]
    proj = np.eye(3) - dirs[:, :, None] * dirs[:, None, :]
    meet = np.linalg.solve(proj.sum(0), (proj @ c2w[:, :3, 3, None]).sum(0)[:, 0])
    right = c2w[:, :3, 0]
    up = np.linalg.eigh(right.T @ right)[1][:, 0]          # perpendicular to every (level) right axis
    up = up if up @ c2w[:, :3, 1].sum(0) > 0 else -up
    axis = np.cross(up, [0.0, 0.0, 1.0])
    s, c = np.linalg.norm(axis), up[2]
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]]) / max(s, 1e-12)
    rot = np.eye(3) + s * k + (1 - c) * k @ k
    scale = CAMERA_DISTANCE / np.median(np.linalg.norm(c2w[:, :3, 3] - meet, axis=1))
    framed = c2w.copy()
    framed[:, :3, :3] = rot @ c2w[:, :3, :3]
    framed[:, :3, 3] = scale * (c2w[:, :3, 3] - meet) @ rot.T
    paths = sorted(p for p in (folder / "images").iterdir() if p.suffix in IMAGE_SUFFIXES)
    images, _, (h, w) = load_images(paths, downscale, None)
    full_h, full_w, focal = poses[0, :, 4]
    cams = Cameras(c2w=framed, fx=focal * w / full_w, fy=focal * w / full_w, cx=w / 2, cy=h / 2, width=w,
                   height=h).scaled(downscale)
    test = np.arange(len(paths)) % HOLDOUT_EVERY == 0
    splits = {}
    for split, mask in (("train", ~test), ("test", test)):
        idx = torch.from_numpy(np.nonzero(mask)[0])
        splits[split] = Split(images=images[idx], cameras=cams.subset(idx), names=[paths[i].stem for i in idx])
    return Scene(name=folder.name, format="capture", splits=splits, background=None, center=(0.0, 0.0, 0.0),
                 radius=(BOX_RADIUS,) * 3, near=0.05, far=4 * CAMERA_DISTANCE, ndc=False,
                 holdout=f"every {HOLDOUT_EVERY}th view (0, {HOLDOUT_EVERY}, {2 * HOLDOUT_EVERY}, ...) held out, "
                         "in file-name order")


def fit(scene: Scene, config: str, overrides: list, out: Path, minutes: float | None, progress: bool) -> dict:
    """Fit ``config`` to ``scene`` into ``out`` and evaluate every held-out view; returns the metrics."""
    cfg = load_config(config, overrides).for_scene(scene)
    run = RunDir(out)
    run.create(cfg.to_dict(), {"source": scene.name, "format": scene.format, "downscale": 0}, force=True)
    trainer = GridTrainer(scene, cfg, run, torch.device("cpu"))
    trainer.train(minutes=minutes, progress=progress)
    return evaluate_model(run, scene, trainer.renderer(), "test", 0, trainer.elapsed)


def side_by_side(scene: Scene, runs: dict, views: list[int], path: Path) -> None:
    """Rows of ground truth / each run's render of the held-out ``views``, from the runs' eval images."""
    rows = []
    for i in views:
        name = scene.splits["test"].names[i]
        tiles = [to_uint8(scene.splits["test"].images[i])]
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
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_intermixed_args()

    configure_threads()
    data = Path(os.environ.get("PLENOX_DATA", "")) / "beer_360" if not Path(args.data).exists() else Path(args.data)
    if not data.exists():
        raise SystemExit(f"scene not found: {args.data} (set PLENOX_DATA or give --data)")
    scene = object_capture(data, args.downscale)
    out = Path(args.out)
    results, runs = {}, {}
    for label, config in (("bounded", "custom"), ("unbounded", "unbounded")):
        metrics = fit(scene, config, args.overrides, out / label, args.minutes, not args.quiet)
        r, p = metrics["results"], metrics["protocol"]
        runs[label] = out / label
        results[label] = {"config": config, "psnr": r["psnr"], "psnr_std": r["psnr_std"], "ssim": r["ssim"],
                          "views": p["views"], "training_seconds": p["training_seconds"],
                          "voxels": p["voxels"], "grid_resolution": p["grid_resolution"],
                          "box_radius": p["box_radius"], "background_model": p["background_model"]}
        print(f"{scene.name} {label} ({config}): held-out PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.3f} on "
              f"{p['views']} views ({p['resolution'][0]}x{p['resolution'][1]}), {p['training_seconds']:.0f} s "
              f"training, {p['voxels']:,} voxels", flush=True)
    side_by_side(scene, runs, args.views, Path(args.image))
    print(json.dumps({"scene": scene.name, "downscale": args.downscale, "minutes": args.minutes,
                      "holdout": f"every {HOLDOUT_EVERY}th view (0, 8, 16, ...)", "runs": results,
                      "gain_db": results["unbounded"]["psnr"] - results["bounded"]["psnr"],
                      "image": args.image, "cpus": os.cpu_count(), "machine": platform.machine()}))


if __name__ == "__main__":
    main()
