"""The one pruning rule, used by the fit at every upsample and by ``plenox prune``.

Rules (svox2's):
  weight   keep voxels whose maximum rendered weight T_i * alpha_i over the training rays
           (every ``ray_stride``-th pixel per axis) is >= weight_thresh / Rz. The threshold is
           per-Rz, as svox2's ``weight_thresh`` (0.256 keeps weights >= 0.001 at Rz 256), so the
           same number means the same thing at every resolution, in a config and on the
           command line.
  density  keep voxels whose raw density is >= density_thresh.
  none     keep every linked voxel.
then grow the kept set by ``dilate`` steps of the 26-neighbourhood.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from plenox.data import Scene
from plenox.errors import PruneError
from plenox.models.grid import SparseGrid, dilate_mask
from plenox.models.grid_autograd import RenderOptions, max_weights

RULES = ("weight", "density", "none")
DEFAULT_WEIGHT_THRESH = 0.256   # svox2: kept if max weight >= 0.256 / Rz


@dataclass(frozen=True)
class PruneRule:
    """Which voxels to keep (see the module docstring for the rules)."""

    rule: str = "weight"
    weight_thresh: float = DEFAULT_WEIGHT_THRESH
    density_thresh: float = 5.0
    dilate: int = 2
    ray_stride: int = 1

    def __post_init__(self):
        if self.rule not in RULES:
            raise PruneError(f"prune rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        if not math.isfinite(self.weight_thresh) or self.weight_thresh <= 0:
            raise PruneError(f"weight threshold must be a positive number (times 1/Rz), got {self.weight_thresh}")
        if not math.isfinite(self.density_thresh):
            raise PruneError(f"density threshold must be a finite number, got {self.density_thresh}")
        if self.dilate < 0:
            raise PruneError(f"dilate must be >= 0, got {self.dilate}")
        if self.ray_stride < 1:
            raise PruneError(f"ray stride must be >= 1, got {self.ray_stride}")

    def absolute_weight(self, grid: SparseGrid) -> float:
        """The rendered-weight threshold at the grid's z resolution: weight_thresh / Rz."""
        return self.weight_thresh / grid.resolution[2]

    def record(self, grid: SparseGrid) -> dict:
        """What a report says of the rule applied to ``grid``."""
        if self.rule == "weight":
            return {"rule": "weight", "weight_thresh": self.weight_thresh, "threshold": self.absolute_weight(grid),
                    "ray_stride": self.ray_stride, "dilate": self.dilate}
        if self.rule == "density":
            return {"rule": "density", "threshold": self.density_thresh, "dilate": self.dilate}
        return {"rule": "none", "dilate": self.dilate}


def strided_rays(scene: Scene, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training rays (K, 3) through every ``stride``-th pixel per axis."""
    origins, dirs, _ = scene.split_rays("train")
    cams = scene.splits["train"].cameras
    shape = (len(cams), cams.height, cams.width, 3)
    pick = (slice(None), slice(stride // 2, None, stride), slice(stride // 2, None, stride))
    return (origins.reshape(shape)[pick].reshape(-1, 3).contiguous(),
            dirs.reshape(shape)[pick].reshape(-1, 3).contiguous())


@torch.no_grad()
def keep_mask(grid: SparseGrid, scene: Scene, options: RenderOptions, rule: PruneRule) -> np.ndarray:
    """bool (Rx, Ry, Rz): the voxels ``rule`` keeps, dilated (rule "none": the linked voxels as they are)."""
    if rule.rule == "none":
        return grid.links.cpu().numpy() >= 0
    if rule.rule == "density":
        keep = grid.density.detach() >= rule.density_thresh
    else:
        origins, dirs = strided_rays(scene, rule.ray_stride)
        device = grid.density.device
        keep = max_weights(grid, origins.to(device, grid.density.dtype), dirs.to(device, grid.density.dtype),
                           options) >= rule.absolute_weight(grid)
    return dilate_mask(grid.voxel_mask(keep), rule.dilate)


def prune_grid(grid: SparseGrid, scene: Scene, options: RenderOptions, rule: PruneRule) -> SparseGrid:
    """A new grid holding the voxels ``rule`` keeps."""
    return grid.prune(keep_mask(grid, scene, options, rule))
