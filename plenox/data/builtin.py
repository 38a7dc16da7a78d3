"""The built-in scene: a small analytic ray-traced still life, Blender-style.

A checkered plate carrying a striped sphere, a rotated checkered box and a
striped cylinder, lit by one directional light with hard shadows, a diffuse
term and a Blinn-Phong highlight (so colour depends on the view direction),
on a white background. World z is up. Everything lies inside the radius-1.5
box the Blender scenes use, and cameras sit on the upper hemisphere at distance
4 looking at the origin with lego's field of view, so the built-in scene can
stand in for a NeRF-synthetic scene in tests and quick runs.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from plenox.data.cameras import Cameras, pixel_rays
from plenox.data.blender import object_scene, write_blender_scene
from plenox.data.images import WHITE, area_downscale
from plenox.data.scene import Scene, Split

__all__ = ["builtin_scene", "render_builtin", "hemisphere_cameras", "write_blender_scene"]

CAMERA_DISTANCE = 4.0
CAMERA_ANGLE_X = 0.6911112070083618  # lego's horizontal field of view
MIN_ELEVATION, MAX_ELEVATION = math.radians(10.0), math.radians(75.0)

LIGHT = (np.array([0.45, 0.3, 0.85]) / np.linalg.norm([0.45, 0.3, 0.85])).astype(np.float32)
AMBIENT, DIFFUSE, SPECULAR, SHININESS = 0.3, 0.7, 0.35, 24.0
SUPERSAMPLE = 2  # rays per pixel side; edges get anti-aliased coverage like a real render


def hemisphere_cameras(n: int, size: int, rng: np.random.Generator, elevations=(MIN_ELEVATION, MAX_ELEVATION)
                       ) -> Cameras:
    """``n`` cameras of ``size`` x ``size`` pixels, uniform in azimuth and random in elevation
    (radians, within ``elevations``), looking at the origin."""
    azimuth = rng.uniform(0.0, 2.0 * math.pi, n)
    # Uniform in sin(elevation) is uniform in area over the band of the sphere.
    elevation = np.arcsin(rng.uniform(math.sin(elevations[0]), math.sin(elevations[1]), n))
    pos = CAMERA_DISTANCE * np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], axis=1
    )
    back = pos / np.linalg.norm(pos, axis=1, keepdims=True)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    up = np.cross(back, right)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, :4] = np.stack([right, up, back, pos], axis=2)
    focal = 0.5 * size / math.tan(0.5 * CAMERA_ANGLE_X)
    return Cameras(c2w=c2w, fx=focal, fy=focal, cx=size / 2, cy=size / 2, width=size, height=size)


_NO_HIT = np.float32(np.inf)
_EPS = 1e-4  # minimum hit distance, so that shadow rays leave their surface


def _f32(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float32)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product of (M, 3) arrays; numpy's axis-1 reductions are several times slower."""
    return a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1] + a[:, 2] * b[:, 2]


def _rotate_z(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1], v[:, 2]], axis=1)


def _checker(q: np.ndarray) -> np.ndarray:
    """(M,) bool: parity of the integer cell of each row of q (M, k)."""
    return np.floor(q).sum(axis=1) % 2 == 1


def _two_tone(mask: np.ndarray, on, off) -> np.ndarray:
    """(M, 3) float32 colours: ``on`` where mask, else ``off``."""
    return np.where(mask[:, None], _f32(on), _f32(off))


class _Box:
    """A box turned by ``angle`` about z, with a 3D checker texture of cell size ``cell``."""

    def __init__(self, center, half, angle, cell, colours):
        self.center, self.half, self.angle, self.cell, self.colours = _f32(center), _f32(half), angle, cell, colours
        self.bound = float(np.linalg.norm(half))

    def hit(self, o, d):
        lo = _rotate_z(o - self.center, -self.angle)
        ld = _rotate_z(d, -self.angle)
        # A zero component would give 0 * inf = nan on a slab face; nudging it keeps t finite or +-inf.
        ld = np.where(np.abs(ld) < 1e-12, np.float32(1e-12), ld)
        t0, t1 = (-self.half - lo) / ld, (self.half - lo) / ld
        tmin, tmax = np.minimum(t0, t1), np.maximum(t0, t1)
        t_in = np.maximum(np.maximum(tmin[:, 0], tmin[:, 1]), tmin[:, 2])
        t_out = np.minimum(np.minimum(tmax[:, 0], tmax[:, 1]), tmax[:, 2])
        return np.where((t_in <= t_out) & (t_in > _EPS), t_in, _NO_HIT)

    def surface(self, p):
        lp = _rotate_z(p - self.center, -self.angle)
        axis = np.argmax(np.abs(lp) / self.half, axis=1)
        rows = np.arange(len(p))
        normal = np.zeros_like(p)
        normal[rows, axis] = np.sign(lp[rows, axis])
        # Offset by half a cell so that no face lies on a cell boundary.
        return _rotate_z(normal, self.angle), _two_tone(_checker(lp / self.cell + 0.5), *self.colours)


class _Sphere:
    """A sphere with a latitude-longitude checker (8 x 4 cells)."""

    def __init__(self, center, radius, colours):
        self.center, self.radius, self.colours = _f32(center), radius, colours
        self.bound = radius

    def hit(self, o, d):
        oc = o - self.center
        b = _dot(oc, d)
        disc = b * b - (_dot(oc, oc) - self.radius**2)
        t = -b - np.sqrt(np.maximum(disc, 0.0))
        return np.where((disc >= 0) & (t > _EPS), t, _NO_HIT)

    def surface(self, p):
        n = (p - self.center) / self.radius
        lon = np.arctan2(n[:, 1], n[:, 0]) * (4.0 / math.pi)
        lat = np.arccos(np.clip(n[:, 2], -1.0, 1.0)) * (4.0 / math.pi)
        return n, _two_tone(_checker(np.stack([lon, lat], axis=1)), *self.colours)


class _Cylinder:
    """A vertical capped cylinder with 10 angular stripes."""

    def __init__(self, axis_xy, radius, z_range, colours):
        self.axis, self.radius, (self.z0, self.z1), self.colours = _f32(axis_xy), radius, z_range, colours
        self.center = _f32([*axis_xy, 0.5 * sum(z_range)])
        self.bound = math.hypot(radius, 0.5 * (z_range[1] - z_range[0]))

    def hit(self, o, d):
        ox, oy = o[:, 0] - self.axis[0], o[:, 1] - self.axis[1]
        a = d[:, 0] ** 2 + d[:, 1] ** 2
        b = ox * d[:, 0] + oy * d[:, 1]
        disc = b * b - a * (ox * ox + oy * oy - self.radius**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
            t_cap = (np.where(d[:, 2] < 0, self.z1, self.z0) - o[:, 2]) / d[:, 2]
        z_side = o[:, 2] + t_side * d[:, 2]
        side_ok = (disc >= 0) & (a > 1e-12) & (t_side > _EPS) & (z_side >= self.z0) & (z_side <= self.z1)
        cap_ok = (t_cap > _EPS) & ((ox + t_cap * d[:, 0]) ** 2 + (oy + t_cap * d[:, 1]) ** 2 <= self.radius**2)
        return np.minimum(np.where(side_ok, t_side, _NO_HIT), np.where(cap_ok, t_cap, _NO_HIT))

    def surface(self, p):
        x, y, z = p[:, 0] - self.axis[0], p[:, 1] - self.axis[1], p[:, 2]
        rr = np.sqrt(x * x + y * y)
        # A hit point is on the cap when it is nearer the cap plane than the side.
        to_cap = np.minimum(self.z1 - z, z - self.z0)
        on_side = (self.radius - rr) < to_cap
        side_n = np.stack([x / self.radius, y / self.radius, np.zeros_like(x)], axis=1)
        cap_n = np.stack([np.zeros_like(x), np.zeros_like(x), np.sign(z - 0.5 * (self.z0 + self.z1))], axis=1)
        stripes = np.arctan2(y, x) * (5.0 / math.pi)
        return np.where(on_side[:, None], side_n, cap_n), _two_tone(_checker(stripes[:, None]), *self.colours)


SHAPES = (
    _Box((0.0, 0.0, -0.06), (1.0, 1.0, 0.06), 0.0, 0.25, ((0.85, 0.84, 0.78), (0.32, 0.38, 0.46))),  # plate
    _Box((-0.45, -0.25, 0.3), (0.3, 0.3, 0.3), math.radians(30.0), 0.15, ((0.18, 0.62, 0.3), (0.9, 0.95, 0.88))),
    _Sphere((0.45, -0.3, 0.45), 0.45, ((0.88, 0.22, 0.14), (0.97, 0.8, 0.25))),
    _Cylinder((-0.05, 0.6), 0.25, (0.0, 0.8), ((0.2, 0.35, 0.85), (0.85, 0.9, 1.0))),
)


def _trace(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit of unit rays (M, 3): distance t (M,) (inf on a miss) and shape index (M,) (-1 on a miss)."""
    t = np.full(len(o), _NO_HIT)
    which = np.full(len(o), -1)
    for k, shape in enumerate(SHAPES):
        # Only rays passing within the shape's bounding sphere can hit it.
        oc = shape.center - o
        along = _dot(oc, d)
        near = (_dot(oc, oc) - along * along <= shape.bound**2) & (along > -shape.bound)
        idx = np.nonzero(near)[0]
        t_k = shape.hit(o[idx], d[idx])
        closer = t_k < t[idx]
        t[idx[closer]] = t_k[closer]
        which[idx[closer]] = k
    return t, which


def _lattice_noise(cells: np.ndarray) -> np.ndarray:
    """(M,) float32 pseudo-random values in [0, 1], a fixed hash of integer lattice points (M, 3)."""
    h = (cells[:, 0] * 73856093) ^ (cells[:, 1] * 19349663) ^ (cells[:, 2] * 83492791)
    h = (h ^ (h >> 13)) * 1274126177  # int64 products wrap; only the mixing matters
    return ((h ^ (h >> 16)) & 0xFFFF).astype(np.float32) / np.float32(0xFFFF)


def _value_noise(p: np.ndarray, freq: float) -> np.ndarray:
    """(M,) smooth solid noise in [0, 1] at points p (M, 3): lattice values every 1 / freq world units,
    interpolated trilinearly with smoothstep weights."""
    q = p * np.float32(freq)
    base = np.floor(q).astype(np.int64)
    f = q - base
    f = f * f * (3.0 - 2.0 * f)
    out = np.zeros(len(p), dtype=np.float32)
    for corner in np.ndindex(2, 2, 2):
        w = np.prod(np.where(np.asarray(corner, dtype=bool), f, 1.0 - f), axis=1)
        out += w * _lattice_noise(base + np.asarray(corner))
    return out


def _detail(p: np.ndarray, strength: float) -> np.ndarray:
    """(M,) albedo multipliers with mean 1 in [1 - strength, 1 + strength]: solid noise at two scales
    (cells of 1/6 and 1/17 world units), so surfaces carry blobs a feature detector can match between views."""
    g = 0.5 * _value_noise(p, 6.0) + 0.5 * _value_noise(p, 17.0)
    return 1.0 + strength * (2.0 * g - 1.0)


def _shade(o: np.ndarray, d: np.ndarray, detail: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Colour (M, 3) composited on white and coverage (M,) of unit rays (M, 3); ``detail`` as in render_builtin."""
    t, which = _trace(o, d)
    hit = np.nonzero(which >= 0)[0]
    p = o[hit] + t[hit, None] * d[hit]
    normal, albedo = np.empty_like(p), np.empty_like(p)
    for k, shape in enumerate(SHAPES):
        sel = which[hit] == k
        normal[sel], albedo[sel] = shape.surface(p[sel])
    if detail:
        albedo *= _detail(p, detail)[:, None]
    facing = normal @ LIGHT
    shadow_t, _ = _trace(p + 1e-3 * normal, np.broadcast_to(LIGHT, p.shape))
    lit = (facing > 0) & ~np.isfinite(shadow_t)
    half = LIGHT - d[hit]
    half /= np.sqrt(_dot(half, half))[:, None]
    spec = SPECULAR * np.maximum(_dot(normal, half), 0.0) ** SHININESS * lit
    shaded = albedo * (AMBIENT + DIFFUSE * np.maximum(facing, 0.0) * lit)[:, None] + spec[:, None]
    colour = np.broadcast_to(_f32(WHITE), o.shape).copy()
    colour[hit] = np.clip(shaded, 0.0, 1.0)
    alpha = np.zeros(len(o), dtype=np.float32)
    alpha[hit] = 1.0
    return colour, alpha


def render_builtin(cams: Cameras, detail: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray-trace the built-in scene for every camera.

    detail: in [0, 1]; above 0 the albedo is multiplied by a solid noise texture of that
        contrast (1 -+ detail). The checkers alone repeat too regularly for structure-from-motion
        to match views (plenox process's tests render with 0.8); the built-in scene itself uses 0.
    Returns images (N, H, W, 3) float32 in [0, 1] composited on white and
    alpha (N, H, W) float32 coverage; each pixel averages SUPERSAMPLE^2 rays.
    """
    fine = cams.scaled(1.0 / SUPERSAMPLE)
    n, h, w = len(fine), fine.height, fine.width
    # One batched call: per-image calls pay torch's thread start-up once per op, which dominates on busy CPUs.
    cam_idx = torch.arange(n).repeat_interleave(h * w)
    pixel = torch.arange(h * w).repeat(n)
    origins, dirs = pixel_rays(fine, cam_idx, pixel % w, pixel // w)
    o, d = origins.numpy(), dirs.numpy()
    d /= np.sqrt(_dot(d, d))[:, None]
    colour, alpha = _shade(o, d, detail)
    rgba = np.concatenate([colour, alpha[:, None]], axis=1).reshape(n * h, w, 4)
    rgba = area_downscale(rgba, SUPERSAMPLE).reshape(n, cams.height, cams.width, 4)
    return torch.from_numpy(np.ascontiguousarray(rgba[..., :3])), torch.from_numpy(np.ascontiguousarray(rgba[..., 3]))


def builtin_scene(size: int = 64, n_train: int = 40, n_test: int = 10, seed: int = 0) -> Scene:
    """The built-in scene with ``n_train`` + ``n_test`` views of ``size`` x ``size`` pixels, deterministic in ``seed``."""
    for name, value, least in (("size", size, 8), ("n_train", n_train, 1), ("n_test", n_test, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"builtin_scene: {name} must be an integer >= {least}, got {value!r}")
    rng = np.random.default_rng(seed)
    splits = {}
    for split_name, count in (("train", n_train), ("test", n_test)):
        cams = hemisphere_cameras(count, size, rng)
        images, alpha = render_builtin(cams)
        splits[split_name] = Split(images=images, cameras=cams, names=[f"r_{i}" for i in range(count)], alpha=alpha)
    return object_scene("builtin", "builtin", splits, WHITE)
