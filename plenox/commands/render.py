"""``plenox render``: a run's views, an orbit, a camera path or an LLFF spiral; videos, depth maps."""

from pathlib import Path

from plenox.data.camera_paths import path_cameras, read_camera_path, resampled, resized
from plenox.errors import OptionError, RunError
from plenox.options import require_number
from plenox.runs.loading import open_run
from plenox.runs.rendering import VIDEO_FPS, orbit_scene, render_views, spiral_cameras, with_split


def render_run(path: str, split: str = "test", orbit_frames: int = 0, video: str | None = None,
               depth: bool = False, views: int = 0, out_dir: str | None = None, camera_path: str | None = None,
               spiral_frames: int = 0, fps: float | None = None, resolution=None, device: str = "auto") -> dict:
    """Render a split's views, an orbit of ``orbit_frames``, a camera path file (nerfstudio's
    camera_path.json) or an LLFF spiral of ``spiral_frames`` to ``out_dir`` (default
    DIR/renders/<split, orbit, path or spiral>/), optionally depth maps and an mp4 at ``fps``
    (default: the path's, else 30; a path with key-frames is re-sampled at it). ``resolution``
    ((W, H) or the long side) sizes orbit, path and spiral frames. Returns frames, seconds per
    frame and fps."""
    for name, value in (("--views", views), ("--orbit", orbit_frames), ("--spiral", spiral_frames)):
        require_number(name, value, 0, integer=True)
    require_number("--fps", fps, 0, low_open=True)
    if resolution is not None and not (orbit_frames or spiral_frames or camera_path):
        raise OptionError("--resolution sizes --orbit, --spiral and --path frames; a split renders at its own size")
    run, _, scene, renderer = open_run(path, device)
    video_fps = fps or VIDEO_FPS
    if camera_path:
        cam_path = read_camera_path(camera_path)
        cam_path = resampled(cam_path, fps) if fps else cam_path
        scene, split, video_fps = with_split(scene, "path", resized(path_cameras(cam_path), resolution)), "path", \
            cam_path.fps
    elif spiral_frames > 0:
        scene, split = with_split(scene, "spiral", resized(spiral_cameras(run, scene, spiral_frames), resolution)), \
            "spiral"
    elif orbit_frames > 0:
        scene, split = orbit_scene(scene, orbit_frames, run.path), "orbit"
        if resolution is not None:
            scene = with_split(scene, "orbit", resized(scene.splits["orbit"].cameras, resolution))
    if split not in scene.splits:
        raise RunError(f"{run.path}: the scene has no {split!r} split")
    target = Path(out_dir) if out_dir else run.renders(split)
    return render_views(renderer, scene, split, target, views, depth, Path(video) if video else None, video_fps)
