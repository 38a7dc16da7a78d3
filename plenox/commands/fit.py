"""``plenox fit``: fit a model to a scene (or the built-in one) into a run folder and evaluate it."""

import math

from plenox.errors import ConfigError
from plenox.runs.fitting import fit_run


def fit(source: str | None, out: str, config: str | None = None, overrides=(), minutes: float | None = None,
        resume: bool = False, force: bool = False, device: str = "auto", progress: bool = True,
        model: str | None = None) -> dict:
    """Check the options, then ``plenox.runs.fitting.fit_run``; returns the final metrics."""
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        raise ConfigError(f"--minutes must be a positive number, got {minutes}")
    return fit_run(source, out, config, overrides, minutes, resume, force, device, progress, model)
