"""Validation shared by the loaders: every problem becomes a one-line SceneError naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from plenox.errors import SceneError


# Largest |R^T R - I| entry accepted as a rotation: poses written as float32
# text carry ~1e-7 error, while a scaled or sheared matrix is off by > 1e-2.
RIGID_TOLERANCE = 1e-3


def require_dir(path: Path) -> Path:
    if not path.exists():
        raise SceneError(path, "no such folder")
    if not path.is_dir():
        raise SceneError(path, "not a folder")
    return path


def read_json(path: Path) -> dict:
    """The JSON object stored in ``path``."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SceneError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneError(path, f"cannot read file ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SceneError(path, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise SceneError(path, f"expected a JSON object at the top level, got {type(data).__name__}")
    return data


def get_number(obj: dict, key: str, path: Path, where: str, default=None) -> float:
    """``obj[key]`` as a finite float; ``default`` when absent (a missing key without default is an error)."""
    if key not in obj:
        if default is None:
            raise SceneError(path, f"missing '{key}' in {where}")
        return default
    try:
        value = float(obj[key])
    except (TypeError, ValueError):
        raise SceneError(path, f"'{key}' in {where} is not a number: {obj[key]!r}") from None
    if not np.isfinite(value):
        raise SceneError(path, f"'{key}' in {where} is not finite: {value}")
    return value


def get_frames(meta: dict, path: Path) -> list[dict]:
    """The non-empty ``frames`` list of a transforms JSON, each entry with a string ``file_path``."""
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise SceneError(path, "missing or empty 'frames' list")
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict) or not isinstance(frame.get("file_path"), str):
            raise SceneError(path, f"frame {i} has no 'file_path' string")
    return frames


def frame_pose(frame: dict, index: int, path: Path) -> np.ndarray:
    """A frame's ``transform_matrix`` as a (4, 4) float64 array (3x4 rows are completed)."""
    try:
        m = np.asarray(frame["transform_matrix"], dtype=np.float64)
    except KeyError:
        raise SceneError(path, f"frame {index} ({frame['file_path']}) has no 'transform_matrix'") from None
    except (TypeError, ValueError):
        raise SceneError(path, f"frame {index} ({frame['file_path']}): transform_matrix is not a numeric matrix") from None
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4):
        raise SceneError(path, f"frame {index} ({frame['file_path']}): transform_matrix has shape {m.shape}, expected 4x4")
    return m


def check_rigid(c2w: np.ndarray, names: list[str], path: Path) -> np.ndarray:
    """Reject NaN, non-rigid or reflected camera-to-world matrices; c2w (N, 4, 4). Returns it unchanged."""
    for m, name in zip(c2w, names):
        if not np.isfinite(m).all():
            raise SceneError(path, f"pose of {name} has NaN or infinite entries")
        r = m[:3, :3]
        err = np.abs(r.T @ r - np.eye(3)).max()
        if err > RIGID_TOLERANCE:
            raise SceneError(path, f"pose of {name} is not rigid: rotation is not orthonormal (max |R^T R - I| = {err:.3g})")
        if np.linalg.det(r) < 0:
            raise SceneError(path, f"pose of {name} is a reflection (det R < 0)")
        if np.abs(m[3] - [0.0, 0.0, 0.0, 1.0]).max() > RIGID_TOLERANCE:
            raise SceneError(path, f"pose of {name} has bottom row {m[3].tolist()}, expected [0, 0, 0, 1]")
    return c2w
