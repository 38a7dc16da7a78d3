"""The viewer in a real browser: headless Chromium opens the page, the test points the page's camera
at a test view through viser's server API, and the frame on screen must match a direct render
from that camera (and not be blank)."""

import threading
import time

import numpy as np
import pytest
import torch
from browser import Chromium, find_chromium, free_port

from plenox.data.camera_paths import pinhole_cameras
from plenox.metrics import psnr
from plenox.viewer.cameras import vertical_fov
from plenox.viewer.panel import move_camera
from plenox.viewer.server import Viewer
from plenox.runs.loading import open_run

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="chromium not found: the browser test needs Debian's chromium (.ci/run "
                                       "installs it; apt-get install chromium)")

# Calibration (tiny run, 476x600 canvas beside the panel): the matching view scores about 44 dB
# (JPEG and the browser's resampling), the same frame against the render from the camera turned
# upside down about 12 dB; 28 dB separates them with room on both sides.
MIN_PSNR = 28.0
NOTICE_ROWS = 160    # the page's "software WebGL" notice covers the canvas's top-left corner
GIZMO = 70           # the axes gizmo sits in the bottom-left corner


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def point_camera(view, target, fov, timeout: float) -> None:
    """Move the page's camera to ``target`` until the browser echoes it back. The page may still be
    applying its initial camera when the first move arrives (seen on a loaded machine), so the move
    is sent again while the echo differs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        move_camera(view.client, target, fov)
        echo = time.monotonic() + 3.0
        while time.monotonic() < min(echo, deadline):
            if np.allclose(view.camera[0].c2w, target, atol=1e-4):
                return
            time.sleep(0.05)
    raise AssertionError(f"the page never took the test camera; it shows {view.camera[0].c2w.tolist()}")


def render_at(renderer, scene, c2w, fov, width, height) -> np.ndarray:
    cameras = pinhole_cameras(c2w[None], np.degrees(fov), width, height)
    return renderer.render_image(*scene.camera_rays(cameras, 0))["rgb"].clamp(0, 1).numpy()


def test_browser_frame_matches_direct_render(tiny_run):
    _, _, scene, renderer = open_run(str(tiny_run))
    viewer = Viewer(scene, lambda: renderer, port=free_port(), save_dir=tiny_run)
    threading.Thread(target=viewer.serve, daemon=True).start()
    browser = Chromium(800, 600)
    try:
        browser.open(viewer.url)
        wait_for(lambda: any(v.camera is not None for v in viewer.views.values()), 90, "the page to connect")
        view = next(iter(viewer.views.values()))
        viewer.panel.show_cameras.value = False          # no frustums drawn over the frame
        cams = scene.splits["test"].cameras
        target, fov = cams.c2w[1].double().numpy(), vertical_fov(cams)
        point_camera(view, target, fov, 90)
        wait_for(lambda: view.shown_still and view.shown[0] == view.camera_version, 90,
                 "a still frame of the test view")
        _, width, height = view.camera
        crop = (slice(NOTICE_ROWS, height - GIZMO), slice(GIZMO, width))
        direct = torch.from_numpy(render_at(renderer, scene, target, fov, width, height)[crop])

        # the page decodes and draws the frame in its own time: look until it is there (or 30 s)
        deadline = time.monotonic() + 30
        while True:
            canvas = browser.screenshot()[:height, :width].astype(np.float32) / 255
            score = psnr(torch.from_numpy(canvas[crop]), direct)
            if score > MIN_PSNR or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert np.allclose(view.camera[0].c2w, target, atol=1e-4), "the page's camera moved during the test"
    finally:
        browser.close()
        viewer.stop()
    flipped = target.copy()
    flipped[:3, :2] *= -1                                 # the same camera rolled by half a turn
    wrong = torch.from_numpy(render_at(renderer, scene, flipped, fov, width, height)[crop])
    wrong_score = psnr(torch.from_numpy(canvas[crop]), wrong)
    print(f"browser vs direct {score:.2f} dB; vs the upside-down camera {wrong_score:.2f} dB")
    assert canvas[crop].std() > 0.05, "the canvas is blank"
    assert score > MIN_PSNR > wrong_score
