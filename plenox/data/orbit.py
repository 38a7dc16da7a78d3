"""An orbit of cameras around an object scene, for videos and renders."""

import math

import torch

from plenox.data.cameras import Cameras
from plenox.data.scene import Scene


def orbit_cameras(scene: Scene, frames: int) -> Cameras:
    """A circle of ``frames`` cameras around the box centre at the training cameras' mean
    distance and height, looking at the centre, with the training cameras' intrinsics."""
    train = scene.splits["train"].cameras
    center = torch.tensor(scene.center, dtype=torch.float32)
    positions = train.c2w[:, :3, 3] - center
    radius_xy = positions[:, :2].norm(dim=1).mean()
    height = positions[:, 2].mean()
    c2w = []
    for k in range(frames):
        a = 2 * math.pi * k / frames
        eye = center + torch.tensor([radius_xy * math.cos(a), radius_xy * math.sin(a), height])
        back = (eye - center) / (eye - center).norm()          # camera z points away from the target
        right = torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0]), back)
        right = right / right.norm()
        up = torch.linalg.cross(back, right)
        m = torch.eye(4)
        m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, back, eye
        c2w.append(m)
    n = frames
    return Cameras(torch.stack(c2w), train.fx[:1].repeat(n), train.fy[:1].repeat(n), train.cx[:1].repeat(n),
                   train.cy[:1].repeat(n), train.width, train.height)
