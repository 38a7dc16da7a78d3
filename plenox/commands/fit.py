"""``plenox fit``: fit a model to a scene (or the built-in one) into a run folder and evaluate it."""

from plenox.options import require_number
from plenox.runs.fitting import fit_run


def fit(source: str | None, out: str, config: str | None = None, overrides=(), minutes: float | None = None,
        resume: bool = False, force: bool = False, device: str = "auto", progress: bool = True,
        model: str | None = None) -> dict:
    """Check the options, then ``plenox.runs.fitting.fit_run``; returns the final metrics."""
    require_number("--minutes", minutes, 0, low_open=True)
    return fit_run(source, out, config, overrides, minutes, resume, force, device, progress, model)
