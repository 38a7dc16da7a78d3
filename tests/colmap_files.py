"""Writing COLMAP sparse models (binary and text) from known cameras, for the loader tests.

Independent of plenox.data.colmap: the layouts follow COLMAP's documentation
(cameras, images, points3D; little-endian binary), so the reader is checked against
files laid out from the specification, not against itself.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from plenox.data.cameras import Cameras
from scenes import write_png

MODEL_IDS = {"SIMPLE_PINHOLE": 0, "PINHOLE": 1, "SIMPLE_RADIAL": 2, "RADIAL": 3, "OPENCV": 4, "OPENCV_FISHEYE": 5,
             "FULL_OPENCV": 6, "FOV": 7, "SIMPLE_RADIAL_FISHEYE": 8, "RADIAL_FISHEYE": 9, "THIN_PRISM_FISHEYE": 10}


def rotation_to_qvec(r: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation matrix, w >= 0."""
    w = np.sqrt(max(0.0, 1.0 + r[0, 0] + r[1, 1] + r[2, 2])) / 2
    x = np.copysign(np.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2])) / 2, r[2, 1] - r[1, 2])
    y = np.copysign(np.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2])) / 2, r[0, 2] - r[2, 0])
    z = np.copysign(np.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2])) / 2, r[1, 0] - r[0, 1])
    q = np.array([w, x, y, z])
    return q / np.linalg.norm(q)


def world_to_camera(c2w_gl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COLMAP's (qvec, tvec) of an OpenGL camera-to-world matrix."""
    c2w_cv = c2w_gl @ np.diag([1.0, -1.0, -1.0, 1.0])
    rot = c2w_cv[:3, :3].T
    return rotation_to_qvec(rot), -rot @ c2w_cv[:3, 3]


def pinhole_params(model: str, cams: Cameras, i: int, extra=()) -> list[float]:
    """The parameter list of ``model`` for camera i (focal = fx), distortion from ``extra``."""
    f, fy, cx, cy = (float(cams.fx[i]), float(cams.fy[i]), float(cams.cx[i]), float(cams.cy[i]))
    if model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE"):
        return [f, cx, cy, *extra]
    return [f, fy, cx, cy, *extra]


def write_colmap(folder: Path, cams: Cameras, names: list[str], images=None, model: str = "PINHOLE", extra=(),
                 binary: bool = True, points: np.ndarray | None = None, sizes=None, shared_camera: bool = False,
                 subdir: str = "sparse/0") -> Path:
    """Write ``folder/subdir/{cameras,images,points3D}.{bin,txt}`` and ``folder/images/<name>``.

    cams: OpenGL cameras (one COLMAP camera per image unless ``shared_camera``); names: file
    names with suffix; images: (N, H, W, 3) in [0, 1] to write as PNGs (None: none written);
    extra: the model's distortion parameters; sizes: per-image (width, height) overriding the
    cameras' size. Returns the model folder.
    """
    out = folder / subdir
    out.mkdir(parents=True, exist_ok=True)
    n = len(cams)
    cam_ids = [1] * n if shared_camera else list(range(1, n + 1))
    cameras = {}
    for i in range(n):
        w, h = sizes[i] if sizes else (cams.width, cams.height)
        cameras[cam_ids[i]] = (MODEL_IDS[model], w, h, pinhole_params(model, cams, i, extra))
    poses = [world_to_camera(cams.c2w[i].double().numpy()) for i in range(n)]
    points = np.zeros((0, 3)) if points is None else np.asarray(points, dtype=np.float64)
    if binary:
        data = struct.pack("<Q", len(cameras))
        for cid, (mid, w, h, params) in cameras.items():
            data += struct.pack(f"<iiQQ{len(params)}d", cid, mid, w, h, *params)
        (out / "cameras.bin").write_bytes(data)
        data = struct.pack("<Q", n)
        for i, ((q, t), name) in enumerate(zip(poses, names)):
            data += struct.pack("<I7dI", i + 1, *q, *t, cam_ids[i]) + name.encode() + b"\0"
            data += struct.pack("<Q", 2) + struct.pack("<ddqddq", 1.0, 2.0, -1, 3.0, 4.0, -1)
        (out / "images.bin").write_bytes(data)
        data = struct.pack("<Q", len(points))
        for k, p in enumerate(points):
            data += struct.pack("<Q3d3BdQ", k + 1, *p, 128, 128, 128, 0.5, 2) + struct.pack("<iiii", 1, 0, 2, 0)
        (out / "points3D.bin").write_bytes(data)
    else:
        names_by_id = {v: k for k, v in MODEL_IDS.items()}
        lines = ["# Camera list with one line of data per camera:"]
        lines += [f"{cid} {names_by_id[mid]} {w} {h} " + " ".join(repr(p) for p in params)
                  for cid, (mid, w, h, params) in cameras.items()]
        (out / "cameras.txt").write_text("\n".join(lines) + "\n")
        lines = ["# Image list with two lines of data per image:"]
        for i, ((q, t), name) in enumerate(zip(poses, names)):
            lines.append(f"{i + 1} " + " ".join(repr(float(v)) for v in (*q, *t)) + f" {cam_ids[i]} {name}")
            lines.append("" if i % 2 else "1.0 2.0 -1 3.0 4.0 -1")  # some images without keypoints
        (out / "images.txt").write_text("\n".join(lines) + "\n")
        lines = ["# 3D point list with one line of data per point:"]
        lines += [f"{k + 1} {p[0]!r} {p[1]!r} {p[2]!r} 128 128 128 0.5 1 0 2 0" for k, p in enumerate(points)]
        (out / "points3D.txt").write_text("\n".join(lines) + "\n")
    if images is not None:
        for i, name in enumerate(names):
            write_png(folder / "images" / name, images[i])
    return out
