"""Structure-from-motion figures for plenox process (docs/capture.md, "Measured").

1. fern: the 20 photos of ../shared/data/fern/images_4 (1008x756; poses_bounds.npy is not given to
   process) -> SfM wall time, registered count, and the recovered poses against LLFF's after a
   similarity alignment: rotation error (degrees) and position error (fraction of the camera spread).
2. beer_360: Beer.mp4 (23.5 s phone video) with the default frame count -> registered frames and
   SfM time; poses against beer_360's own COLMAP model (sparse/0, every 10th video frame). Each
   reference image is located in the video by content (the decoded frame it equals); a kept frame
   is compared with the reference pose at its time, interpolated between the two nearest reference
   frames (slerp / lerp). The reference model breaks in places (consecutive cameras turned by more
   than BREAK_DEG): it is compared piece by piece, each piece aligned on its own.

The last line printed is one JSON object.

3. With --fit-minutes M: fern fitted for M minutes each from LLFF's poses and from the recovered
   ones (the same llff config, images_8 and held-out views; see sfm_llff_folder), and the
   processed video fitted for M minutes with its default config.

    python benchmarks/sfm.py [--data ../shared/data] [--out DIR] [--skip-fern] [--skip-video] [--frames N] [--reuse]
    python benchmarks/sfm.py --fit-minutes 10 --out runs/bench_sfm
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pycolmap
from scipy.spatial.transform import Rotation, Slerp

from plenox.capture.align import pose_errors, similarity_align
from plenox.capture.dataset import opengl_camera_to_world
from plenox.capture.frames import open_video
from plenox.capture.pipeline import process_capture
from plenox.capture.source import list_images
from plenox.data.llff import read_poses_bounds
from plenox.runs.fitting import fit_run

THUMB = 16  # video frames and reference images are compared as 16x16-pixel block means of their luma
BREAK_DEG = 90.0  # a camera turning more than this between reference frames 1/3 s apart is a break in the model


def transforms_poses(data: Path) -> dict[str, np.ndarray]:
    """OpenGL camera-to-world (4, 4) per image file name, from DATA/transforms.json."""
    meta = json.loads((data / "transforms.json").read_text())
    return {Path(f["file_path"]).name: np.array(f["transform_matrix"]) for f in meta["frames"]}


def error_summary(estimated: np.ndarray, reference: np.ndarray) -> dict:
    err = pose_errors(estimated, reference)
    rot, pos = err["rotation_deg"], err["position_frac"]
    return {"views": len(rot), "rotation_deg_median": float(np.median(rot)), "rotation_deg_max": float(rot.max()),
            "position_frac_median": float(np.median(pos)), "position_frac_max": float(pos.max())}


def llff_c2w(poses: np.ndarray) -> np.ndarray:
    """LLFF 3x5 rows (columns down, right, back, centre, hwf) -> OpenGL camera-to-world (N, 4, 4)."""
    c2w = np.tile(np.eye(4), (len(poses), 1, 1))
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2] = poses[:, :, 1], -poses[:, :, 0], poses[:, :, 2]
    c2w[:, :3, 3] = poses[:, :, 3]
    return c2w


def timed_process(src: Path, out: Path, reuse: bool, **kwargs) -> tuple[dict, float]:
    """Process ``src`` into ``out`` (replacing it); the record and wall seconds. ``reuse``: read an
    earlier run's record instead (wall seconds are then its total)."""
    if reuse and (out / "process.json").is_file():
        record = json.loads((out / "process.json").read_text())
        return record, record["seconds"]["total"]
    start = time.perf_counter()
    record = process_capture(src, out, force=True, **kwargs)
    return record, time.perf_counter() - start


def fern(data: Path, out: Path, reuse: bool) -> dict:
    images = data / "fern" / "images_4"
    record, wall = timed_process(images, out / "fern", reuse)
    poses, _ = read_poses_bounds(data / "fern" / "poses_bounds.npy")
    reference = dict(zip((p.name for p in list_images(images)), llff_c2w(poses)))  # rows follow sorted names
    recovered = transforms_poses(out / "fern")
    names = sorted(recovered)
    summary = error_summary(np.stack([recovered[n] for n in names]), np.stack([reference[n] for n in names]))
    return {"images": record["images"], "registered": record["registered"], "wall_seconds": wall,
            "seconds": record["seconds"], "points": record["points"],
            "reprojection_px": record["mean_reprojection_error_px"], "poses_vs_llff": summary}


def sfm_llff_folder(data: Path, out: Path) -> Path:
    """fern as an LLFF folder whose poses are the recovered ones: OUT/fern_sfm_llff with
    images_8 linked to fern's and a poses_bounds.npy from OUT/fern/transforms.json.

    The recovered poses are brought into LLFF's frame by the similarity that best maps their
    camera centres onto LLFF's (the gauge SfM leaves free), so LLFF's depth bounds, which set
    the NDC scale, carry over; the focal length is SfM's (shared camera, scaled to the full
    4032-pixel width). Lens distortion, which poses_bounds.npy cannot hold, is dropped, as
    LLFF's own poses did. Only the poses and focal length differ from fern's folder."""
    shipped = np.load(data / "fern" / "poses_bounds.npy")
    reference = llff_c2w(shipped[:, :15].reshape(-1, 3, 5))
    recovered_by_name = transforms_poses(out / "fern")
    names = [p.name for p in list_images(data / "fern" / "images_4")]
    recovered = np.stack([recovered_by_name[n] for n in names])
    scale, rot, shift = similarity_align(recovered[:, :3, 3], reference[:, :3, 3])
    aligned = recovered.copy()
    aligned[:, :3, :3] = rot @ recovered[:, :3, :3]
    aligned[:, :3, 3] = scale * recovered[:, :3, 3] @ rot.T + shift
    meta = json.loads((out / "fern" / "transforms.json").read_text())
    focal = meta.get("fl_x", meta["frames"][0].get("fl_x")) * shipped[0, 9] / meta.get("w", 1008)   # hwf's W
    rows = shipped.copy()
    poses = rows[:, :15].reshape(-1, 3, 5)
    # OpenGL [right, up, back] -> LLFF [down, right, back]
    poses[:, :, 0], poses[:, :, 1], poses[:, :, 2] = -aligned[:, :3, 1], aligned[:, :3, 0], aligned[:, :3, 2]
    poses[:, :, 3] = aligned[:, :3, 3]
    poses[:, 2, 4] = focal
    rows[:, :15] = poses.reshape(-1, 15)
    folder = out / "fern_sfm_llff"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "poses_bounds.npy", rows)
    link = folder / "images_8"
    if not link.exists():
        link.symlink_to((data / "fern" / "images_8").resolve(), target_is_directory=True)
    return folder


def fit_heldout(source: Path, out: Path, minutes: float, overrides=()) -> dict:
    """Fit ``source`` with its default config for ``minutes`` into ``out``; the held-out figures."""
    metrics = fit_run(str(source), str(out), None, list(overrides), minutes, force=True, progress=False)
    r, p = metrics["results"], metrics["protocol"]
    return {"psnr": r["psnr"], "ssim": r["ssim"], "views": p["views"], "resolution": p["resolution"],
            "training_seconds": p["training_seconds"], "voxels": p["voxels"], "run": str(out)}


def fern_fits(data: Path, out: Path, minutes: float) -> dict:
    """fern fitted from LLFF's poses and from the recovered ones (sfm_llff_folder): same config
    (llff), images (images_8), held-out views (0, 8, 16) and budget."""
    shipped = fit_heldout(data / "fern", out / "fit_fern_llff_poses", minutes, ["downscale=8"])
    recovered = fit_heldout(sfm_llff_folder(data, out), out / "fit_fern_sfm_poses", minutes, ["downscale=8"])
    return {"minutes": minutes, "llff_poses": shipped, "sfm_poses": recovered,
            "difference_db": recovered["psnr"] - shipped["psnr"]}


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    grey = rgb.astype(np.float32).mean(axis=2)
    h, w = grey.shape[0] // THUMB, grey.shape[1] // THUMB
    return grey[:h * THUMB, :w * THUMB].reshape(h, THUMB, w, THUMB).mean(axis=(1, 3))


def reference_frame_indices(video: Path, images: list[Path]) -> np.ndarray:
    """The decoded-frame index each reference image shows (the frame whose thumbnail is nearest)."""
    meta, frames = open_video(video)
    width, height = meta["size"]
    try:
        decoded = np.stack([thumbnail(np.frombuffer(raw, np.uint8).reshape(height, width, 3)) for raw in frames])
    finally:
        frames.close()
    refs = np.stack([thumbnail(iio.imread(p)) for p in images])
    return np.array([int(((decoded - r) ** 2).mean(axis=(1, 2)).argmin()) for r in refs])


def step_angles(c2w: np.ndarray) -> np.ndarray:
    """(N - 1,) orientation change in degrees between consecutive camera-to-world poses (N, 4, 4)."""
    rel = np.einsum("nji,njk->nik", c2w[:-1, :3, :3], c2w[1:, :3, :3])
    return np.degrees(np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)))


def beer(data: Path, out: Path, frames: int | None, reuse: bool) -> dict:
    scene = data / "beer_360"
    record, wall = timed_process(scene / "Beer.mp4", out / "beer", reuse, frames=frames)
    recovered = transforms_poses(out / "beer")
    kept = [f for f in record["frames"] if f["name"] in recovered]
    ours = np.stack([recovered[f["name"]] for f in kept])
    result = {"frames": record["images"], "registered": record["registered"], "wall_seconds": wall,
              "seconds": record["seconds"], "points": record["points"],
              "reprojection_px": record["mean_reprojection_error_px"],
              "largest_step_deg": float(step_angles(ours).max())}

    model = pycolmap.Reconstruction(scene / "sparse" / "0")
    ref_images = sorted((model.image(i) for i in model.reg_image_ids()), key=lambda im: im.name)
    ref_index = reference_frame_indices(scene / "Beer.mp4", [scene / "images" / im.name for im in ref_images])
    order = np.argsort(ref_index)
    ref_index = ref_index[order]
    ref_c2w = np.stack([opengl_camera_to_world(ref_images[k].cam_from_world().matrix()) for k in order])
    # The reference model jumps between some consecutive frames (see docs/capture.md): compare piece by piece.
    breaks = np.nonzero(step_angles(ref_c2w) > BREAK_DEG)[0] + 1
    result["reference_largest_step_deg"] = float(step_angles(ref_c2w).max())
    result["reference_breaks_after_frames"] = [int(ref_index[b - 1]) for b in breaks]
    pieces, pooled = [], {"rotation_deg": [], "position_frac": []}
    for lo, hi in zip([0, *breaks], [*breaks, len(ref_index)]):
        idx, c2w = ref_index[lo:hi], ref_c2w[lo:hi]
        inside = [k for k, f in enumerate(kept) if idx[0] <= f["index"] <= idx[-1]]
        if len(inside) < 3 or len(idx) < 2:
            continue
        at = np.array([kept[k]["index"] for k in inside], dtype=np.float64)
        reference = np.tile(np.eye(4), (len(at), 1, 1))
        reference[:, :3, :3] = Slerp(idx, Rotation.from_matrix(c2w[:, :3, :3]))(at).as_matrix()
        reference[:, :3, 3] = np.stack([np.interp(at, idx, c2w[:, k, 3]) for k in range(3)], axis=1)
        err = pose_errors(ours[inside], reference)
        pieces.append({"reference_frames": [int(idx[0]), int(idx[-1])], **error_summary(ours[inside], reference)})
        for key in pooled:
            pooled[key].extend(err[key].tolist())
    rot, pos = np.array(pooled["rotation_deg"]), np.array(pooled["position_frac"])
    result["poses_vs_colmap_pieces"] = pieces
    result["poses_vs_colmap"] = {"views": len(rot), "rotation_deg_median": float(np.median(rot)),
                                 "rotation_deg_max": float(rot.max()), "position_frac_median": float(np.median(pos)),
                                 "position_frac_max": float(pos.max())}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"),
                        help="folder holding fern/ and beer_360/ (default ../shared/data)")
    parser.add_argument("--out", default="runs/bench_sfm", help="where the processed scenes go")
    parser.add_argument("--skip-fern", action="store_true")
    parser.add_argument("--skip-video", action="store_true")
    parser.add_argument("--frames", type=int, default=None, help="video frames to keep (default: process's)")
    parser.add_argument("--fit-minutes", type=float, default=0.0,
                        help="also fit: fern from LLFF's and from the recovered poses, and the processed video, "
                             "this many minutes each (0: no fits)")
    parser.add_argument("--reuse", action="store_true",
                        help="compare the scenes an earlier run left in OUT instead of processing again")
    args = parser.parse_args()
    data, out = Path(args.data), Path(args.out)
    report = {}
    if not args.skip_fern:
        report["fern"] = fern(data, out, args.reuse)
        f = report["fern"]
        e = f["poses_vs_llff"]
        print(f"fern: registered {f['registered']} of {f['images']} in {f['wall_seconds']:.1f} s; against LLFF: "
              f"rotation median {e['rotation_deg_median']:.3f} max {e['rotation_deg_max']:.3f} deg, position "
              f"median {e['position_frac_median']:.2%} max {e['position_frac_max']:.2%} of the camera spread")
        if args.fit_minutes:
            fits = report["fern_fits"] = fern_fits(data, out, args.fit_minutes)
            print(f"fern fitted {args.fit_minutes:g} min (llff config, images_8, views 0, 8, 16): LLFF's poses "
                  f"{fits['llff_poses']['psnr']:.2f} dB, recovered poses {fits['sfm_poses']['psnr']:.2f} dB "
                  f"({fits['difference_db']:+.2f} dB)", flush=True)
    if not args.skip_video:
        report["beer_360"] = beer(data, out, args.frames, args.reuse)
        b = report["beer_360"]
        e = b["poses_vs_colmap"]
        print(f"beer_360 video: registered {b['registered']} of {b['frames']} frames in {b['wall_seconds']:.1f} s; "
              f"largest turn between kept frames {b['largest_step_deg']:.1f} deg (reference model: "
              f"{b['reference_largest_step_deg']:.1f} deg, breaks after frames {b['reference_breaks_after_frames']})")
        print(f"  against its COLMAP model, aligned piece by piece ({len(b['poses_vs_colmap_pieces'])} pieces, "
              f"{e['views']} frames, reference interpolated to each frame's time): rotation median "
              f"{e['rotation_deg_median']:.2f} max {e['rotation_deg_max']:.2f} deg, position median "
              f"{e['position_frac_median']:.2%} max {e['position_frac_max']:.2%} of the piece's camera spread")
        if args.fit_minutes:
            fit = report["beer_360_fit"] = fit_heldout(out / "beer", out / "fit_beer_video", args.fit_minutes)
            print(f"beer_360 video fitted {args.fit_minutes:g} min (default config): held-out PSNR {fit['psnr']:.2f} dB, "
                  f"SSIM {fit['ssim']:.3f} on {fit['views']} views ({fit['resolution'][0]}x{fit['resolution'][1]})",
                  flush=True)
    report["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                         "load_average": os.getloadavg(), "python": platform.python_version(),
                         "pycolmap": pycolmap.__version__}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
