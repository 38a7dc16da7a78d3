"""The loaded-scene containers every loader returns (errors: plenox.errors.SceneError)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from plenox.data.cameras import Cameras, image_rays, to_ndc



@dataclass
class Split:
    """The images of one split and their cameras.

    images: (N, H, W, 3) float32 in [0, 1], already composited on the scene
        background where the source images have alpha.
    cameras: the N cameras, at the resolution of ``images``.
    names: N file stems, for per-image reports.
    alpha: (N, H, W) float32 coverage in [0, 1] where the source images had an
        alpha channel (Blender, the built-in scene), else None. Kept so that
        images can be re-composited on another background and written back out.
    """

    images: Tensor
    cameras: Cameras
    names: list[str]
    alpha: Tensor | None = None

    def __post_init__(self):
        n = len(self.cameras)
        expected = (n, self.cameras.height, self.cameras.width, 3)
        if tuple(self.images.shape) != expected:
            raise ValueError(f"Split.images must have shape {expected}, got {tuple(self.images.shape)}")
        if len(self.names) != n:
            raise ValueError(f"Split.names has {len(self.names)} entries for {n} cameras")
        if self.alpha is not None and tuple(self.alpha.shape) != expected[:3]:
            raise ValueError(f"Split.alpha must have shape {expected[:3]}, got {tuple(self.alpha.shape)}")

    def __len__(self) -> int:
        return len(self.cameras)


@dataclass
class Scene:
    """A posed image collection plus the world box a voxel grid should cover.

    splits: "train" and "test" always, "val" where the format has it.
    background: RGB in [0, 1] used for compositing and rendering; None where
        the images have no alpha and the format defines no background (LLFF).
    center, radius: the grid's world box (center +- radius per axis); in NDC
        space when ``ndc`` is True (center 0, radius 1 in z and at least 1 in x and y:
        see ``plenox.data.llff.ndc_half_extent``).
    near, far: ray-parameter bounds for sampling (depth units, since ray
        directions have depth 1; NDC t in [0, 1] when ``ndc`` is True).
    ndc: rays must go through :func:`plenox.data.cameras.to_ndc` with ``ndc_focal``
        and the split's image width and height (forward-facing LLFF scenes).
    holdout: how the test split was chosen, in words, where the format has no explicit split.
    """

    name: str
    format: str
    splits: dict[str, Split]
    background: tuple[float, float, float] | None
    center: tuple[float, float, float]
    radius: tuple[float, float, float]
    near: float
    far: float
    ndc: bool
    ndc_focal: float | None = None
    holdout: str | None = None

    def __post_init__(self):
        missing = {"train", "test"} - set(self.splits)
        if missing:
            raise ValueError(f"Scene needs train and test splits, missing {sorted(missing)}")
        if self.ndc and self.ndc_focal is None:
            raise ValueError("an NDC scene needs ndc_focal")

    def view_rays(self, split: str, i: int) -> tuple[Tensor, Tensor]:
        """Rays (H, W, 3) of view ``i`` of ``split``, in NDC space when ``ndc`` is True."""
        cams = self.splits[split].cameras
        origins, dirs = image_rays(cams, i)
        return self._to_scene_space(origins, dirs, cams)

    def _to_scene_space(self, origins: Tensor, dirs: Tensor, cams: Cameras) -> tuple[Tensor, Tensor]:
        """World rays (..., 3) as the model sees them: unchanged, or warped to NDC."""
        if not self.ndc:
            return origins, dirs
        shape = origins.shape
        o, d = to_ndc(origins.reshape(-1, 3), dirs.reshape(-1, 3), cams.width, cams.height, self.ndc_focal)
        return o.reshape(shape), d.reshape(shape)

    def split_rays(self, split: str) -> tuple[Tensor, Tensor, Tensor]:
        """Every pixel of every image of ``split`` as rays.

        Returns origins (M, 3), directions (M, 3) and colours (M, 3), float32,
        with M = N * H * W ordered image-major then row-major; the rays are in
        NDC space when ``ndc`` is True.
        """
        if split not in self.splits:
            raise KeyError(f"scene {self.name!r} has no {split!r} split (has {sorted(self.splits)})")
        s = self.splits[split]
        cams = s.cameras
        per_image = [image_rays(cams, i) for i in range(len(cams))]
        if per_image:
            origins = torch.stack([o for o, _ in per_image]).reshape(-1, 3)
            dirs = torch.stack([d for _, d in per_image]).reshape(-1, 3)
        else:
            origins = dirs = torch.zeros(0, 3)
        origins, dirs = self._to_scene_space(origins, dirs, cams)
        return origins, dirs, s.images.reshape(-1, 3)
