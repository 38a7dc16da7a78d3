"""Viewer speed on 2 cores: frames per second while the camera moves and the still frame, with a real
(headless Chromium) page connected; and what an open page costs ``fit --view``.

    python benchmarks/viewer.py runs/lego                                  # frames (a fitted lego_200 run)
    python benchmarks/viewer.py runs/lego --fit ../shared/data/lego_200 --steps 1500   # + training slowdown
    python benchmarks/viewer.py runs/lego --screenshot docs/images/viewer.png

Moving: the page's camera is driven round an orbit from Python (viser's server API) at 30 updates
per second for --seconds; the browser echoes each camera, the viewer renders what is due. Reported:
frames rendered per second, their mean size, and the still frame once the camera rests.
Training: the same fit (steps budget) with no viewer, and with --view's hook and a page whose
camera rests or keeps moving (a mouse drag, 10 moves per second, sent to the page from another
process), in turn; steps/s are wall-clock steps per second between the first and the last step.
"""

import argparse
import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import Chromium, free_port  # noqa: E402

from plenox.viewer.panel import move_camera  # noqa: E402
from plenox.viewer.server import TrainingView, Viewer  # noqa: E402
from plenox.runs.fitting import fit_run
from plenox.runs.loading import open_run  # noqa: E402

NOTICE_CLOSE = (288, 81)   # the close button of the page's "software WebGL" notice (top left, fixed size)


def orbit_pose(scene, angle: float, distance: float = 1.0) -> np.ndarray:
    """OpenGL c2w on the first training camera's circle about the scene's vertical axis, at ``angle``,
    ``distance`` times as far from the centre, looking at it."""
    cams = scene.splits["train"].cameras
    up = cams.c2w[:, :3, 1].double().sum(0).numpy()
    up /= np.linalg.norm(up)
    center = np.asarray(scene.center, dtype=np.float64)
    start = distance * (cams.c2w[0, :3, 3].double().numpy() - center)
    axial = (start @ up) * up
    radial = start - axial
    side = np.cross(up, radial)
    eye = center + axial + radial * math.cos(angle) + side * math.sin(angle)
    back = (eye - center) / np.linalg.norm(eye - center)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    c2w = np.eye(4)
    c2w[:3, :4] = np.stack([right, np.cross(back, right), back, eye], axis=1)
    return c2w


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not respond")
        time.sleep(0.05)


class Mover(threading.Thread):
    """Drives a page's camera round the orbit at ``rate`` updates per second until stopped."""

    def __init__(self, viewer, scene, rate: float = 30.0, turn_seconds: float = 8.0):
        super().__init__(daemon=True)
        self.viewer, self.scene, self.rate, self.turn = viewer, scene, rate, turn_seconds
        self.running = True

    def run(self) -> None:
        start = time.perf_counter()
        while self.running:
            for view in list(self.viewer.views.values()):
                angle = 2 * math.pi * (time.perf_counter() - start) / self.turn
                move_camera(view.client, orbit_pose(self.scene, angle))
            time.sleep(1.0 / self.rate)


def measure_frames(run: str, seconds: float, screenshot: str | None, hide_cameras: bool = False) -> dict:
    _, _, scene, renderer = open_run(run)
    viewer = Viewer(scene, lambda: renderer, port=free_port())
    threading.Thread(target=viewer.serve, daemon=True).start()
    browser = Chromium(1000, 640)
    try:
        browser.open(viewer.url)
        wait_for(lambda: any(v.camera is not None for v in viewer.views.values()), 60)
        view = next(iter(viewer.views.values()))
        viewer.panel.show_cameras.value = not hide_cameras
        sizes = []
        original = viewer.render_view

        attempts = []

        def recording(v, still):   # keep every shown frame's size, time and kind
            start = time.perf_counter()
            shown = original(v, still)
            attempts.append((start, time.perf_counter(), still, shown))
            if shown:
                sizes.append(viewer.last_frame)
            return shown

        viewer.render_view = recording
        mover = Mover(viewer, scene)
        mover.start()
        time.sleep(2.0)              # settle the adaptive size
        sizes.clear()
        start, browser_cpu = time.perf_counter(), browser.cpu_seconds()
        time.sleep(seconds)
        browser_cpu = browser.cpu_seconds() - browser_cpu
        moving = [f for f in sizes if not f[3]]
        elapsed = time.perf_counter() - start
        busy = sum(b - a for a, b, _, _ in attempts if a >= start)
        wasted = sum(b - a for a, b, _, shown in attempts if a >= start and not shown)
        print(f"rendering {busy / elapsed:.0%} of the time, {wasted / elapsed:.0%} on interrupted stills; "
              f"{sum(1 for a in attempts if a[0] >= start and a[2])} still attempts", flush=True)
        mover.running = False
        mover.join()
        time.sleep(0.5)              # the last camera echoes arrive
        wait_for(lambda: view.shown_still and view.shown[0] == view.camera_version, 60)
        still = viewer.last_frame
        if screenshot:                # from farther out, so the training cameras show round the model
            move_camera(view.client, orbit_pose(scene, 0.6, 1.6))
            time.sleep(0.5)
            wait_for(lambda: view.shown_still and view.shown[0] == view.camera_version, 60)
            browser.send("Input.dispatchMouseEvent", type="mousePressed", x=NOTICE_CLOSE[0], y=NOTICE_CLOSE[1],
                         button="left", clickCount=1)
            browser.send("Input.dispatchMouseEvent", type="mouseReleased", x=NOTICE_CLOSE[0], y=NOTICE_CLOSE[1],
                         button="left", clickCount=1)
            time.sleep(1.0)
            import imageio.v3 as iio
            iio.imwrite(screenshot, browser.screenshot())
    finally:
        browser.close()
        viewer.stop()
    long_sides = [max(w, h) for w, h, _, _ in moving]
    return {"moving_fps": len(moving) / elapsed, "moving_frames": len(moving), "render_share": busy / elapsed,
            "browser_cores": browser_cpu / elapsed,
            "moving_size_mean": [float(np.mean([f[0] for f in moving])), float(np.mean([f[1] for f in moving]))],
            "moving_long_side_min_median": [int(min(long_sides)), float(np.median(long_sides))],
            "moving_render_ms_median": 1000 * float(np.median([f[2] for f in moving])),
            "still_size": list(still[:2]), "still_render_s": still[2], "still_fps": 1.0 / still[2]}


def start_dragging(browser: Chromium, width: int, height: int, rate: float) -> subprocess.Popen:
    """A process that drags the mouse across ``browser``'s page (``browser.drag``) until killed."""
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    code = (f"import sys; sys.path.insert(0, {tests!r}); from browser import drag; "
            f"drag({browser.page_ws!r}, {width}, {height}, {rate})")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure_training(data: str, out: Path, steps: int, page: str | None, hide_cameras: bool = False) -> dict:
    """Wall-clock steps/s of a ``steps`` fit: without the viewer (``page`` None), or with --view's
    hook and a page whose camera rests (``page`` "resting") or keeps moving ("moving": the mouse
    drags it round, 10 moves per second, from a process of its own, as a user's hand would), its
    training cameras hidden or not; the CPU cores the browser used meanwhile and the camera
    updates the viewer received."""
    times = []
    browser, mover = None, None
    with_page = page is not None

    def announce(url):
        nonlocal browser
        browser = Chromium(800, 600)
        browser.open(url)

    view_hook = TrainingView("127.0.0.1", free_port(), out, announce=announce) if with_page else None
    cpu = [0.0, 0.0]   # the browser's CPU seconds at the first step and at the end
    updates = [0]      # camera updates the viewer has received from the page

    def hook(loop, mse, seconds):
        nonlocal mover
        times.append(time.perf_counter())
        if view_hook is not None:
            view_hook(loop, mse, seconds)
            if hide_cameras and view_hook.viewer.views and view_hook.viewer.panel.show_cameras.value:
                view_hook.viewer.panel.show_cameras.value = False
            if page == "moving" and mover is None and view_hook.viewer.views:
                mover = start_dragging(browser, 800, 600, rate=10)
            if len(times) == 1:
                cpu[0] = browser.cpu_seconds() if browser is not None else 0.0
            updates[0] = sum(v.camera_version for v in view_hook.viewer.views.values())

    overrides = [f"steps={steps}", f"lr_decay_steps={steps}", f"upsample_steps=[{steps // 4},{steps * 11 // 20}]",
                 "eval_views=1"]
    try:
        fit_run(data, str(out), "synthetic", overrides, progress=False, force=True, on_step=hook)
        cpu[1] = browser.cpu_seconds() if browser is not None else 0.0
    finally:
        if mover is not None:
            mover.kill()
            mover.wait()
        if browser is not None:
            browser.close()
        if view_hook is not None:
            view_hook.stop()
    frames = view_hook.viewer.frames_rendered if view_hook else 0
    span = times[-1] - times[0]
    return {"steps": len(times), "steps_per_s": (len(times) - 1) / span, "frames": frames,
            "camera_updates": updates[0], "browser_cores": (cpu[1] - cpu[0]) / span}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a fitted run folder (lego_200)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the camera moves")
    parser.add_argument("--screenshot", default=None, help="save the page at rest as this PNG")
    parser.add_argument("--hide-cameras", action="store_true", help="hide the training-camera frustums")
    parser.add_argument("--fit", default=None, metavar="SCENE", help="also measure fit --view's cost on SCENE")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the three training runs (no viewer, resting page, moving page)")
    parser.add_argument("--out", default="/tmp/plenox_viewer_bench")
    args = parser.parse_args()
    results = {"frames": measure_frames(args.run, args.seconds, args.screenshot,
                                                 args.hide_cameras)} if args.seconds > 0 else {}
    print(json.dumps(results.get("frames"), indent=1), flush=True)
    if args.fit:
        pairs = []
        for _ in range(args.repeat):
            runs = {}
            for page in (None, "resting", "moving"):
                runs[page or "no_view"] = measure_training(args.fit, Path(args.out) / (page or "no_view"),
                                                           args.steps, page, args.hide_cameras)
                print(page or "no viewer", runs[page or "no_view"], flush=True)
            for page in ("resting", "moving"):
                runs[f"slowdown_{page}"] = 1 - runs[page]["steps_per_s"] / runs["no_view"]["steps_per_s"]
                print(f"training slowdown with a {page} page: {100 * runs[f'slowdown_{page}']:.1f}%", flush=True)
            pairs.append(runs)
        results["training"] = pairs
    print(json.dumps(results))


if __name__ == "__main__":
    main()
