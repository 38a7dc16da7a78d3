"""Render a split's views and measure them: PSNR / SSIM per image, render speed, protocol.

The metrics file is a superset of nerfstudio's eval JSON (docs/eval.md):
{"results": {psnr, psnr_std, ssim, ssim_std, fps, num_rays_per_sec, ...},
 "protocol": {scene, split, views, resolution, background, averaging, model, ...},
 "per_image": [{name, psnr, ssim, seconds}, ...]}
"""

import time
from pathlib import Path

import numpy as np
import torch

from plenox.data import Scene
from plenox.io.atomic import atomic_write_image, atomic_write_json
from plenox.metrics import psnr, ssim, summarize
from plenox.models.renderer import Renderer
from plenox.runs.folder import RunDir


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """An image in [0, 1] (H, W, 3) as uint8, rounded."""
    return (image.clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def evaluate(render_fn, scene: Scene, split: str, out_dir: Path, protocol: dict, views: int = 0,
             save_images: bool = True) -> dict:
    """Render ``views`` views of ``split`` (0 = all) with render_fn(origins, dirs) -> dict(rgb, ...)
    and write out_dir/metrics.json (plus out_dir/images/<name>.png). Returns the metrics."""
    data = scene.splits[split]
    count = len(data) if views <= 0 else min(views, len(data))
    out_dir.mkdir(parents=True, exist_ok=True)
    image_dir = out_dir / "images"
    if save_images:
        image_dir.mkdir(exist_ok=True)
    per_image, seconds = [], []
    for i in range(count):
        origins, dirs = scene.view_rays(split, i)
        start = time.perf_counter()
        rgb = render_fn(origins, dirs)["rgb"].cpu()
        seconds.append(time.perf_counter() - start)
        gt = data.images[i]
        per_image.append({"name": data.names[i], "psnr": psnr(rgb, gt), "ssim": ssim(rgb, gt),
                          "seconds": seconds[-1]})
        if save_images:
            atomic_write_image(image_dir / f"{data.names[i]}.png", to_uint8(rgb))
    cams = data.cameras
    psnr_mean, psnr_std = summarize([p["psnr"] for p in per_image])
    ssim_mean, ssim_std = summarize([p["ssim"] for p in per_image])
    total = float(np.sum(seconds))
    metrics = {
        "results": {"psnr": psnr_mean, "psnr_std": psnr_std, "ssim": ssim_mean, "ssim_std": ssim_std,
                    "fps": count / total, "num_rays_per_sec": count * cams.width * cams.height / total,
                    "render_seconds_per_frame": total / count},
        "protocol": {"scene": scene.name, "format": scene.format, "split": split, "views": count,
                     "views_in_split": len(data), "resolution": [cams.width, cams.height],
                     "averaging": "mean of per-image PSNR and SSIM",
                     "ssim": "11x11 Gaussian window, sigma 1.5, RGB in [0, 1]",
                     **({"holdout": scene.holdout} if scene.holdout else {}), **protocol},
        "per_image": per_image,
    }
    atomic_write_json(out_dir / "metrics.json", metrics)
    return metrics


def evaluate_model(run: RunDir, scene: Scene, renderer: Renderer, split: str, views: int, train_seconds: float,
                   out_dir: Path | None = None, save_images: bool = True) -> dict:
    """Evaluate a fitted model on a split; metrics (and images) go to ``out_dir`` (default DIR/eval)."""
    protocol = {**renderer.protocol(), "training_seconds": train_seconds, "threads": torch.get_num_threads()}
    return evaluate(renderer.render_image, scene, split, out_dir or run.eval_dir(), protocol, views, save_images)


def training_seconds(run: RunDir) -> float:
    """Training seconds of a run as its last log record states them (0 without a log)."""
    times = [record["time"] for record in run.read_log() if "time" in record]
    return times[-1] if times else 0.0
