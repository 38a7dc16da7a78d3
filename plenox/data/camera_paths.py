"""Camera paths for videos: nerfstudio's ``camera_path.json``, key-frame interpolation, the LLFF spiral.

A path is a list of key-frames (camera-to-world, vertical field of view, aspect) and the frames
interpolated between them, stored as nerfstudio's viewer writes it, so a path recorded in either
tool renders in the other:

    {"camera_type": "perspective", "render_width": W, "render_height": H, "fps": 30, "seconds": 4,
     "is_cycle": false, "smoothness_value": 0.5, "default_fov": 50, "default_transition_sec": 2,
     "keyframes": [{"matrix": [16 floats], "fov": deg, "aspect": W/H, ...}, ...],
     "camera_path": [{"camera_to_world": [16 floats], "fov": deg, "aspect": W/H}, ...]}

Matrices are 4x4 OpenGL camera-to-world (x right, y up, z back), flattened row-major, in the
scene's world frame; ``fov`` is vertical, in degrees; a frame's focal length is
``0.5 * render_height / tan(fov / 2)`` with the principal point at the image centre.

Pure data layer: numpy, torch and plenox.data.cameras / plenox.data only, no models.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from plenox.data.cameras import Cameras
from plenox.errors import CameraPathError
from plenox.io.atomic import atomic_write_text
from plenox.io.checked import read_json
from plenox.data.llff import BD_FACTOR, average_pose, read_poses_bounds

DEFAULT_SMOOTHNESS = 0.5   # nerfstudio's default spline tension
DEFAULT_FPS = 30.0



@dataclass
class Keyframe:
    """One recorded camera: c2w (4, 4) float64 OpenGL camera-to-world, fov vertical degrees, aspect W / H."""

    c2w: np.ndarray
    fov: float
    aspect: float


@dataclass
class CameraPath:
    """Key-frames and the frames of the video.

    c2w: (N, 4, 4) float64 OpenGL camera-to-world per frame; fov: (N,) vertical degrees;
    width, height: video size in pixels; fps: frames per second; seconds: duration;
    loop: the path closes back on its first key-frame; smoothness: spline tension in [0, 1]
    (0: Catmull-Rom, 1: straight segments).
    """

    keyframes: list[Keyframe]
    c2w: np.ndarray
    fov: np.ndarray
    width: int
    height: int
    fps: float
    seconds: float
    loop: bool = False
    smoothness: float = DEFAULT_SMOOTHNESS

    def __len__(self) -> int:
        return len(self.c2w)


# ----- interpolation ---------------------------------------------------------------------
def rotation_to_quaternion(r: np.ndarray) -> np.ndarray:
    """(w, x, y, z) unit quaternion of a 3x3 rotation matrix (Shepperd's method, stable for any angle)."""
    trace = np.trace(r)
    diag = np.diag(r)
    k = int(np.argmax([trace, *diag]))
    if k == 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    else:
        i = k - 1
        j, m = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(1.0 + r[i, i] - r[j, j] - r[m, m])
        q = [0.0] * 4
        q[0] = (r[m, j] - r[j, m]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (r[j, i] + r[i, j]) / s
        q[1 + m] = (r[m, i] + r[i, m]) / s
    q = np.asarray(q)
    return q / np.linalg.norm(q)


def quaternion_to_rotation(q: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a (w, x, y, z) quaternion (normalised first)."""
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def _cardinal(points: np.ndarray, t: np.ndarray, loop: bool, tension: float) -> np.ndarray:
    """Cardinal (Kochanek-Bartels with zero bias and continuity) spline through ``points`` (K, D)
    at parameters ``t`` (N,) in [0, segments]; key-frame k sits at t = k."""
    k = len(points)
    if loop:
        padded = np.concatenate([points[-1:], points, points[:2]])
    else:   # reflect the end points so the path starts and ends heading along its first/last chord
        padded = np.concatenate([2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]])
    segments = k if loop else k - 1
    seg = np.clip(np.floor(t).astype(int), 0, segments - 1)
    u = (t - seg)[:, None]
    p0, p1, p2, p3 = (padded[seg + o] for o in range(4))
    m1 = (1 - tension) * (p2 - p0) / 2
    m2 = (1 - tension) * (p3 - p1) / 2
    u2, u3 = u * u, u * u * u
    return ((2 * u3 - 3 * u2 + 1) * p1 + (u3 - 2 * u2 + u) * m1 + (-2 * u3 + 3 * u2) * p2 + (u3 - u2) * m2)


def interpolate_keyframes(keyframes: list[Keyframe], frames: int, loop: bool = False,
                          smoothness: float = DEFAULT_SMOOTHNESS) -> tuple[np.ndarray, np.ndarray]:
    """``frames`` cameras along a spline through the key-frames, evenly spaced in key-frame time.

    Positions, fields of view and (sign-aligned) quaternions follow the same cardinal spline;
    an open path starts on the first key-frame and ends on the last, a loop returns towards the
    first. Returns c2w (frames, 4, 4) float64 and fov (frames,) degrees.
    """
    if not keyframes:
        raise ValueError("a camera path needs at least one key-frame")
    if frames < 1:
        raise ValueError(f"frames must be positive, got {frames}")
    positions = np.stack([kf.c2w[:3, 3] for kf in keyframes])
    quats = [rotation_to_quaternion(keyframes[0].c2w[:3, :3])]
    for kf in keyframes[1:]:
        q = rotation_to_quaternion(kf.c2w[:3, :3])
        quats.append(-q if q @ quats[-1] < 0 else q)   # take the short way round
    quats = np.stack(quats)
    fovs = np.array([[kf.fov] for kf in keyframes])
    if len(keyframes) == 1:
        t = np.zeros(frames)
        loop = False
        positions, quats, fovs = (np.concatenate([a, a]) for a in (positions, quats, fovs))
    else:
        segments = len(keyframes) if loop else len(keyframes) - 1
        t = np.arange(frames) * segments / (frames if loop else max(frames - 1, 1))
    if loop and quats[-1] @ quats[0] < 0:
        quats = quats.copy()
        quats[0] = -quats[0]
    pos = _cardinal(positions, t, loop, smoothness)
    rot = _cardinal(quats, t, loop, smoothness)
    fov = _cardinal(fovs, t, loop, smoothness)[:, 0]
    c2w = np.tile(np.eye(4), (frames, 1, 1))
    for i in range(frames):
        c2w[i, :3, :3] = quaternion_to_rotation(rot[i])
        c2w[i, :3, 3] = pos[i]
    return c2w, fov


def make_path(keyframes: list[Keyframe], width: int, height: int, fps: float = DEFAULT_FPS,
              seconds: float | None = None, loop: bool = False,
              smoothness: float = DEFAULT_SMOOTHNESS) -> CameraPath:
    """A path through ``keyframes`` lasting ``seconds`` (default 2 s per transition) at ``fps``."""
    if seconds is None:
        seconds = 2.0 * max(len(keyframes) - (0 if loop else 1), 1)
    if not (fps > 0 and seconds > 0):
        raise ValueError(f"fps and seconds must be positive, got {fps} and {seconds}")
    c2w, fov = interpolate_keyframes(keyframes, max(int(round(fps * seconds)), 1), loop, smoothness)
    return CameraPath(list(keyframes), c2w, fov, int(width), int(height), float(fps), float(seconds), loop,
                      smoothness)


def resampled(path: CameraPath, fps: float) -> CameraPath:
    """The path re-interpolated from its key-frames at ``fps`` over the same seconds (the frames as
    they are when it has no key-frames or the rate is unchanged)."""
    if not path.keyframes or fps == path.fps:
        return path
    return make_path(path.keyframes, path.width, path.height, fps, path.seconds, path.loop, path.smoothness)


# ----- nerfstudio's camera_path.json ---------------------------------------------------------
def _flat(m: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(m, dtype=np.float64).reshape(16)]


def path_to_json(path: CameraPath) -> dict:
    """The path as nerfstudio's viewer writes ``camera_path.json``."""
    aspect = path.width / path.height
    default_fov = float(path.keyframes[0].fov) if path.keyframes else float(path.fov[0])
    transitions = max(len(path.keyframes) - (0 if path.loop else 1), 1)
    return {
        "camera_type": "perspective",
        "render_width": path.width,
        "render_height": path.height,
        "fps": path.fps,
        "seconds": path.seconds,
        "is_cycle": path.loop,
        "smoothness_value": path.smoothness,
        "default_fov": default_fov,
        "default_transition_sec": path.seconds / transitions,
        "keyframes": [{"matrix": _flat(kf.c2w), "fov": float(kf.fov), "aspect": float(kf.aspect),
                       "override_transition_enabled": False, "override_transition_sec": None}
                      for kf in path.keyframes],
        "camera_path": [{"camera_to_world": _flat(m), "fov": float(f), "aspect": aspect}
                        for m, f in zip(path.c2w, path.fov)],
    }


def write_camera_path(path: CameraPath, file) -> Path:
    """Write ``path`` as JSON to ``file`` atomically (plenox.io.atomic); returns the file."""
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(file, json.dumps(path_to_json(path), indent=1))
    return file


def _matrix(value, file, where: str) -> np.ndarray:
    m = np.asarray(value, dtype=np.float64) if isinstance(value, list) else None
    if m is None or m.size != 16 or not np.isfinite(m).all():
        raise CameraPathError(file, f"{where} must be 16 finite numbers (a row-major 4x4 matrix)")
    m = m.reshape(4, 4)
    r = m[:3, :3]
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-3) or np.linalg.det(r) < 0:
        raise CameraPathError(file, f"{where} is not a rigid camera-to-world matrix (its 3x3 part is no rotation)")
    return m


def _fov(value, file, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 180:
        raise CameraPathError(file, f"{where} must be a vertical field of view in degrees, in (0, 180)")
    return float(value)


def _positive(data: dict, key: str, file, kind=float, default=None):
    value = data.get(key, default)
    if value is None:
        raise CameraPathError(file, f"missing {key!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or (
            kind is int and int(value) != value):
        raise CameraPathError(file, f"{key!r} must be a positive {'integer' if kind is int else 'number'}")
    return kind(value)


def read_camera_path(file) -> CameraPath:
    """Read a ``camera_path.json`` (plenox's or nerfstudio's). Frames come from its ``camera_path``
    list; a file with key-frames only is interpolated. CameraPathError for anything unusable."""
    file = Path(file)
    data = read_json(file, "give a camera_path.json saved by the viewer or nerfstudio")
    try:
        return _parse_camera_path(data, file)
    except (TypeError, ValueError, KeyError, IndexError, OverflowError) as err:
        if isinstance(err, CameraPathError):
            raise
        raise CameraPathError(file, f"malformed camera path ({err})".splitlines()[0]) from None


def _parse_camera_path(data: dict, file: Path) -> CameraPath:
    """The CameraPath a camera_path.json's object describes (see read_camera_path)."""
    camera_type = data.get("camera_type", "perspective")
    if camera_type != "perspective":
        raise CameraPathError(file, f"camera_type {camera_type!r} is not supported (only 'perspective')")
    width = _positive(data, "render_width", file, int)
    height = _positive(data, "render_height", file, int)
    fps = _positive(data, "fps", file, float, DEFAULT_FPS)
    loop = bool(data.get("is_cycle", False))
    smoothness = float(data.get("smoothness_value", DEFAULT_SMOOTHNESS))
    keyframes = []
    for k, kf in enumerate(data.get("keyframes") or []):
        if not isinstance(kf, dict):
            raise CameraPathError(file, f"keyframes[{k}] must be an object")
        keyframes.append(Keyframe(_matrix(kf.get("matrix"), file, f"keyframes[{k}].matrix"),
                                  _fov(kf.get("fov"), file, f"keyframes[{k}].fov"),
                                  float(kf.get("aspect", width / height))))
    frames = data.get("camera_path")
    if frames is None and keyframes:
        seconds = _positive(data, "seconds", file, float, 2.0 * len(keyframes))
        return make_path(keyframes, width, height, fps, seconds, loop, smoothness)
    if not isinstance(frames, list) or not frames:
        raise CameraPathError(file, "'camera_path' must be a non-empty list of frames")
    c2w, fov = [], []
    for k, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise CameraPathError(file, f"camera_path[{k}] must be an object")
        c2w.append(_matrix(frame.get("camera_to_world"), file, f"camera_path[{k}].camera_to_world"))
        fov.append(_fov(frame.get("fov"), file, f"camera_path[{k}].fov"))
    seconds = _positive(data, "seconds", file, float, len(frames) / fps)
    return CameraPath(keyframes, np.stack(c2w), np.array(fov), width, height, fps, seconds, loop, smoothness)


# ----- cameras and rays --------------------------------------------------------------------
def parse_resolution(text: str) -> tuple[int, int] | int:
    """"WxH" -> (W, H); "N" -> N (the long side, aspect kept). ValueError for anything else."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts, default=0) < 1:
        raise ValueError(f"resolution must be WxH or a long side N in pixels, got {text!r}")
    return tuple(parts) if len(parts) == 2 else parts[0]


def fit_size(width: int, height: int, resolution) -> tuple[int, int]:
    """The size ``resolution`` asks for ((W, H), a long side N, or None: unchanged) for a
    width x height frame."""
    if resolution is None:
        return width, height
    if isinstance(resolution, tuple):
        return resolution
    scale = resolution / max(width, height)
    return max(int(round(width * scale)), 1), max(int(round(height * scale)), 1)


def pinhole_cameras(c2w, fov_y_deg, width: int, height: int) -> Cameras:
    """Cameras of vertical field of view ``fov_y_deg`` ((N,) or scalar, degrees), square pixels and
    the principal point at the centre; c2w (N, 4, 4) OpenGL camera-to-world."""
    c2w = torch.as_tensor(np.asarray(c2w), dtype=torch.float32)
    focal = 0.5 * height / torch.tan(torch.deg2rad(torch.as_tensor(fov_y_deg, dtype=torch.float32)) / 2)
    focal = focal.expand(len(c2w)) if focal.ndim == 0 else focal
    return Cameras(c2w, focal, focal, width / 2, height / 2, width, height)


def path_cameras(path: CameraPath, resolution=None) -> Cameras:
    """The path's frames as Cameras at its render size, or at ``resolution`` (see fit_size)."""
    width, height = fit_size(path.width, path.height, resolution)
    return pinhole_cameras(path.c2w, path.fov, width, height)


def resized(cams: Cameras, resolution) -> Cameras:
    """``cams`` rendered at ``resolution`` (see fit_size) with the same vertical field of view and
    pixel aspect, principal point at the centre."""
    width, height = fit_size(cams.width, cams.height, resolution)
    fy = cams.fy * height / cams.height
    return Cameras(cams.c2w, fy * cams.fx / cams.fy, fy, width / 2, height / 2, width, height)


# ----- the LLFF spiral -----------------------------------------------------------------------
def llff_depth_bounds(folder) -> tuple[float, float]:
    """Nearest and farthest scene depth of an LLFF capture in the frame its loader builds (scaled
    so the nearest bound is 1 / BD_FACTOR)."""
    _, bounds = read_poses_bounds(Path(folder) / "poses_bounds.npy")
    scale = 1.0 / (bounds.min() * BD_FACTOR)
    return float(bounds.min() * scale), float(bounds.max() * scale)


def spiral_path(c2w: np.ndarray, near: float, far: float, frames: int, rotations: int = 2,
                zrate: float = 0.5) -> np.ndarray:
    """The spiral the NeRF and Plenoxels papers render for forward-facing scenes (LLFF's
    ``render_path_spiral``): ``frames`` poses (frames, 4, 4) float64 circling the average training
    camera ``rotations`` times, radii the 90th percentile of the training positions' offsets in
    its frame, all looking at a focus point at depth 1 / (0.25 / (0.9 near) + 0.75 / (5 far)).

    c2w: (N, 4, 4) OpenGL camera-to-world of the training cameras; near, far: their depth bounds.
    """
    if frames < 1:
        raise ValueError(f"frames must be positive, got {frames}")
    c2w = np.asarray(c2w, dtype=np.float64)
    avg = average_pose(c2w)
    up = c2w[:, :3, 1].sum(0)
    up /= np.linalg.norm(up)
    close, infinity, dt = 0.9 * near, 5.0 * far, 0.75
    focus = 1.0 / ((1.0 - dt) / close + dt / infinity)
    offsets = (c2w[:, :3, 3] - avg[:3, 3]) @ avg[:3, :3]      # positions in the average camera's frame
    radii = np.percentile(np.abs(offsets), 90, axis=0)
    target = avg[:3, :3] @ np.array([0.0, 0.0, -focus]) + avg[:3, 3]
    poses = np.tile(np.eye(4), (frames, 1, 1))
    for k, theta in enumerate(np.linspace(0.0, 2.0 * np.pi * rotations, frames + 1)[:-1]):
        local = np.array([np.cos(theta), -np.sin(theta), -np.sin(theta * zrate)]) * radii
        eye = avg[:3, :3] @ local + avg[:3, 3]
        back = (eye - target) / np.linalg.norm(eye - target)
        right = np.cross(up, back)
        right /= np.linalg.norm(right)
        poses[k, :3, :4] = np.stack([right, np.cross(back, right), back, eye], axis=1)
    return poses
