"""The NeRF fit's settings: the reference's hyper-parameters plus what every fit shares."""

import dataclasses
from dataclasses import dataclass

from plenox.config import FRACTION, INT_NONNEG, NONNEG, POSITIVE, RunSettings, check_ranges
from plenox.errors import ConfigError
from plenox.models.nerf import NerfConfig


@dataclass
class NerfFitConfig(NerfConfig, RunSettings):
    """A NeRF fit: the NerfConfig fields (reference hyper-parameters) plus the shared RunSettings.

    near, far and white_bkgd may be None, meaning "the scene's": its near/far bounds (Blender
    2 and 6, NDC 0 and 1, as the reference) and whether its background is white;
    ``for_scene`` fills them in before a fit, so the saved config is concrete.
    """

    model: str = "nerf"
    steps: int = 200_000                      # the reference's N_iters; a --minutes budget usually ends first
    near: float | None = None
    far: float | None = None
    white_bkgd: bool | None = None

    def check(self) -> "NerfFitConfig":
        """Validate value ranges; return self."""
        super().check()
        check_ranges(self, {"lr": POSITIVE, "raw_noise_std": NONNEG, "precrop_iters": INT_NONNEG,
                            "precrop_frac": FRACTION})
        for name in ("n_coarse", "netdepth", "netwidth", "batch_rays", "chunk", "lr_decay_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_fine < 0 or self.multires < 0 or self.multires_views < 0:
            raise ConfigError("n_fine, multires and multires_views must be >= 0")
        if self.batching not in ("image", "all"):
            raise ConfigError(f"batching must be image or all, got {self.batching!r}")
        for name in ("near", "far"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ConfigError(f"{name} must be a number or null (the scene's), got {value!r}")
        if self.near is not None and self.far is not None and not 0 <= self.near < self.far:
            raise ConfigError(f"need 0 <= near < far, got near {self.near} and far {self.far}")
        if self.white_bkgd not in (None, True, False):
            raise ConfigError(f"white_bkgd must be true, false or null (the scene's), got {self.white_bkgd!r}")
        return self

    def for_scene(self, scene, minutes: float | None = None) -> "NerfFitConfig":
        """A copy with near, far and white_bkgd taken from ``scene`` where they are None."""
        white = tuple(scene.background or ()) == (1.0, 1.0, 1.0)
        return dataclasses.replace(
            self, near=scene.near if self.near is None else self.near, far=scene.far if self.far is None else self.far,
            white_bkgd=white if self.white_bkgd is None else self.white_bkgd)

    @property
    def rays_per_step(self) -> int:
        return self.batch_rays

    def nerf_config(self) -> NerfConfig:
        """The NerfConfig part (call on a ``for_scene`` copy: near, far and white_bkgd must be set)."""
        return NerfConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(NerfConfig)})
