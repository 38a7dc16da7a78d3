"""``plenox view RUN`` and ``plenox fit ... --view``: the live web viewer (plenox.viewer)."""

from pathlib import Path

from tqdm import tqdm

from plenox.backend import resolve_device
from plenox.viewer.ports import check_port
from plenox.viewer.server import TrainingView, Viewer
from plenox.workflow import fit_run, open_run


def view_run(path: str, host: str = "127.0.0.1", port: int = 8080, device: str = "cpu", announce=print) -> None:
    """Serve a page rendering the run at ``path`` from each browser's camera until Ctrl-C.
    ``announce(url)`` is called once it is up; ViewerError when the port is taken."""
    check_port(host, port)   # before loading the scene, so a busy port fails at once
    run, config, scene, renderer = open_run(path, resolve_device(device))
    viewer = Viewer(scene, lambda: renderer, host, port, save_dir=run.path, nerf=config.model == "nerf")
    announce(viewer.url)
    try:
        viewer.serve()
    except KeyboardInterrupt:
        pass
    finally:
        viewer.stop()


def fit_with_view(source: str | None, out: str, host: str = "127.0.0.1", port: int = 8080, report=None,
                  announce=None, **fit_options) -> dict:
    """``fit_run(source, out, **fit_options)`` with the viewer open on the live model; once training
    and evaluation end, ``report(metrics)`` is called and the page keeps showing the final model
    until Ctrl-C. Returns the metrics (or fit_run's {"interrupted": ...} after Ctrl-C in training)."""
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
