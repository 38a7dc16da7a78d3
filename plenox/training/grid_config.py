"""The Plenoxels fit's settings (svox2's hyper-parameters scaled to CPU budgets) and the one
place that turns them into ray-marching options.

``FitConfig.render_options(scene, purpose)`` is the single factory of render options: the
trainer marches with purpose "train" (stop at ``stop_thresh``); fit's final evaluation,
eval, render, prune, export, compare and the held-out curve look with purpose "view" (stop
at ``render_stop_thresh``). The options are written into every metrics file's protocol.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

from plenox.config import (ANY, FRACTION, INT_NONNEG, INT_POSITIVE, NONNEG, POSITIVE, RunSettings,
                           check_ranges)
from plenox.errors import ConfigError, PruneError
from plenox.models.grid_autograd import RenderOptions
from plenox.training.grid_schedule import describe, plan_resolutions
from plenox.training.pruning import PruneRule

PURPOSES = ("train", "view")
FOREGROUNDS = ("scene", "cameras")


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class FitConfig(RunSettings):
    """Hyperparameters of a Plenoxels fit (svox2's, scaled to CPU budgets; see docs/fit.md)."""

    resolutions: list = field(default_factory=lambda: [[64, 64, 64], [128, 128, 128]])
    upsample_steps: list = field(default_factory=lambda: [1000])   # step at which each upsample happens
    # With grid_from_images, resolutions only give the schedule's shape: for_scene scales them so
    # the last level holds voxels_per_pixel voxels per pixel footprint of the training images,
    # capped by the time budget (plenox.training.grid_schedule); explicit resolutions= turn it off.
    grid_from_images: bool = False
    voxels_per_pixel: float = 0.75
    grid_plan: str = ""                       # filled by for_scene: where the last level comes from
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
    # Unbounded scenes: svox2's background model behind the grid (configs/unbounded.json; docs/fit.md).
    background_layers: int = 0                # multi-sphere image layers; 0 = no background model
    background_reso: int = 64                 # its map is 2R x R pixels
    init_bg_density: float = 0.1              # svox2's init_sigma_bg
    lr_bg_density: float = 3.0                # svox2: 3 -> 3e-3 over 250k steps
    lr_bg_density_final: float = 1.0
    lr_bg_color: float = 0.1                  # svox2: 0.1 -> 5e-6 over 250k steps
    lr_bg_color_final: float = 0.01
    lambda_tv_bg_density: float = 5e-3        # svox2's custom.json
    lambda_tv_bg_color: float = 5e-3
    tv_bg_fraction: float = 0.01
    fg_begin_step: int = 0                    # svox2's lr_fg_begin_step: the grid starts empty and learns from here
    foreground: str = "scene"                 # grid box: "scene" (the loader's) or "cameras" (holds the cameras)
    camera_margin: float = 1.1                # "cameras": the box's half-size over the farthest camera's distance

    IMPLIED_BY_OVERRIDE: ClassVar[dict] = {"resolutions": {"grid_from_images": False}}

    def check(self) -> "FitConfig":
        """Validate value ranges; return self."""
        super().check()
        if len(self.resolutions) != len(self.upsample_steps) + 1:
            raise ConfigError(f"resolutions has {len(self.resolutions)} entries: upsample_steps needs "
                              f"{len(self.resolutions) - 1}, got {len(self.upsample_steps)}")
        if not all(isinstance(r, list) and len(r) == 3 and all(_whole(v) and v >= 2 for v in r)
                   for r in self.resolutions):
            raise ConfigError(f"resolutions must be lists of 3 integers >= 2, got {self.resolutions}")
        steps = self.upsample_steps
        if not all(_whole(s) and s >= 0 for s in steps) or steps != sorted(steps):
            raise ConfigError(f"upsample_steps must be increasing whole numbers >= 0, got {steps}")
        if self.background is not None and not (
                isinstance(self.background, list) and len(self.background) == 3
                and all(isinstance(c, (int, float)) and not isinstance(c, bool) and 0 <= c <= 1
                        for c in self.background)):
            raise ConfigError(f"background must be null or 3 numbers in [0, 1], got {self.background!r}")
        check_ranges(self, {
            "batch_size": INT_POSITIVE, "lr_decay_steps": INT_POSITIVE, "prune_ray_stride": INT_POSITIVE,
            "lr_density_delay_steps": INT_NONNEG, "prune_dilate": INT_NONNEG,
            "lr_density": POSITIVE, "lr_density_final": POSITIVE, "lr_sh": POSITIVE, "lr_sh_final": POSITIVE,
            "lr_density_delay_mult": FRACTION, "rms_beta": (0.0, 1.0, False, False), "rms_eps": POSITIVE,
            "lambda_tv": NONNEG, "lambda_tv_sh": NONNEG, "lambda_sparsity": NONNEG, "tv_fraction": FRACTION,
            "step_size": POSITIVE, "sigma_thresh": NONNEG, "stop_thresh": (0.0, 1.0, False, False),
            "render_stop_thresh": (0.0, 1.0, False, False), "init_density": ANY, "init_sh": ANY,
            "weight_thresh": POSITIVE, "density_thresh": ANY, "voxels_per_pixel": POSITIVE})
        if self.stop_thresh >= 1 or self.render_stop_thresh >= 1:
            raise ConfigError("config: stop_thresh and render_stop_thresh must be < 1")
        if self.basis_dim not in (1, 4, 9, 16):
            raise ConfigError(f"basis_dim must be 1, 4, 9 or 16, got {self.basis_dim}")
        if self.background_layers and (self.background_layers < 2 or self.background_reso < 2):
            raise ConfigError(f"background_layers must be 0 (none) or >= 2 with background_reso >= 2, got "
                              f"{self.background_layers} and {self.background_reso}")
        if self.foreground not in FOREGROUNDS:
            raise ConfigError(f"foreground must be one of {', '.join(FOREGROUNDS)}, got {self.foreground!r}")
        if not self.camera_margin >= 1.0:
            raise ConfigError(f"camera_margin must be >= 1, got {self.camera_margin}")
        try:
            self.prune_rule()
        except PruneError as err:
            raise ConfigError(f"prune settings: {err}") from None
        return self

    @property
    def rays_per_step(self) -> int:
        return self.batch_size

    def for_scene(self, scene, minutes: float | None = None) -> "FitConfig":
        """With grid_from_images, a copy whose resolutions are planned for ``scene`` and a budget
        of ``minutes`` (plenox.training.grid_schedule), grid_from_images then off (the plan is
        written into the run's config, so a resumed run keeps it) and grid_plan saying why;
        otherwise the config itself."""
        if not self.grid_from_images:
            return self
        _, radius = self.foreground_box(scene)
        levels, why = plan_resolutions(scene, radius, self.resolutions, self.voxels_per_pixel, minutes)
        return dataclasses.replace(self, resolutions=levels, grid_from_images=False, grid_plan=why)

    def schedule_summary(self, minutes: float | None = None) -> str:
        """"grid 64x64x64 from the start, 128x128x128 at 2.5 min, ... (why)"."""
        line = "grid " + describe(self.resolutions, self.upsample_steps, self.steps, minutes)
        return line + (f" ({self.grid_plan})" if self.grid_plan else "")

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

    def foreground_box(self, scene) -> tuple[tuple, tuple]:
        """(center, radius) of the grid's world box: the scene's, or with ``foreground`` "cameras"
        a cube about the scene's centre that holds every training camera (camera_margin times
        the farthest one's distance; never smaller than the scene's box). svox2 fits captures
        this way (cameras inside its unit sphere, the background model outside it), so the
        floor and walls near the cameras are in the grid rather than left out of both."""
        center, radius = tuple(float(c) for c in scene.center), tuple(float(r) for r in scene.radius)
        if self.foreground == "scene" or scene.ndc:
            return center, radius
        positions = scene.splits["train"].cameras.c2w[:, :3, 3].double()
        reach = float((positions - positions.new_tensor(center)).norm(dim=1).max()) * self.camera_margin
        half = max(reach, *radius)
        return center, (half, half, half)

    def model_record(self, scene) -> dict:
        """What the fit log and ``plenox info`` say of the model chosen: box and background."""
        center, radius = self.foreground_box(scene)
        background = None
        if self.background_layers:
            background = {"layers": self.background_layers, "map": [2 * self.background_reso, self.background_reso],
                          "outside": "the box's inscribed sphere, to infinity"}
        return {"foreground": self.foreground if not scene.ndc else "ndc", "box_center": list(center),
                "box_radius": list(radius), "background_model": background, "resolutions": self.resolutions,
                "grid_plan": self.grid_plan or "the config's resolutions"}

    def prune_rule(self) -> PruneRule:
        """The rule the fit prunes by at each upsample; PruneRule checks it (see plenox.training.pruning)."""
        return PruneRule(self.prune, self.weight_thresh, self.density_thresh, self.prune_dilate, self.prune_ray_stride)
