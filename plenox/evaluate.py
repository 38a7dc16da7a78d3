"""Render a split's views and measure them: PSNR / SSIM per image, render speed, protocol.

The metrics file is a superset of nerfstudio's eval JSON (design.md section 4):
{"results": {psnr, psnr_std, ssim, ssim_std, fps, num_rays_per_sec, ...},
 "protocol": {scene, split, views, resolution, background, averaging, model, ...},
 "per_image": [{name, psnr, ssim, seconds}, ...]}
"""

import os
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from plenox.cameras import image_rays, to_ndc
from plenox.data import Scene
from plenox.metrics import psnr, ssim, summarize
from plenox.runs import atomic_write_json


def view_rays(scene: Scene, split: str, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays (H, W, 3) of view i of a split, in NDC when the scene is forward-facing."""
    cams = scene.splits[split].cameras
    origins, dirs = image_rays(cams, i)
    if scene.ndc:
        shape = origins.shape
        o, d = to_ndc(origins.reshape(-1, 3), dirs.reshape(-1, 3), cams.width, cams.height, scene.ndc_focal)
        origins, dirs = o.reshape(shape), d.reshape(shape)
    return origins, dirs


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def write_png(path: Path, image: np.ndarray) -> None:
    """Write a PNG atomically (temp file + rename)."""
    tmp = path.with_name(path.name + ".tmp.png")
    iio.imwrite(tmp, image)
    os.replace(tmp, path)


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
        origins, dirs = view_rays(scene, split, i)
        start = time.perf_counter()
        rgb = render_fn(origins, dirs)["rgb"].cpu()
        seconds.append(time.perf_counter() - start)
        gt = data.images[i]
        per_image.append({"name": data.names[i], "psnr": psnr(rgb, gt), "ssim": ssim(rgb, gt),
                          "seconds": seconds[-1]})
        if save_images:
            write_png(image_dir / f"{data.names[i]}.png", to_uint8(rgb))
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
