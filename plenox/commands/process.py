"""``plenox process SRC --out DATA``: photos or a video -> a posed scene folder (structure-from-motion)."""

from __future__ import annotations

from plenox.capture.options import DEFAULT_CAMERA_MODEL, DEFAULT_MAX_IMAGE_SIZE
from plenox.capture.pipeline import process_capture


def process(src: str, out: str, frames: int | None = None, matcher: str = "auto",
            camera_model: str = DEFAULT_CAMERA_MODEL, max_image_size: int = DEFAULT_MAX_IMAGE_SIZE, downscales: int = 0, force: bool = False, progress: bool = True,
            verbose: bool = False) -> dict:
    """Process the capture ``src`` into ``out`` (see plenox.capture.pipeline.process_capture); returns its process.json record."""
    return process_capture(src, out, frames, matcher, camera_model, max_image_size, downscales, force, progress,
                           verbose)


def format_summary(record: dict, out: str) -> list[str]:
    """What the command prints: registration, time per stage, where the scene is and how to fit it."""
    s = record["seconds"]
    stages = ", ".join(f"{k} {s[k]:.1f} s" for k in ("frames", "features", "matching", "mapping") if k in s)
    folders = ["images/"] + [f"images_{k}/" for k in record["downscales"]] + ["sparse/0/", "transforms.json"]
    return [
        f"registered {record['registered']} of {record['images']} images ({record['points']:,} points, "
        f"mean reprojection error {record['mean_reprojection_error_px']:.2f} px) in {s['total']:.1f} s ({stages})",
        f"wrote {out}: {', '.join(folders)}; fit it with: plenox fit {out}",
    ]
