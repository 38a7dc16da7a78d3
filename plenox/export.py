"""Export a fitted run to other formats, and import svox2 checkpoints as runs.

Formats (``export_run``):
  svox2  the official code's ckpt.npz: links, density_data (N, 1) float32, sh_data (N, 3B)
         float16, radius, center, basis_type
  ply    point cloud of the occupied voxels: x, y, z (world), red, green, blue (the SH DC
         colour), density; binary little-endian
  mesh   marching cubes of the density field, vertex colours from the SH; .ply or .obj
  video  an orbit video (mp4), as ``plenox render --orbit``
  depth  16-bit depth PNGs and colourised previews of a split's views (or of an orbit)
``import_run`` makes a run folder from a ckpt.npz and a scene, which every other command
(render, eval, prune, export, info) then reads like a fitted run.
"""

import json
import time
from pathlib import Path

import numpy as np
import torch

from plenox.grid import GridFileError, SparseGrid
from plenox.mesh import extract_mesh
from plenox.ply import MESH_SUFFIXES, ply_bytes, write_mesh
from plenox.runs import RunDir, RunError, atomic_write_bytes, atomic_write_json
from plenox.sh import SH_C0
from plenox.workflow import render_run, scene_config, scene_record

FORMATS = ("svox2", "ply", "mesh", "video", "depth")
DEFAULT_NAMES = {"svox2": "ckpt.npz", "ply": "points.ply", "mesh": "mesh.ply", "video": "orbit.mp4",
                 "depth": "depth"}
DEFAULT_DENSITY_THRESH = 10.0   # raw sigma (per world unit) for points and the mesh surface
DEFAULT_ORBIT_FRAMES = 120


class ExportError(ValueError):
    """An export or import option is invalid (the message names it)."""


# ----- svox2 checkpoints ----------------------------------------------------------------
def scale_world(grid: SparseGrid, scale: float) -> SparseGrid:
    """The same field in a world scaled by ``scale`` (x' = scale * x).

    The box scales with the world; densities divide by ``scale`` so that sigma * dt, and so
    every rendered image, is unchanged. scale 1 returns ``grid`` itself.
    """
    if scale == 1.0:
        return grid
    if not scale > 0:
        raise ExportError(f"scene scale must be positive, got {scale}")
    return SparseGrid(grid.links, grid.density.detach() / scale, grid.sh.detach(), grid.center * scale,
                      grid.radius * scale, grid.basis_dim)


def write_svox2(grid: SparseGrid, path: Path, scene_scale: float = 1.0) -> None:
    """Write svox2's ckpt.npz (float16 SH) in svox2's world: x_svox2 = scene_scale * x.

    svox2's opt.py fits Blender scenes with scene_scale 2/3 (camera positions times 2/3,
    box radius 1); pass that to load the file there. 1 keeps this project's world.
    """
    scale_world(grid, scene_scale).save(path, sh_dtype=np.float16)


def read_svox2(path: Path, scene_scale: float = 1.0) -> SparseGrid:
    """Read an svox2 ckpt.npz whose world is ``scene_scale`` times this project's."""
    return scale_world(SparseGrid.load(path), 1.0 / scene_scale)


def import_run(checkpoint: str, source: str | None, out: str, config: str | None = None, overrides=(),
               scene_scale: float = 1.0, force: bool = False) -> dict:
    """Make the run folder ``out`` from an svox2 ckpt.npz and the scene it was fitted to.

    The run holds config.json (the scene's default config, or ``config``, with the
    checkpoint's resolution and SH size; it sets the render options), scene.json, grid.npz
    (float32 SH, so float16 values stay exact) and import.json. Returns import.json's record.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise GridFileError(f"{path}: no such checkpoint file")
    run = RunDir(out)
    if run.exists() and not force:
        raise RunError(f"{run.path}: already holds a run (choose another --out or use --force)")
    grid = read_svox2(path, scene_scale)
    fixed = [f"resolutions={json.dumps([list(grid.resolution)])}", "upsample_steps=[]",
             f"basis_dim={grid.basis_dim}"]
    cfg, scene = scene_config(source, config, [*overrides, *fixed], model="plenoxels")
    run.create(cfg.to_dict(), scene_record(source, scene, scene.downscale), force=force)
    run.save_grid(grid, exact=True)
    record = {"checkpoint": str(path.resolve()), "scene_scale": scene_scale, "out": str(run.path),
              "resolution": list(grid.resolution), "voxels": grid.n_voxels, "basis_dim": grid.basis_dim}
    atomic_write_json(run.import_file, record)
    return record


# ----- point cloud ------------------------------------------------------------------------
@torch.no_grad()
def point_cloud(grid: SparseGrid, density_thresh: float) -> dict[str, np.ndarray]:
    """PLY vertex properties of the voxels with density >= ``density_thresh``.

    x, y, z: voxel centres in world units (float32); red, green, blue: the view-independent
    colour clamp(C0 * sh_dc + 0.5, 0, 1) as uint8; density: raw sigma (float32).
    """
    links = grid.links.cpu().numpy()
    coords = np.argwhere(links >= 0)
    rows = torch.from_numpy(links[tuple(coords.T)].astype(np.int64))
    density = grid.density.detach().cpu()[rows]
    keep = (density >= density_thresh).numpy()
    rows, density = rows[keep], density[keep]
    xyz = grid.grid_to_world(torch.from_numpy(coords[keep]).to(torch.float64)).numpy().astype(np.float32)
    dc = grid.sh.detach().cpu()[rows][:, ::grid.basis_dim].double()   # coefficient 0 of each channel
    rgb = (torch.clamp(SH_C0 * dc + 0.5, 0.0, 1.0).numpy() * 255 + 0.5).astype(np.uint8)
    return {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "red": rgb[:, 0], "green": rgb[:, 1],
            "blue": rgb[:, 2], "density": density.numpy().astype(np.float32)}


# ----- run folders -> files ----------------------------------------------------------------
def check_export_options(fmt: str, density_thresh: float, resolution: int | None, frames: int | None,
                         scene_scale: float) -> None:
    """Raise ExportError unless the format is known and the options are in range."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if not np.isfinite(density_thresh) or (fmt == "mesh" and density_thresh <= 0):
        raise ExportError(f"density threshold must be a finite number (positive for a mesh), got {density_thresh}")
    if resolution is not None and resolution < 2:
        raise ExportError(f"mesh resolution must be >= 2, got {resolution}")
    if frames is not None and frames < 1:
        raise ExportError(f"frames must be >= 1, got {frames}")
    if not scene_scale > 0:
        raise ExportError(f"scene scale must be positive, got {scene_scale}")


def export_run(path: str, fmt: str, out: str | None = None, density_thresh: float | None = None,
               resolution: int | None = None, frames: int | None = None, split: str = "test", views: int = 0,
               scene_scale: float = 1.0) -> dict:
    """Export run ``path`` as ``fmt`` to ``out`` (default DIR/export/<ckpt.npz, points.ply,
    mesh.ply, orbit.mp4, depth/>). Returns {"format", "path", "seconds", ...counts}.

    density_thresh: ply, the least density of a point; mesh, the iso level (None:
    DEFAULT_DENSITY_THRESH). resolution:
    mesh lattice samples along the longest axis (default the grid's). frames: orbit frames
    (video: default 120; depth: an orbit instead of the split's views when given).
    """
    density_thresh = DEFAULT_DENSITY_THRESH if density_thresh is None else density_thresh
    check_export_options(fmt, density_thresh, resolution, frames, scene_scale)
    run = RunDir(path).require()
    target = Path(out) if out else run.path / "export" / DEFAULT_NAMES[fmt]
    if fmt != "depth":
        target.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if fmt in ("video", "depth"):
        counts = export_renders(run, fmt, target, frames, split, views)
    else:
        counts = export_grid(run.load_grid(), fmt, target, density_thresh, resolution, scene_scale)
    return {"format": fmt, "path": str(target), "seconds": time.perf_counter() - start, **counts}


def export_grid(grid: SparseGrid, fmt: str, target: Path, density_thresh: float, resolution: int | None,
                scene_scale: float) -> dict:
    """Write the grid-only formats (svox2, ply, mesh); returns what was written, counted."""
    if fmt == "svox2":
        write_svox2(grid, target, scene_scale)
        return {"voxels": grid.n_voxels, "bytes": target.stat().st_size}
    if fmt == "ply":
        points = point_cloud(grid, density_thresh)
        atomic_write_bytes(target, ply_bytes(points))
        return {"points": len(points["x"]), "bytes": target.stat().st_size}
    if target.suffix.lower() not in MESH_SUFFIXES:   # checked before the costly extraction
        raise ExportError(f"{target}: a mesh is written as {' or '.join(MESH_SUFFIXES)}")
    try:
        mesh = extract_mesh(grid, density_thresh, resolution)
    except ValueError as err:
        raise ExportError(str(err)) from None
    write_mesh(target, mesh["vertices"], mesh["colors"], mesh["faces"])
    return {"vertices": len(mesh["vertices"]), "faces": len(mesh["faces"]), "bytes": target.stat().st_size}


def export_renders(run: RunDir, fmt: str, target: Path, frames: int | None, split: str, views: int) -> dict:
    """Orbit video (frames also in DIR/renders/orbit/) or depth maps in the folder ``target``."""
    if fmt == "video":
        if target.suffix.lower() != ".mp4":
            raise ExportError(f"{target}: a video is written as .mp4")
        summary = render_run(str(run.path), orbit_frames=frames or DEFAULT_ORBIT_FRAMES, video=str(target))
    else:
        summary = render_run(str(run.path), split, orbit_frames=frames or 0, depth=True, views=views,
                             out_dir=str(target))
    return {"frames": summary["frames"], "fps": summary["fps"]}
