"""What the ``plenox`` commands do, as plain Python functions (the CLI only parses and prints).

fit_run     fit a model (plenoxels or nerf) to a scene into a run folder (new or resumed), then evaluate it
eval_run    evaluate a run folder's model on a split -> DIR/eval/metrics.json
render_run  render a split's views or an orbit video (and depth maps) from a run folder
open_run    any run folder as (run, config, scene, renderer); load_run: a grid run with its grid
"""

import math
import time
from pathlib import Path

import imageio.v2 as iio2
import numpy as np
import torch

from plenox.backend import resolve_device
from plenox.cameras import Cameras
from plenox.capture.source import is_capture
from plenox.config import RunSettings, config_from_dict, load_config
from plenox.data import Scene, builtin_scene, detect_format, load_scene
from plenox.evaluate import evaluate, to_uint8, view_rays, write_png
from plenox.memory import reset_peak_rss
from plenox.models import model_kind
from plenox.renderer import Renderer
from plenox.runs import RunDir, RunError

BUILTIN = "builtin"


def open_scene(source: str | None, downscale: int = 1) -> Scene:
    """The built-in scene for None/'builtin', else the scene folder at ``source``."""
    if source in (None, BUILTIN):
        return builtin_scene()
    return load_scene(source, downscale=downscale)


def scene_format(source: str | None) -> str:
    """"builtin", or the format of the scene folder at ``source``, without loading its images."""
    return BUILTIN if source in (None, BUILTIN) else detect_format(source)


def default_config_name(source: str | None, model: str = "plenoxels") -> str:
    """The shipped config ``model`` uses for the scene at ``source`` when none is named."""
    return model_kind(model).default_config(scene_format(source))


def scene_config(source: str | None, config: str | None, overrides=(), model: str | None = None
                 ) -> tuple[RunSettings, Scene]:
    """The config (``config``, else the model's default for the scene's format, plus
    ``overrides``), resolved for the scene, and the scene. ``model`` (default: the config's,
    else plenoxels) must agree with the config's."""
    cfg = load_config(config or default_config_name(source, model or "plenoxels"), overrides, model)
    scene = open_scene(source, cfg.downscale)
    return cfg.for_scene(scene), scene


def fit_run(source: str | None, out: str, config: str | None = None, overrides=(), minutes: float | None = None,
            resume: bool = False, force: bool = False, device: str = "auto", progress: bool = True,
            model: str | None = None) -> dict:
    """Fit ``model`` (default: the config's) to ``source`` into the run folder ``out``; evaluate
    at the end. Returns the metrics. The peak memory the log records is this fit's: it is
    reset at the start (plenox.memory). A ``source`` that is a capture (photos without poses,
    a video) is processed into ``<out>-data`` first (plenox.capture.pipeline.capture_for_fit)."""
    run = RunDir(out)
    dev = resolve_device(device)
    reset_peak_rss()
    if resume:
        if not run.exists():
            raise RunError(f"{run.path}: no run to resume")
        cfg = config_from_dict(run.config(), str(run.config_file))
        if model is not None and cfg.model != model:
            raise RunError(f"{run.path}: holds a {cfg.model} run, not a {model} one")
        info = run.scene_info()
        scene = open_scene(info["source"], info["downscale"])
        trainer = model_kind(cfg.model).trainer(scene, cfg, run, dev)
        trainer.resume()
    else:
        if run.exists() and not force:
            raise RunError(f"{run.path}: already holds a run (use --resume to continue it or --force to replace it)")
        if is_capture(source):  # photos without poses or a video: structure-from-motion first, once
            from plenox.capture.pipeline import capture_for_fit  # loads pycolmap, so only for captures
            source = capture_for_fit(source, out, progress)
        cfg, scene = scene_config(source, config, overrides, model)
        run.create(cfg.to_dict(), scene_record(source, scene, cfg.downscale), force=force)
        trainer = model_kind(cfg.model).trainer(scene, cfg, run, dev)
    try:
        trainer.train(minutes=minutes, progress=progress)
    except KeyboardInterrupt:
        return {"interrupted": True, "step": trainer.step}
    return evaluate_model(run, scene, trainer.renderer(), cfg.eval_split, cfg.eval_views, trainer.elapsed)


def scene_record(source: str | None, scene: Scene, downscale: int) -> dict:
    """What a run's scene.json holds: enough to reload the scene (``open_scene``)."""
    source_text = BUILTIN if source in (None, BUILTIN) else str(Path(source).resolve())
    return {"source": source_text, "format": scene.format, "name": scene.name, "downscale": downscale}


def evaluate_model(run: RunDir, scene: Scene, renderer: Renderer, split: str, views: int, train_seconds: float,
                   out_dir: Path | None = None, save_images: bool = True) -> dict:
    """Evaluate a fitted model on a split; metrics (and images) go to ``out_dir`` (default DIR/eval)."""
    protocol = {**renderer.protocol(), "training_seconds": train_seconds, "threads": torch.get_num_threads()}
    return evaluate(renderer.render_image, scene, split, out_dir or run.eval_dir(), protocol, views, save_images)


def run_scene(run: RunDir) -> Scene:
    """The scene a run folder was fitted to, reloaded from its scene.json."""
    info = run.scene_info()
    return open_scene(info["source"], info["downscale"])


def open_run(path: str, device: str = "cpu") -> tuple[RunDir, RunSettings, Scene, Renderer]:
    """(run, config, scene, renderer) of an existing run folder of any model."""
    run = RunDir(path).require()
    cfg = config_from_dict(run.config(), str(run.config_file))
    scene = run_scene(run)
    return run, cfg, scene, model_kind(cfg.model).load_renderer(run, cfg, scene, device)


def load_run(path: str):
    """(run, config, scene, grid) of a Plenoxels run folder; RunError for a run of another model."""
    run = RunDir(path).require()
    grid = run.load_grid()
    return run, config_from_dict(run.config(), str(run.config_file)), run_scene(run), grid


def training_seconds(run: RunDir) -> float:
    """Training seconds of a run as its last log record states them (0 without a log)."""
    log = run.read_log()
    return log[-1]["time"] if log else 0.0


def eval_run(path: str, split: str = "test", views: int = 0) -> dict:
    run, cfg, scene, renderer = open_run(path)
    if split not in scene.splits:
        raise RunError(f"{run.path}: the scene has no {split!r} split (has {', '.join(sorted(scene.splits))})")
    return evaluate_model(run, scene, renderer, split, views, training_seconds(run))


def orbit_cameras(scene: Scene, frames: int) -> Cameras:
    """A circle of cameras around the box centre at the training cameras' mean distance and height."""
    train = scene.splits["train"].cameras
    center = torch.tensor(scene.center, dtype=torch.float32)
    positions = train.c2w[:, :3, 3] - center
    radius_xy = positions[:, :2].norm(dim=1).mean()
    height = positions[:, 2].mean()
    c2w = []
    for k in range(frames):
        a = 2 * math.pi * k / frames
        eye = center + torch.tensor([radius_xy * math.cos(a), radius_xy * math.sin(a), height])
        back = (eye - center) / (eye - center).norm()          # camera z points away from the target
        right = torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0]), back)
        right = right / right.norm()
        up = torch.linalg.cross(back, right)
        m = torch.eye(4)
        m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, back, eye
        c2w.append(m)
    n = frames
    return Cameras(torch.stack(c2w), train.fx[:1].repeat(n), train.fy[:1].repeat(n), train.cx[:1].repeat(n),
                   train.cy[:1].repeat(n), train.width, train.height)


def render_run(path: str, split: str = "test", orbit_frames: int = 0, video: str | None = None,
               depth: bool = False, views: int = 0, out_dir: str | None = None) -> dict:
    """Render a split's views (or an orbit of ``orbit_frames``) to ``out_dir`` (default
    DIR/renders/<split or orbit>/), optionally depth maps and an mp4. Returns frames,
    seconds per frame and fps."""
    run, _, scene, renderer = open_run(path)
    if orbit_frames > 0:
        if scene.ndc:
            raise RunError(f"{run.path}: orbit paths are for object scenes, not forward-facing NDC scenes")
        scene = Scene(scene.name, scene.format, {**scene.splits, "orbit": _orbit_split(scene, orbit_frames)},
                      scene.background, scene.center, scene.radius, scene.near, scene.far, scene.ndc, scene.ndc_focal)
        split = "orbit"
    if split not in scene.splits:
        raise RunError(f"{run.path}: the scene has no {split!r} split")
    out_dir = Path(out_dir) if out_dir else run.renders(split)
    out_dir.mkdir(parents=True, exist_ok=True)
    count = len(scene.splits[split]) if views <= 0 else min(views, len(scene.splits[split]))
    frames, seconds = [], []
    for i in range(count):
        origins, dirs = view_rays(scene, split, i)
        start = time.perf_counter()
        out = renderer.render_image(origins, dirs)
        seconds.append(time.perf_counter() - start)
        name = scene.splits[split].names[i]
        frames.append(to_uint8(out["rgb"]))
        write_png(out_dir / f"{name}.png", frames[-1])
        if depth:
            write_depth(out_dir / f"{name}_depth.png", out["depth"], out["acc"])
    if video:
        iio2.mimwrite(video, frames, fps=30, macro_block_size=1)
    total = float(np.sum(seconds))
    return {"frames": count, "folder": str(out_dir), "video": video, "seconds_per_frame": total / max(count, 1),
            "fps": count / total if total else float("inf")}


def _orbit_split(scene: Scene, frames: int):
    from plenox.data import Split
    cams = orbit_cameras(scene, frames)
    blank = torch.zeros(frames, cams.height, cams.width, 3)
    return Split(blank, cams, [f"orbit_{k:04d}" for k in range(frames)])


def write_depth(path: Path, depth: torch.Tensor, acc: torch.Tensor) -> None:
    """16-bit PNG of expected depth (world units scaled to the frame's max) and a colourised preview."""
    d = (depth / acc.clamp(min=1e-6)).where(acc > 0.5, torch.zeros_like(depth)).cpu().numpy()
    top = float(d.max()) or 1.0
    write_png(path, (d / top * 65535).astype(np.uint16))
    import matplotlib
    preview = matplotlib.colormaps["turbo"](d / top)[..., :3]
    write_png(path.with_name(path.stem + "_preview.png"), (preview * 255).astype(np.uint8))
