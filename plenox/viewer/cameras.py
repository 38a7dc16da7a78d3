"""Cameras between viser and plenox.

viser describes a browser's camera by ``wxyz`` (the rotation R in P_world = R p_camera + t) and
``position`` (t) in OpenCV axes: x right, y down, z forward. plenox's cameras are OpenGL
camera-to-world matrices: x right, y up, z back. The two frames differ by a half turn about the
camera's x axis, so c2w[:3, :3] = R @ diag(1, -1, -1) and c2w[:3, 3] = t.
"""

import math
from dataclasses import dataclass

import numpy as np
import viser.transforms as vtf

from plenox.data.cameras import Cameras
from plenox.data.camera_paths import pinhole_cameras

OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0])


def c2w_from_viser(wxyz, position) -> np.ndarray:
    """(4, 4) float64 OpenGL camera-to-world of a viser camera (wxyz (4,), position (3,))."""
    c2w = np.eye(4)
    c2w[:3, :3] = vtf.SO3(np.asarray(wxyz, dtype=np.float64)).as_matrix() @ OPENCV_TO_OPENGL
    c2w[:3, 3] = np.asarray(position, dtype=np.float64)
    return c2w


def viser_from_c2w(c2w) -> tuple[np.ndarray, np.ndarray]:
    """(wxyz (4,), position (3,)) of the viser camera looking like OpenGL camera-to-world ``c2w`` (4, 4)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    return vtf.SO3.from_matrix(c2w[:3, :3] @ OPENCV_TO_OPENGL).wxyz, c2w[:3, 3].copy()


def vertical_fov(cams: Cameras, i: int = 0) -> float:
    """Vertical field of view (radians) of camera ``i``."""
    return 2.0 * math.atan(0.5 * cams.height / float(cams.fy[i]))


def frame_size(aspect: float, long_side: int) -> tuple[int, int]:
    """(width, height) of a frame of ``aspect`` (width / height) whose longer side is ``long_side`` pixels."""
    if aspect >= 1:
        return long_side, max(int(round(long_side / aspect)), 1)
    return max(int(round(long_side * aspect)), 1), long_side


@dataclass(frozen=True)
class ViewCamera:
    """What a browser shows: c2w (4, 4) OpenGL camera-to-world, fov_y vertical field of view in
    radians, aspect canvas width / height."""

    c2w: np.ndarray
    fov_y: float
    aspect: float

    @classmethod
    def from_viser(cls, wxyz, position, fov_y: float, aspect: float) -> "ViewCamera":
        return cls(c2w_from_viser(wxyz, position), float(fov_y), float(aspect))

    def cameras(self, width: int, height: int) -> Cameras:
        """This view as one pinhole camera rendering width x height pixels (square pixels)."""
        return pinhole_cameras(self.c2w[None], math.degrees(self.fov_y), width, height)
