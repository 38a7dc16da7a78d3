"""Fit configurations in general: the settings every model shares, reading, overrides.

A config is a flat JSON object (a named file under ``configs/`` or the user's own). Its
``model`` key ("plenoxels" when absent) picks the config class, which the registry of model
kinds owns (``plenox.runs.registry``): every other key must be a field of that class, and
every class extends :class:`RunSettings` (step budget, logging, checkpoints, evaluation).
Overrides are ``key=value`` strings whose value is parsed as JSON (falling back to a plain
string) and must match the type of the field they replace.
"""

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from plenox.configs import config_names, config_path
from plenox.errors import ConfigError, OptionError
from plenox.options import require_number



# Ranges for check_ranges: (low, high, low excluded, whole number).
POSITIVE = (0.0, None, True, False)
NONNEG = (0.0, None, False, False)
INT_POSITIVE = (1, None, False, True)
INT_NONNEG = (0, None, False, True)
FRACTION = (0.0, 1.0, True, False)            # (0, 1]
PROBABILITY = (0.0, 1.0, False, False)        # [0, 1]
ANY = (None, None, False, False)              # any finite number


def check_ranges(cfg, ranges: dict) -> None:
    """ConfigError naming the key unless each field of ``cfg`` named in ``ranges`` is a finite
    number in its range (low, high, low excluded, whole number)."""
    for name, (low, high, low_open, integer) in ranges.items():
        try:
            require_number(name, getattr(cfg, name), low, high, low_open, integer)
        except OptionError as err:
            raise ConfigError(f"config: {err}") from None


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
        check_ranges(self, {"steps": INT_POSITIVE, "log_every": INT_POSITIVE, "downscale": INT_NONNEG,
                            "eval_every_views": INT_POSITIVE, "eval_every_stride": INT_NONNEG,
                            "eval_views": INT_NONNEG, "seed": INT_NONNEG, "log_every_s": POSITIVE,
                            "checkpoint_every_s": POSITIVE, "eval_every_s": NONNEG, "eval_first_s": NONNEG})
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # Overriding the key on the left also sets these fields, unless they are overridden too
    # (e.g. a Plenoxels fit's explicit resolutions switch off the resolutions chosen from the images).
    IMPLIED_BY_OVERRIDE: ClassVar[dict] = {}

    def for_scene(self, scene, minutes: float | None = None) -> "RunSettings":
        """The config with anything left to the scene (and the ``minutes`` of a time budget)
        filled in (nothing, unless a subclass says so)."""
        return self

    def schedule_summary(self, minutes: float | None = None) -> str | None:
        """One line on the schedule a ``for_scene`` config will train with, for the command to
        print at the start; None when there is nothing to say."""
        return None

    @property
    def rays_per_step(self) -> int:
        """Training rays in one batch."""
        raise NotImplementedError


def read_config_file(path: Path) -> dict:
    """The JSON object of a config file; ConfigError naming the file otherwise."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: malformed JSON ({err.msg} at line {err.lineno})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a JSON config (not UTF-8 text)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a JSON object")
    return data


def apply_values(cfg: RunSettings, values: dict, source: str) -> None:
    """Set ``cfg``'s fields from ``values``; ConfigError naming ``source`` for an unknown key or a wrong type."""
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


def config_file(name_or_file: str) -> Path:
    """The file of a shipped config name, or the given JSON file's path."""
    path = Path(name_or_file)
    if not path.suffix:
        path = config_path(name_or_file)
        if not path.exists():
            raise ConfigError(f"unknown config {name_or_file!r}: choose one of {', '.join(config_names())} "
                              "or give a .json file")
    return path


def build_config(cls: type, values: dict, source: str, overrides=()) -> RunSettings:
    """A checked ``cls`` config from ``values`` (read from ``source``), then ``key=value`` overrides
    (which cannot change the model)."""
    cfg = cls()
    apply_values(cfg, values, source)
    parsed = [(text, *parse_override(text)) for text in overrides]
    given = {key for _, key, _ in parsed}
    for text, key, value in parsed:
        if key == "model":
            raise ConfigError(f"override {text!r}: the model is chosen with --model or the config, not overridden")
        apply_values(cfg, {key: value}, f"override {text!r}")
        implied = {k: v for k, v in cls.IMPLIED_BY_OVERRIDE.get(key, {}).items() if k not in given}
        apply_values(cfg, implied, f"override {text!r}")
    return cfg.check()
