"""Framing a real capture: what kind it is, where the object is, how large, and at what resolution to train.

A capture (COLMAP, an LLFF ``poses_bounds.npy``, a ``transforms.json`` without a fixed
box) comes in whatever frame and scale structure-from-motion chose. Here:

- :func:`classify_capture` tells **forward-facing** captures (every camera looks within
  ``FORWARD_MAX_DEG`` of the cameras' mean viewing direction, as LLFF's handheld sweeps do:
  fitted in NDC) from **object-centric** ones (the views spread wider and the optical axes
  meet in front of the cameras: fitted in a box).
- :func:`frame_object` is the object-centric similarity: rotate the capture's up (see
  :func:`capture_up`) to +z (plenox's orbit renders assume z up), centre on the point nearest
  every optical axis (where the cameras look), size the box as Blender's relative to the
  camera distance (0.375) or, where larger, to hold the sparse points' robust extent (5th-95th
  percentiles of the points nearer that centre than the cameras are), and scale so the box is
  Blender's (centre 0, half-size 1.5), which keeps the configs' density units.
- :func:`budget_factor` caps the training resolution to ``PIXEL_BUDGET`` pixels per image.

Poses are OpenGL camera-to-world matrices (N, 4, 4) float64 throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from plenox.data.cameras import Cameras
from plenox.data.scene import Scene
from plenox.errors import SceneError

FORWARD_MAX_DEG = 30.0
# The right axes span a plane when the second eigenvalue of sum r r^T is at least this
# fraction of the largest (cameras spread evenly over +-22 degrees or more about the up axis).
LEVEL_SPAN = 0.05
# The box Blender scenes use (svox2's), and its ratio to the camera distance (1.5 at distance 4).
BOX_RADIUS = 1.5
BOX_TO_DISTANCE = 0.375
# The object region from the sparse points: the points nearer the axes' meeting point than
# the median camera, their 5th-95th percentiles per axis, at least MIN_POINTS of them.
POINT_PERCENTILES = (5.0, 95.0)
MIN_POINTS = 20
# Per-image pixel cap of captures: 1 MP of float32 RGB is 12 MB, so 100 photos take 1.2 GB
# (a 12 MP phone photo is read at 1008x756, downscale 4).
PIXEL_BUDGET = 1_000_000
OBJECT, FORWARD = "object", "forward"


@dataclass(frozen=True)
class Capture:
    """A capture's kind ("object" or "forward") and a one-line reason naming the measured angles."""

    kind: str
    reason: str


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def viewing_directions(c2w: np.ndarray) -> np.ndarray:
    """Unit optical-axis directions (N, 3): OpenGL cameras look down their -z axis."""
    return _unit(-c2w[:, :3, 2])


def axes_meeting_point(c2w: np.ndarray) -> tuple[np.ndarray, float]:
    """The point nearest every optical axis in the least-squares sense, and the conditioning of that fit.

    Solves sum_i (I - d_i d_i^T)(p - o_i) = 0. The conditioning (smallest over largest
    eigenvalue, in [0, 1]) is near 0 when the axes are parallel and the point is meaningless.
    """
    origins, dirs = c2w[:, :3, 3], viewing_directions(c2w)
    proj = np.eye(3) - dirs[:, :, None] * dirs[:, None, :]
    a, b = proj.sum(0), (proj @ origins[:, :, None]).sum(0)[:, 0]
    eig = np.linalg.eigvalsh(a)
    if eig[-1] <= 0 or eig[0] < 1e-9 * eig[-1]:
        return origins.mean(0), 0.0
    return np.linalg.solve(a, b), float(eig[0] / eig[-1])


def classify_capture(c2w: np.ndarray, source) -> Capture:
    """Forward-facing or object-centric, from the camera directions; SceneError naming ``source`` for neither.

    Forward-facing: every viewing direction lies within FORWARD_MAX_DEG of the mean one
    (fern: 9.5 degrees). Otherwise object-centric if the point nearest all optical axes
    lies in front of every camera (lego_200: directions up to 92 degrees apart, meeting 4
    units in front). A wide spread whose axes do not meet in front (a panorama, cameras
    looking outwards) is neither.
    """
    dirs = viewing_directions(c2w)
    mean = dirs.sum(0)
    if np.linalg.norm(mean) < 1e-9:
        spread = 90.0
    else:
        spread = float(np.degrees(np.arccos(np.clip(dirs @ _unit(mean), -1.0, 1.0))).max())
    if spread <= FORWARD_MAX_DEG:
        return Capture(FORWARD, f"forward-facing: every camera looks within {spread:.1f} deg of the cameras' "
                                f"mean direction (<= {FORWARD_MAX_DEG:g})")
    point, conditioning = axes_meeting_point(c2w)
    depth = ((point - c2w[:, :3, 3]) * dirs).sum(1)
    if conditioning == 0.0 or (depth <= 0).any():
        behind = int((depth <= 0).sum())
        raise SceneError(source, f"cannot frame this capture: the cameras look up to {spread:.0f} deg away from their "
                                 f"mean direction (not forward-facing) but their axes do not meet in front of them "
                                 f"({behind} of {len(c2w)} cameras face away; panoramas and outward-looking "
                                 f"captures are not supported)")
    return Capture(OBJECT, f"object-centric: cameras look up to {spread:.0f} deg away from their mean direction "
                           f"(forward-facing needs <= {FORWARD_MAX_DEG:g}) and their axes meet "
                           f"{np.median(depth):.3g} units in front of them")


def capture_up(c2w: np.ndarray) -> np.ndarray:
    """The capture's up direction (3,): perpendicular to every camera's right axis, signed like their mean up.

    People hold cameras level (beer_360: 2.7 degrees of roll, median), so the right axes lie in
    the horizontal plane whatever the pitch; the mean of the up axes instead leans towards
    where the cameras are not (23 degrees off on beer_360, whose cameras look down on a
    280-degree arc). Where the right axes do not span a plane (every camera turned the same
    way, LEVEL_SPAN), the mean up is all there is.
    """
    right = _unit(c2w[:, :3, 0])
    eig, vec = np.linalg.eigh(right.T @ right)
    mean_up = _unit(c2w[:, :3, 1].sum(0))
    if eig[1] < LEVEL_SPAN * eig[2]:
        return mean_up
    up = vec[:, 0]
    return up if up @ mean_up >= 0 else -up


def rotation_to_z(up: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) taking the unit vector ``up`` to +z."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(up, z)
    s, c = np.linalg.norm(axis), float(up @ z)
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * kx @ kx


def similarity_matrix(scale: float, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """The (4, 4) matrix of x -> scale * rotation @ x + translation."""
    m = np.eye(4)
    m[:3, :3] = scale * rotation
    m[:3, 3] = translation
    return m


def apply_similarity(transform: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """Camera-to-world matrices (N, 4, 4) moved by a similarity ``transform``: positions map, rotations turn."""
    scale = np.cbrt(np.linalg.det(transform[:3, :3]))
    out = c2w.copy()
    out[:, :3, :3] = (transform[:3, :3] / scale) @ c2w[:, :3, :3]
    out[:, :3, 3] = c2w[:, :3, 3] @ transform[:3, :3].T + transform[:3, 3]
    return out


def near_far(origins: np.ndarray, center, radius) -> tuple[float, float]:
    """Depth bounds that cover the box from every camera: camera distance to the centre -+ the box's half-diagonal."""
    dist = np.linalg.norm(origins - np.asarray(center), axis=1)
    reach = float(np.linalg.norm(radius))
    return max(float(dist.min()) - reach, 1e-2 * reach), float(dist.max()) + reach


@dataclass
class ObjectFrame:
    """The framing of an object-centric capture.

    transform: (4, 4) similarity from the capture's coordinates to the scene's
        (x_scene = transform @ x_capture); the box is then centre 0, half-size BOX_RADIUS.
    c2w: the cameras' (N, 4, 4) camera-to-world in scene coordinates.
    note: one line on where the box came from.
    """

    transform: np.ndarray
    c2w: np.ndarray
    note: str

    def scene(self, name: str, fmt: str, splits: dict, background, capture: Capture, holdout: str,
              downscale: int) -> Scene:
        """The Scene of these cameras' splits, in the box."""
        center, radius = (0.0, 0.0, 0.0), (BOX_RADIUS,) * 3
        near, far = near_far(self.c2w[:, :3, 3], center, radius)
        return Scene(name=name, format=fmt, splits=splits, background=background, center=center, radius=radius,
                     near=near, far=far, ndc=False, capture=capture.kind, holdout=holdout, downscale=downscale,
                     transform=self.transform)


def frame_object(c2w: np.ndarray, points: np.ndarray | None = None) -> ObjectFrame:
    """The similarity that puts an object-centric capture in the Blender box (see the module docstring).

    c2w: (N, 4, 4) in the capture's coordinates; points: (P, 3) sparse points there, or None.

    Measured on beer_360 (a can on a tiled floor, walls behind; 500-step fits of ``custom`` at
    downscale 8, 9 held-out views): the points' own box is 0.19 x the camera distance and 69%
    of the pixels fall outside it, where a bounded grid has only its background colour: such a
    box stalls at 5.3 dB. Centred on the points' box but 0.375 x the distance, 11.4 dB; centred
    where the axes meet, 12.4 dB. Hence the axes' centre, and the points only to enlarge the box.
    """
    rot = rotation_to_z(capture_up(c2w))
    meet, _ = axes_meeting_point(c2w)
    origins = (c2w[:, :3, 3] - meet) @ rot.T
    distance = float(np.median(np.linalg.norm(origins, axis=1)))
    inside = np.zeros((0, 3))
    if points is not None and len(points):
        local = (points - meet) @ rot.T
        inside = local[np.linalg.norm(local, axis=1) < distance]
    half = BOX_TO_DISTANCE * distance
    note = f"box {BOX_TO_DISTANCE:g} x the camera distance around the point nearest every optical axis"
    if len(inside) >= MIN_POINTS:
        extent = float(np.abs(np.percentile(inside, POINT_PERCENTILES, axis=0)).max())
        half = max(half, extent)
        note += (f"; {len(inside)} sparse points inside the camera ring reach {extent / distance:.2f} x the camera "
                 f"distance ({POINT_PERCENTILES[0]:g}th-{POINT_PERCENTILES[1]:g}th percentiles): "
                 f"half-size {half / distance:.2f} x")
    scale = BOX_RADIUS / half
    transform = similarity_matrix(scale, rot, -scale * (rot @ meet))
    return ObjectFrame(transform, apply_similarity(transform, c2w), note)


def depth_bounds(cams: Cameras, points: np.ndarray, source) -> np.ndarray:
    """Per-camera (near, far) depths (N, 2) of the sparse points each camera sees, as LLFF's imgs2poses
    takes them (0.1th and 99.9th percentiles); cameras seeing fewer than MIN_POINTS take the others' extremes.

    cams: in the points' coordinates. SceneError naming ``source`` when no camera sees enough points.
    """
    c2w = cams.c2w.double().numpy()
    bounds = np.full((len(cams), 2), np.nan)
    for i in range(len(cams)):
        local = (points - c2w[i, :3, 3]) @ c2w[i, :3, :3]    # camera axes: x right, y up, z back
        depth = -local[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = float(cams.cx[i]) + float(cams.fx[i]) * local[:, 0] / depth
            v = float(cams.cy[i]) - float(cams.fy[i]) * local[:, 1] / depth
        seen = (depth > 0) & (u >= 0) & (u < cams.width) & (v >= 0) & (v < cams.height)
        if seen.sum() >= MIN_POINTS:
            bounds[i] = np.percentile(depth[seen], [0.1, 99.9])
    if np.isnan(bounds).all():
        raise SceneError(source, f"forward-facing capture: no camera sees {MIN_POINTS} sparse points, "
                                 f"so the depth range NDC needs is unknown")
    missing = np.isnan(bounds[:, 0])
    bounds[missing] = np.nanmin(bounds[:, 0]), np.nanmax(bounds[:, 1])
    return bounds


def budget_factor(width: int, height: int, max_pixels: int | None = None) -> int:
    """The smallest integer downscale that brings a width x height image to at most ``max_pixels``
    pixels (default PIXEL_BUDGET)."""
    max_pixels = PIXEL_BUDGET if max_pixels is None else max_pixels
    factor = max(1, math.ceil(math.sqrt(width * height / max_pixels)))
    while factor > 1 and (width // (factor - 1)) * (height // (factor - 1)) <= max_pixels:
        factor -= 1
    while (width // factor) * (height // factor) > max_pixels:
        factor += 1
    return factor


def budget_note(name: str, width: int, height: int, factor: int, downscale: int | None = None) -> str:
    """One line for the log: the pixel budget's choice for ``width`` x ``height`` images, box-filtered by
    ``factor``; ``downscale`` is the value that reloads them (default ``factor``; LLFF's counts from full size)."""
    return (f"{name}: {width}x{height} images, pixel budget {PIXEL_BUDGET / 1e6:g} MP per image -> "
            f"{width // factor}x{height // factor}, downscale {downscale or factor}; override with downscale=N")


def holdout_rule(every: int, order: str) -> str:
    """The held-out split in words, for the metrics protocol."""
    return f"test = every {every}th view sorted by {order} (0, {every}, {2 * every}, ...); train = the others"


def align_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The similarity (4, 4) that best maps points ``src`` (N, 3) onto ``dst`` (N, 3) in least squares (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    flip = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ flip @ vt
    scale = float((sig * np.diag(flip)).sum() / (s * s).sum(1).mean())
    return similarity_matrix(scale, rot, mu_d - scale * rot @ mu_s)
