"""``plenox view RUN``: the live web viewer of a fitted run (plenox.viewer)."""

from plenox.viewer.ports import check_port
from plenox.viewer.server import Viewer
from plenox.runs.loading import open_run


def view_run(path: str, host: str = "127.0.0.1", port: int = 8080, device: str = "auto", announce=print) -> None:
    """Serve a page rendering the run at ``path`` from each browser's camera until Ctrl-C.
    ``announce(url)`` is called once it is up; ViewerError when the port is taken."""
    check_port(host, port)   # before loading the scene, so a busy port fails at once
    run, config, scene, renderer = open_run(path, device)
    viewer = Viewer(scene, lambda: renderer, host, port, save_dir=run.path, nerf=config.model == "nerf")
    announce(viewer.url)
    try:
        viewer.serve()
    except KeyboardInterrupt:
        pass
    finally:
        viewer.stop()
