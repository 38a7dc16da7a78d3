"""Comparing recovered camera poses with known ones, up to the similarity structure-from-motion cannot fix."""

from __future__ import annotations

import math

import numpy as np


def similarity_align(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale s, rotation R (3, 3) and translation t (3,) minimising sum |dst_i - (s R src_i + t)|^2.

    src, dst: (N, 3) corresponding points, N >= 3 and not all on one line. Closed form of
    Umeyama (1991): R from the SVD of the cross-covariance, with the sign fix that keeps
    det R = +1 (no reflections).
    """
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise ValueError(f"need two (N, 3) arrays with N >= 3, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sing, vt = np.linalg.svd(b.T @ a / len(src))
    sign = np.ones(3)
    sign[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ np.diag(sign) @ vt
    var_src = (a**2).sum() / len(src)
    if var_src <= 0:
        raise ValueError("source points coincide; no scale can be found")
    scale = float((sing * sign).sum() / var_src)
    return scale, rot, mu_d - scale * rot @ mu_s


def pose_errors(estimated: np.ndarray, reference: np.ndarray) -> dict[str, np.ndarray | float]:
    """Per-camera errors of ``estimated`` camera-to-world poses against ``reference`` ones ((N, 4, 4) or
    (N, 3, 4), same camera-axis convention), after the similarity that best maps the estimated camera
    centres onto the reference ones.

    Returns rotation_deg (N,): angle between aligned and reference camera orientations, degrees;
    position (N,): distance between aligned and reference centres, reference world units;
    position_frac (N,): that distance over the camera spread; spread: mean distance of the
    reference centres from their centroid; scale: the similarity's scale.
    """
    est, ref = np.asarray(estimated, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    scale, rot, shift = similarity_align(est[:, :3, 3], ref[:, :3, 3])
    centres = est[:, :3, 3] @ (scale * rot).T + shift
    position = np.linalg.norm(centres - ref[:, :3, 3], axis=1)
    spread = float(np.linalg.norm(ref[:, :3, 3] - ref[:, :3, 3].mean(0), axis=1).mean())
    aligned = rot @ est[:, :3, :3]
    # Normalise columns: some formats store scaled rotations (a uniform scale in the pose).
    aligned /= np.linalg.norm(aligned, axis=1, keepdims=True)
    ref_rot = ref[:, :3, :3] / np.linalg.norm(ref[:, :3, :3], axis=1, keepdims=True)
    # |A - B|_F^2 = 8 sin^2(angle / 2) for rotations A, B: accurate for small angles, unlike acos of the trace.
    chord = np.linalg.norm(aligned - ref_rot, axis=(1, 2)) / math.sqrt(8.0)
    return {
        "rotation_deg": np.degrees(2.0 * np.arcsin(np.clip(chord, 0.0, 1.0))),
        "position": position,
        "position_frac": position / spread,
        "spread": spread,
        "scale": scale,
    }
