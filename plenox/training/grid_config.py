"""The Plenoxels fit's settings (svox2's hyper-parameters scaled to CPU budgets) and the one
place that turns them into ray-marching options.

``FitConfig.render_options(scene, purpose)`` is the single factory of render options: the
trainer marches with purpose "train" (stop at ``stop_thresh``); fit's final evaluation,
eval, render, prune, export, compare and the held-out curve look with purpose "view" (stop
at ``render_stop_thresh``). The options are written into every metrics file's protocol.
"""

from dataclasses import dataclass, field

from plenox.config import RunSettings
from plenox.errors import ConfigError, PruneError
from plenox.models.grid_autograd import RenderOptions
from plenox.training.pruning import PruneRule

PURPOSES = ("train", "view")


@dataclass
class FitConfig(RunSettings):
    """Hyperparameters of a Plenoxels fit (svox2's, scaled to CPU budgets; see docs/fit.md)."""

    resolutions: list = field(default_factory=lambda: [[64, 64, 64], [128, 128, 128]])
    upsample_steps: list = field(default_factory=lambda: [1000])   # step at which each upsample happens
    batch_size: int = 4096
    basis_dim: int = 9
    init_density: float = 0.1
    init_sh: float = 0.0
    lr_density: float = 30.0
    lr_density_final: float = 3.0            # svox2: 0.05 over 250k steps; a 10x decay suits CPU budgets
    lr_density_delay_steps: int = 200
    lr_density_delay_mult: float = 0.01
    lr_sh: float = 1e-2
    lr_sh_final: float = 1e-3                # svox2: 5e-6 over 250k steps
    lr_decay_steps: int = 4000
    rms_beta: float = 0.95
    rms_eps: float = 1e-8
    lambda_tv: float = 1e-5
    lambda_tv_sh: float = 1e-3
    tv_fraction: float = 0.01
    tv_after_upsample: bool = False           # synthetic scenes switch TV off after the first upsample
    lambda_sparsity: float = 0.0              # Cauchy sparsity on touched voxels (LLFF)
    prune: str = "weight"                     # "weight", "density" or "none", at each upsample
    weight_thresh: float = 0.256              # kept if max weight >= weight_thresh / Rz
    density_thresh: float = 5.0
    prune_dilate: int = 2
    prune_ray_stride: int = 4                 # max-weight pass uses every k-th pixel per axis
    step_size: float = 0.5
    sigma_thresh: float = 1e-8
    stop_thresh: float = 1e-7
    render_stop_thresh: float = 1e-3          # early stop when rendering a fitted grid (render, eval)
    background: list | None = None            # RGB; None = the scene's background (black if none)

    def check(self) -> "FitConfig":
        """Validate value ranges; return self."""
        super().check()
        if len(self.resolutions) != len(self.upsample_steps) + 1:
            raise ConfigError(f"resolutions has {len(self.resolutions)} entries: upsample_steps needs "
                              f"{len(self.resolutions) - 1}, got {len(self.upsample_steps)}")
        if any(len(r) != 3 or min(r) < 2 for r in self.resolutions):
            raise ConfigError(f"resolutions must be lists of 3 integers >= 2, got {self.resolutions}")
        for name in ("batch_size", "lr_decay_steps", "prune_ray_stride"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.basis_dim not in (1, 4, 9, 16):
            raise ConfigError(f"basis_dim must be 1, 4, 9 or 16, got {self.basis_dim}")
        try:
            self.prune_rule()
        except PruneError as err:
            raise ConfigError(f"prune settings: {err}") from None
        return self

    @property
    def rays_per_step(self) -> int:
        return self.batch_size

    def background_for(self, scene) -> tuple[float, float, float]:
        """The background colour the renderer composites on: config, else scene, else black."""
        if self.background is not None:
            return tuple(float(c) for c in self.background)
        return tuple(scene.background) if scene.background is not None else (0.0, 0.0, 0.0)

    def render_options(self, scene, purpose: str = "view") -> RenderOptions:
        """Ray marching for ``purpose``: "train" (gradients through every sample above
        stop_thresh) or "view" (looking at a fitted grid: stop at render_stop_thresh, default
        1e-3, where the light behind changes a pixel by at most a quarter of an 8-bit level)."""
        if purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
        stop = self.stop_thresh if purpose == "train" else self.render_stop_thresh
        return RenderOptions(step=self.step_size, sigma_thresh=self.sigma_thresh, stop_thresh=stop,
                             background=self.background_for(scene))

    def prune_rule(self) -> PruneRule:
        """The rule the fit prunes by at each upsample; PruneRule checks it (see plenox.training.pruning)."""
        return PruneRule(self.prune, self.weight_thresh, self.density_thresh, self.prune_dilate, self.prune_ray_stride)
