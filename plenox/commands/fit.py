"""``plenox fit``: fit a model to a scene (or the built-in one) into a run folder and evaluate it,
optionally with the live viewer open on the model as it learns (``--view``)."""

from pathlib import Path

from tqdm import tqdm

from plenox.options import require_number
from plenox.runs.fitting import fit_run
from plenox.viewer.server import TrainingView


def fit(source: str | None, out: str, config: str | None = None, overrides=(), minutes: float | None = None,
        resume: bool = False, force: bool = False, device: str = "auto", progress: bool = True,
        model: str | None = None) -> dict:
    """Check the options, then ``plenox.runs.fitting.fit_run``; returns the final metrics."""
    require_number("--minutes", minutes, 0, low_open=True)
    return fit_run(source, out, config, overrides, minutes, resume, force, device, progress, model)


def fit_with_view(source: str | None, out: str, host: str = "127.0.0.1", port: int = 8080, report=None,
                  announce=None, **fit_options) -> dict:
    """``fit`` with the viewer open on the live model; once training and evaluation end,
    ``report(metrics)`` is called and the page keeps showing the final model until Ctrl-C.
    Returns the metrics (or {"interrupted": ...} after Ctrl-C in training)."""
    require_number("--minutes", fit_options.get("minutes"), 0, low_open=True)
    hook = TrainingView(host, port, Path(out), announce or (lambda url: tqdm.write(f"viewer at {url}")))
    try:
        metrics = fit_run(source, out, on_step=hook, **fit_options)
        if metrics.get("interrupted") or hook.viewer is None:
            return metrics
        try:   # from here on Ctrl-C just closes the page
            if report is not None:
                report(metrics)
            viewer = hook.viewer
            viewer.budget = None                 # training is over: render as fast as the page asks
            viewer.panel.show_training_done(viewer.model_version)
            viewer.model_version += 1            # redraw resting views once more
            viewer.serve()
        except KeyboardInterrupt:
            pass
        return metrics
    finally:
        hook.stop()
