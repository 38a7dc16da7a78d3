"""``plenox render``: a run's views, an orbit video, depth maps."""

from pathlib import Path

from plenox.errors import RunError
from plenox.options import require_number
from plenox.runs.loading import open_run
from plenox.runs.rendering import orbit_scene, render_views


def render_run(path: str, split: str = "test", orbit_frames: int = 0, video: str | None = None,
               depth: bool = False, views: int = 0, out_dir: str | None = None, device: str = "auto") -> dict:
    """Render a split's views (or an orbit of ``orbit_frames``) to ``out_dir`` (default
    DIR/renders/<split or orbit>/), optionally depth maps and an mp4. Returns frames,
    seconds per frame and fps."""
    require_number("--views", views, 0, integer=True)
    require_number("--orbit", orbit_frames, 0, integer=True)
    run, _, scene, renderer = open_run(path, device)
    if orbit_frames > 0:
        scene, split = orbit_scene(scene, orbit_frames, run.path), "orbit"
    if split not in scene.splits:
        raise RunError(f"{run.path}: the scene has no {split!r} split")
    target = Path(out_dir) if out_dir else run.renders(split)
    return render_views(renderer, scene, split, target, views, depth, Path(video) if video else None)
