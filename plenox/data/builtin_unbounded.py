"""The generated unbounded scene: the built-in still life inside a painted room far outside its box.

The built-in scene's shapes (``plenox.data.builtin``), lit the same way, stand inside a
painted sphere of radius ENVIRONMENT_RADIUS (eight times the radius-1.5 box that holds the
shapes, three times the cameras' distance): a tiled ground below the horizon, coloured wall
panels by longitude with lighter and darker bands above it, a brighter sky towards the top.
Nothing is transparent, so every pixel shows something, most of it far outside the box; the
cameras (distance 4, as the built-in scene's, lower down, with a phone's wider field of view)
look at the shapes with the room behind and round them. A small, fast check of a background model: a bounded grid has nowhere to put
the room (it smears it over its box), a grid with a background model does.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from plenox.data.builtin import SUPERSAMPLE, _shade, hemisphere_cameras
from plenox.data.blender import BOX_CENTER, BOX_RADIUS
from plenox.data.cameras import Cameras, pixel_rays
from plenox.data.images import area_downscale
from plenox.data.scene import Scene, Split

NAME = "builtin_unbounded"
ENVIRONMENT_RADIUS = 12.0
GROUND_TILES = 12          # ground checker cells round the horizon
GROUND_COLOURS = ((0.86, 0.84, 0.8), (0.5, 0.48, 0.46))
PANEL_COLOURS = np.array([(0.75, 0.35, 0.3), (0.35, 0.6, 0.4), (0.3, 0.45, 0.75), (0.85, 0.75, 0.35),
                          (0.6, 0.4, 0.7), (0.35, 0.7, 0.75)], dtype=np.float32)
HOLDOUT_EVERY = 8
# Cameras look down on the shapes less steeply than the built-in scene's, as a person holding
# a phone does, so the walls show above the ground.
ELEVATIONS = (math.radians(5.0), math.radians(30.0))
# A phone's field of view (lego's, the built-in scene's, is 40 degrees): the room shows round the box.
CAMERA_ANGLE_X = math.radians(60.0)


def environment_colour(u: np.ndarray) -> np.ndarray:
    """Colour (M, 3) of the painted sphere at unit directions u (M, 3) from its centre."""
    lon = np.arctan2(u[:, 1], u[:, 0])
    lat = np.arcsin(np.clip(u[:, 2], -1.0, 1.0))
    panel = np.floor((lon + math.pi) / (2 * math.pi) * len(PANEL_COLOURS)).astype(int) % len(PANEL_COLOURS)
    bands = np.where(np.floor(lat / math.radians(20.0)) % 2 == 0, 1.0, 0.78)
    sky = np.clip(lat / math.radians(60.0), 0.0, 1.0)[:, None]
    colour = PANEL_COLOURS[panel] * bands[:, None] * (1 - sky) + np.float32(0.92) * sky
    # Ground: a checker in longitude and (log) distance along the floor, below the horizon.
    depth = np.log(np.maximum(np.tan(-lat), 1e-6)) / math.log(2.0)
    tile = (np.floor((lon + math.pi) / (2 * math.pi) * GROUND_TILES) + np.floor(depth)) % 2 == 0
    ground = np.where(tile[:, None], np.float32(GROUND_COLOURS[0]), np.float32(GROUND_COLOURS[1]))
    return np.where((lat < 0)[:, None], ground, colour).astype(np.float32)


def _environment(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Colour (M, 3) of the painted sphere along unit rays (M, 3) from inside it."""
    oc, dd = o.astype(np.float64), d.astype(np.float64)
    b = (oc * dd).sum(1)
    t = -b + np.sqrt(b * b - (oc * oc).sum(1) + ENVIRONMENT_RADIUS ** 2)
    return environment_colour(((oc + t[:, None] * dd) / ENVIRONMENT_RADIUS).astype(np.float32))


def render_unbounded(cams: Cameras) -> torch.Tensor:
    """Ray-trace the scene for every camera: images (N, H, W, 3) float32 in [0, 1], each pixel
    the mean of SUPERSAMPLE^2 rays."""
    fine = cams.scaled(1.0 / SUPERSAMPLE)
    n, h, w = len(fine), fine.height, fine.width
    cam_idx = torch.arange(n).repeat_interleave(h * w)
    pixel = torch.arange(h * w).repeat(n)
    origins, dirs = pixel_rays(fine, cam_idx, pixel % w, pixel // w)
    o, d = origins.numpy(), dirs.numpy()
    d /= np.sqrt((d * d).sum(1))[:, None]
    colour, alpha = _shade(o, d)
    missed = np.nonzero(alpha == 0)[0]
    colour[missed] = _environment(o[missed], d[missed])
    image = area_downscale(colour.reshape(n * h, w, 3), SUPERSAMPLE).reshape(n, cams.height, cams.width, 3)
    return torch.from_numpy(np.ascontiguousarray(image))


def unbounded_scene(size: int = 64, n_views: int = 24, seed: int = 0) -> Scene:
    """The scene with ``n_views`` views of ``size`` x ``size`` pixels; every 8th view (0, 8, ...)
    is held out as the test split, as for captures. Deterministic in ``seed``."""
    for name, value, least in (("size", size, 8), ("n_views", n_views, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"unbounded_scene: {name} must be an integer >= {least}, got {value!r}")
    cams = hemisphere_cameras(n_views, size, np.random.default_rng(seed), ELEVATIONS)
    focal = 0.5 * size / math.tan(0.5 * CAMERA_ANGLE_X)
    cams = dataclasses.replace(cams, fx=focal, fy=focal)
    images = render_unbounded(cams)
    test = np.arange(n_views) % HOLDOUT_EVERY == 0
    splits = {}
    for split, mask in (("train", ~test), ("test", test)):
        idx = torch.from_numpy(np.nonzero(mask)[0])
        splits[split] = Split(images=images[idx], cameras=cams.subset(idx),
                              names=[f"r_{i}" for i in idx.tolist()])
    return Scene(name=NAME, format=NAME, splits=splits, background=None, center=BOX_CENTER, radius=BOX_RADIUS,
                 near=0.1, far=2 * ENVIRONMENT_RADIUS, ndc=False,
                 holdout=f"every {HOLDOUT_EVERY}th view (0, {HOLDOUT_EVERY}, {2 * HOLDOUT_EVERY}, ...) held out")
