"""``plenox export``: a fitted run in other formats.

Formats (``export_run``):
  svox2  the official code's ckpt.npz: links, density_data (N, 1) float32, sh_data (N, 3B)
         float16, radius, center, basis_type; and a background model as svox2's
         background_links / background_data, resampled to svox2's map
  ply    point cloud of the occupied voxels: x, y, z (world), red, green, blue (the SH DC
         colour), density; binary little-endian; the grid only (not the background model)
  mesh   marching cubes of the density field, vertex colours from the SH; .ply or .obj; the
         grid only
  video  an orbit video (mp4), as ``plenox render --orbit``
  depth  16-bit depth PNGs and colourised previews of a split's views (or of an orbit)
"""

import time
from pathlib import Path

import numpy as np
import torch

from plenox.errors import ExportError
from plenox.options import require_number
from plenox.io.atomic import atomic_write_bytes
from plenox.io.ply import MESH_SUFFIXES, ply_bytes, write_mesh
from plenox.models.grid import SparseGrid
from plenox.models.mesh import extract_mesh
from plenox.models.sh import SH_C0
from plenox.models.svox2_files import write_svox2
from plenox.runs.folder import RunDir
from plenox.runs.loading import open_run
from plenox.runs.rendering import orbit_scene, render_views

FORMATS = ("svox2", "ply", "mesh", "video", "depth")
DEFAULT_NAMES = {"svox2": "ckpt.npz", "ply": "points.ply", "mesh": "mesh.ply", "video": "orbit.mp4",
                 "depth": "depth"}
DEFAULT_DENSITY_THRESH = 10.0   # raw sigma (per world unit) for points and the mesh surface
DEFAULT_ORBIT_FRAMES = 120



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
    require_number("--frames", frames, 1, integer=True)
    if not scene_scale > 0:
        raise ExportError(f"scene scale must be positive, got {scene_scale}")


def export_run(path: str, fmt: str, out: str | None = None, density_thresh: float | None = None,
               resolution: int | None = None, frames: int | None = None, split: str = "test", views: int = 0,
               scene_scale: float = 1.0, device: str = "auto") -> dict:
    """Export run ``path`` as ``fmt`` to ``out`` (default DIR/export/<ckpt.npz, points.ply,
    mesh.ply, orbit.mp4, depth/>). Returns {"format", "path", "seconds", ...counts}.

    density_thresh: ply, the least density of a point; mesh, the iso level (None:
    DEFAULT_DENSITY_THRESH). resolution:
    mesh lattice samples along the longest axis (default the grid's). frames: orbit frames
    (video: default 120; depth: an orbit instead of the split's views when given).
    device: where video and depth frames render (auto, cpu, cuda). With a background model,
    "note" says what became of it.
    """
    density_thresh = DEFAULT_DENSITY_THRESH if density_thresh is None else density_thresh
    check_export_options(fmt, density_thresh, resolution, frames, scene_scale)
    require_number("--views", views, 0, integer=True)
    run = RunDir(path).require()
    target = Path(out) if out else run.path / "export" / DEFAULT_NAMES[fmt]
    if fmt != "depth":
        target.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if fmt in ("video", "depth"):
        counts = export_renders(run, fmt, target, frames, split, views, device)
    else:
        counts = export_grid(run.load_grid(), fmt, target, density_thresh, resolution, scene_scale)
    return {"format": fmt, "path": str(target), "seconds": time.perf_counter() - start, **counts}


def export_grid(grid: SparseGrid, fmt: str, target: Path, density_thresh: float, resolution: int | None,
                scene_scale: float) -> dict:
    """Write the grid-only formats (svox2, ply, mesh); returns what was written, counted (and a
    "note" on the background model when the grid has one)."""
    note = {}
    if grid.background is not None:
        note["note"] = ("background model written as svox2's background_links / background_data, resampled to "
                        "svox2's map (poles on y)" if fmt == "svox2" else
                        f"foreground only: the {fmt} holds the grid's box, not the background model behind it")
    if fmt == "svox2":
        write_svox2(grid, target, scene_scale)
        return {"voxels": grid.n_voxels, "bytes": target.stat().st_size, **note}
    if fmt == "ply":
        points = point_cloud(grid, density_thresh)
        atomic_write_bytes(target, ply_bytes(points))
        return {"points": len(points["x"]), "bytes": target.stat().st_size, **note}
    if target.suffix.lower() not in MESH_SUFFIXES:   # checked before the costly extraction
        raise ExportError(f"{target}: a mesh is written as {' or '.join(MESH_SUFFIXES)}")
    try:
        mesh = extract_mesh(grid, density_thresh, resolution)
    except ValueError as err:
        raise ExportError(str(err)) from None
    write_mesh(target, mesh["vertices"], mesh["colors"], mesh["faces"])
    return {"vertices": len(mesh["vertices"]), "faces": len(mesh["faces"]), "bytes": target.stat().st_size, **note}


def export_renders(run: RunDir, fmt: str, target: Path, frames: int | None, split: str, views: int,
                   device: str) -> dict:
    """Orbit video (frames also in DIR/renders/orbit/) or depth maps in the folder ``target``."""
    if fmt == "video" and target.suffix.lower() != ".mp4":
        raise ExportError(f"{target}: a video is written as .mp4")
    _, _, scene, renderer = open_run(str(run.path), device)
    orbit = frames or (DEFAULT_ORBIT_FRAMES if fmt == "video" else 0)
    if orbit:
        scene, split = orbit_scene(scene, orbit, run.path), "orbit"
    if fmt == "video":
        summary = render_views(renderer, scene, split, run.renders(split), video=target)
    else:
        summary = render_views(renderer, scene, split, target, depth=True, views=views)
    return {"frames": summary["frames"], "fps": summary["fps"]}
