"""What crosses the kernel boundary: plain arrays and one tuple of settings.

``GridArrays`` is a grid as the kernels read it; ``MarchSettings`` the ray-marching settings
in the order of ``kernels.raymarch.MARCH_FIELDS``. The backend takes these and the rays and
returns arrays; it never calls back into the grid.
"""

from typing import NamedTuple

import numpy as np
import torch

from plenox.kernels.raymarch import MARCH_FIELDS


class GridArrays(NamedTuple):
    """A sparse grid's arrays, on one device.

    links int32 (Rx, Ry, Rz); density (N,) and sh (N, 3B) of one float dtype; basis_dim B;
    occupancy uint8 block occupancy (only blocks with a corner of density > sigma_thresh);
    scale, offset float64 (3,): grid coordinates = world * scale + offset; the background
    (plenox.models.background): bg_links int32 (2R, R), bg_density (K, L), bg_rgb (K, 3L) in
    the grid's dtype, with no rows when the grid has none.
    """

    links: torch.Tensor
    density: torch.Tensor
    sh: torch.Tensor
    basis_dim: int
    occupancy: torch.Tensor
    scale: np.ndarray
    offset: np.ndarray
    bg_links: torch.Tensor
    bg_density: torch.Tensor
    bg_rgb: torch.Tensor


class MarchSettings(NamedTuple):
    """Ray-marching settings: step in voxels, density gate, early-stop transmittance, background RGB."""

    step: float
    sigma_thresh: float
    stop_thresh: float
    bg_r: float
    bg_g: float
    bg_b: float

    def as_floats(self) -> tuple:
        """The settings as a plain tuple of Python floats, as the kernels take them."""
        return tuple(float(v) for v in self)


assert MarchSettings._fields == MARCH_FIELDS, "MarchSettings must follow the kernels' order"
