"""Fit configurations: named JSON files under ``configs/`` plus command-line overrides.

A config is a flat JSON object; every key must be a field of :class:`FitConfig`. Overrides
are ``key=value`` strings whose value is parsed as JSON (falling back to a plain string) and
must match the type of the field they replace.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from plenox.configs import config_names, config_path


class ConfigError(ValueError):
    """A config name, file or override is invalid (the message says which and why)."""


@dataclass
class FitConfig:
    """Hyperparameters of a Plenoxels fit (svox2's, scaled to CPU budgets; see docs/fit.md)."""

    model: str = "plenoxels"
    resolutions: list = field(default_factory=lambda: [[64, 64, 64], [128, 128, 128]])
    upsample_steps: list = field(default_factory=lambda: [1000])   # step at which each upsample happens
    steps: int = 4000
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
    background: list | None = None            # RGB; None = the scene's background (black if none)
    downscale: int = 1
    log_every: int = 50
    checkpoint_every_s: float = 120.0
    eval_split: str = "test"
    eval_views: int = 0                       # 0 = all views of the split
    eval_every_s: float = 0.0                 # >0: PSNR on a few held-out views every so many training seconds
    eval_every_views: int = 10                # how many views that periodic evaluation renders
    seed: int = 0

    def check(self) -> "FitConfig":
        """Validate value ranges; return self."""
        if len(self.resolutions) != len(self.upsample_steps) + 1:
            raise ConfigError(f"resolutions has {len(self.resolutions)} entries: upsample_steps needs "
                              f"{len(self.resolutions) - 1}, got {len(self.upsample_steps)}")
        if any(len(r) != 3 or min(r) < 2 for r in self.resolutions):
            raise ConfigError(f"resolutions must be lists of 3 integers >= 2, got {self.resolutions}")
        if self.prune not in ("weight", "density", "none"):
            raise ConfigError(f"prune must be weight, density or none, got {self.prune!r}")
        for name in ("steps", "batch_size", "lr_decay_steps", "log_every", "prune_ray_stride", "downscale"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.basis_dim not in (1, 4, 9, 16):
            raise ConfigError(f"basis_dim must be 1, 4, 9 or 16, got {self.basis_dim}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


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


def _apply(cfg: FitConfig, values: dict, source: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(FitConfig)}
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


def load_config(name_or_file: str = "synthetic", overrides=()) -> FitConfig:
    """A FitConfig from a shipped config name or a JSON file, then ``key=value`` overrides."""
    path = Path(name_or_file)
    if not path.suffix:
        path = config_path(name_or_file)
        if not path.exists():
            raise ConfigError(f"unknown config {name_or_file!r}: choose one of {', '.join(config_names())} "
                              "or give a .json file")
    cfg = FitConfig()
    _apply(cfg, _read_json(path), str(path))
    for text in overrides:
        key, value = parse_override(text)
        _apply(cfg, {key: value}, f"override {text!r}")
    return cfg.check()
