"""Fit configurations: named JSON files under ``configs/`` plus command-line overrides.

A config is a flat JSON object. Its ``model`` key ("plenoxels" when absent) picks the
config class: :class:`FitConfig` for a Plenoxels grid, :class:`NerfFitConfig` for the MLP
NeRF; every other key must be a field of that class. Both share :class:`RunSettings` (step
budget, logging, checkpoints, evaluation). Overrides are ``key=value`` strings whose value
is parsed as JSON (falling back to a plain string) and must match the type of the field
they replace.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from plenox.configs import config_names, config_path
from plenox.nerf import NerfConfig


class ConfigError(ValueError):
    """A config name, file or override is invalid (the message says which and why)."""


@dataclass
class RunSettings:
    """What every model's fit shares: step budget, logging, checkpoints, evaluation (docs/fit.md)."""

    model: str = "plenoxels"
    steps: int = 4000
    downscale: int = 0                        # 0: captures take the pixel budget's factor, other scenes 1
    log_every: int = 50
    log_every_s: float = 60.0                 # also log after this many training seconds (slow models)
    checkpoint_every_s: float = 120.0
    eval_split: str = "test"
    eval_views: int = 0                       # 0 = all views of the split
    eval_every_s: float = 0.0                 # >0: PSNR on a few held-out views every so many training seconds
    eval_first_s: float = 0.0                 # >0: ... first at this time, then at doubling spacing up to eval_every_s
    eval_every_views: int = 10                # how many views that periodic evaluation renders
    eval_every_stride: int = 1                # ... using every k-th pixel per axis (0: about 24 pixels across)
    seed: int = 0

    def check(self) -> "RunSettings":
        """Validate the shared value ranges; return self."""
        for name in ("steps", "log_every", "eval_every_views"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.downscale < 0:
            raise ConfigError(f"downscale must be >= 0 (0: the pixel budget's choice), got {self.downscale}")
        if self.eval_every_stride < 0:
            raise ConfigError(f"eval_every_stride must be >= 0 (0: automatic), got {self.eval_every_stride}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def for_scene(self, scene) -> "RunSettings":
        """The config with anything left to the scene filled in (nothing, unless a subclass says so)."""
        return self

    @property
    def rays_per_step(self) -> int:
        """Training rays in one batch."""
        raise NotImplementedError


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
        if self.prune not in ("weight", "density", "none"):
            raise ConfigError(f"prune must be weight, density or none, got {self.prune!r}")
        for name in ("batch_size", "lr_decay_steps", "prune_ray_stride"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.basis_dim not in (1, 4, 9, 16):
            raise ConfigError(f"basis_dim must be 1, 4, 9 or 16, got {self.basis_dim}")
        return self

    @property
    def rays_per_step(self) -> int:
        return self.batch_size


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

    def for_scene(self, scene) -> "NerfFitConfig":
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


CONFIG_CLASSES = {"plenoxels": FitConfig, "nerf": NerfFitConfig}


def config_class(model: str, source: str = "config") -> type:
    """The config class of a model name; ConfigError naming ``source`` for an unknown one."""
    if model not in CONFIG_CLASSES:
        raise ConfigError(f"{source}: unknown model {model!r} (choose from {', '.join(CONFIG_CLASSES)})")
    return CONFIG_CLASSES[model]


def config_from_dict(values: dict, source: str = "config"):
    """The config object a run's saved config.json describes (its ``model`` picks the class)."""
    cfg = config_class(values.get("model", "plenoxels"), source)()
    _apply(cfg, values, source)
    return cfg.check()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: malformed JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a JSON object")
    return data


def _apply(cfg: RunSettings, values: dict, source: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{source}: unknown config key {key!r}")
        current = getattr(cfg, key)
        if current is not None and value is not None and not _same_kind(current, value):
            raise ConfigError(f"{source}: {key} must be {type(current).__name__}, got {value!r}")
        setattr(cfg, key, float(value) if isinstance(current, float) else value)


def _same_kind(current, value) -> bool:
    if isinstance(current, bool) or isinstance(value, bool):
        return isinstance(current, bool) and isinstance(value, bool)
    if isinstance(current, (int, float)):
        return isinstance(value, (int, float)) and (isinstance(current, float) or isinstance(value, int))
    return isinstance(value, type(current))


def parse_override(text: str) -> tuple[str, object]:
    """'key=value' -> (key, value parsed as JSON, else the raw string)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip(), raw


def load_config(name_or_file: str = "synthetic", overrides=(), model: str | None = None) -> RunSettings:
    """The config of a shipped config name or a JSON file, then ``key=value`` overrides.

    The file's ``model`` key picks the class (FitConfig or NerfFitConfig); ``model``, when
    given, must agree with it. Overrides cannot change the model.
    """
    path = Path(name_or_file)
    if not path.suffix:
        path = config_path(name_or_file)
        if not path.exists():
            raise ConfigError(f"unknown config {name_or_file!r}: choose one of {', '.join(config_names())} "
                              "or give a .json file")
    values = _read_json(path)
    kind = values.get("model", "plenoxels")
    if model is not None and kind != model:
        raise ConfigError(f"{path}: is a {kind} config, not a {model} one")
    cfg = config_class(kind, str(path))()
    _apply(cfg, values, str(path))
    for text in overrides:
        key, value = parse_override(text)
        if key == "model":
            raise ConfigError(f"override {text!r}: the model is chosen with --model or the config, not overridden")
        _apply(cfg, {key: value}, f"override {text!r}")
    return cfg.check()
