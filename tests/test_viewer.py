"""The viewer without a browser: camera conversion, frames, scheduling, the training hook, and the
``plenox view`` command's binding, busy-port refusal and Ctrl-C."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pytest
from browser import free_port
from conftest import TINY_FIT

from plenox.cli import main
from plenox.data.camera_paths import path_cameras, read_camera_path
from plenox.viewer.cameras import ViewCamera, c2w_from_viser, frame_size, vertical_fov, viser_from_c2w
from plenox.viewer.frames import PREVIEW_STEP, PREVIEW_STOP, FrameRenderer, Look, grid_box, preview
from plenox.viewer.server import ClientView, RenderBudget, TrainingView, Viewer
from plenox.runs.fitting import fit_run
from plenox.runs.loading import open_run


def random_c2w(rng) -> np.ndarray:
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    c2w = np.eye(4)
    c2w[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                   [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                   [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]
    c2w[:3, 3] = rng.normal(size=3)
    return c2w


def test_viser_camera_conversion():
    """viser's camera frame is OpenCV's (z forward, y down): a point ahead of the OpenGL camera
    (camera z < 0, y > 0 above the centre) is at viser camera z > 0, y < 0; the round trip is exact."""
    rng = np.random.default_rng(1)
    for _ in range(20):
        c2w = random_c2w(rng)
        wxyz, position = viser_from_c2w(c2w)
        assert np.allclose(c2w_from_viser(wxyz, position), c2w, atol=1e-9)
        ahead_and_up = c2w[:3, :3] @ np.array([0.0, 0.3, -2.0]) + c2w[:3, 3]
        # viser's own rotation: P_world = R p_camera + t
        r = c2w_from_viser(wxyz, position)[:3, :3] @ np.diag([1.0, -1.0, -1.0])
        p_cam = r.T @ (ahead_and_up - position)
        assert p_cam[2] == pytest.approx(2.0) and p_cam[1] == pytest.approx(-0.3)


def test_frame_size_and_budget():
    assert frame_size(4 / 3, 256) == (256, 192) and frame_size(0.5, 256) == (128, 256)
    budget = RenderBudget(0.2, burst=0.1)
    now = time.perf_counter()
    assert budget.allows(now)
    budget.spend(0.3)                          # a long frame: in debt for 1 s of wall time at 20%
    assert not budget.allows(now + 0.5) and budget.allows(now + 1.6)


@pytest.fixture(scope="module")
def tiny(tiny_run):
    return open_run(str(tiny_run))


def test_frames_match_direct_render_and_clip(tiny):
    _, _, scene, renderer = tiny
    cams = scene.splits["test"].cameras
    camera = ViewCamera(cams.c2w[0].double().numpy(), vertical_fov(cams), cams.width / cams.height)
    frames = FrameRenderer(scene)
    image = frames.render(renderer, camera, cams.width, cams.height, Look(), chunk=1000)   # several chunks
    direct = renderer.render_image(*scene.camera_rays(cams, 0))["rgb"]
    assert np.abs(image.astype(int) - (direct.numpy() * 255 + 0.5).astype(int)).max() <= 1
    black = frames.render(renderer, camera, cams.width, cams.height, Look(background=(0.0, 0.0, 0.0)))
    assert black.mean() < image.mean()                     # the background shows where the model is clear
    low, high = grid_box(renderer)
    empty = frames.render(renderer, camera, cams.width, cams.height, Look(clip=(tuple(low), tuple(low + 1e-3))))
    assert (empty == 255).all()                            # nothing inside the box: white background only
    half = frames.render(renderer, camera, cams.width, cams.height,
                         Look(clip=(tuple(low), tuple((low + high) / 2 + np.array([0, 0, high[2]])))))
    assert 0 < np.abs(half.astype(int) - image.astype(int)).mean() and not (half == 255).all()
    for mode in ("depth", "opacity"):
        shown = frames.render(renderer, camera, cams.width, cams.height, Look(mode=mode))
        assert shown.shape == image.shape and shown.std() > 5
    assert frames.render(renderer, camera, 32, 32, Look(), interrupted=lambda: True) is None
    # Moving frames march the preview: twice the step, stopping at transmittance PREVIEW_STOP.
    coarse = preview(renderer)
    assert coarse.options.step == PREVIEW_STEP * renderer.options.step and coarse.options.stop_thresh == PREVIEW_STOP
    moving = frames.render(renderer, camera, cams.width, cams.height, Look(), moving=True)
    direct = coarse.render_image(*scene.camera_rays(cams, 0))["rgb"]
    assert np.abs(moving.astype(int) - (direct.numpy() * 255 + 0.5).astype(int)).max() <= 1
    assert 0 < np.abs(moving.astype(int) - image.astype(int)).mean() < 8   # a little coarser, the same picture


class FakeClient:
    """Stands in for a browser: records the frames the viewer sends."""

    def __init__(self):
        self.client_id = 0
        self.sent = []
        self.scene = SimpleNamespace(set_background_image=lambda image, **_: self.sent.append(image))


def test_progressive_frames(tiny):
    _, _, scene, renderer = tiny
    viewer = Viewer(scene, lambda: renderer, port=free_port())
    try:
        client = FakeClient()
        view = viewer.views[0] = ClientView(client)
        cams = scene.splits["test"].cameras
        view.camera = (ViewCamera(cams.c2w[0].double().numpy(), vertical_fov(cams), 4 / 3), 400, 300)
        view.camera_version, view.moved_at = 1, time.perf_counter()
        assert viewer.poll() and client.sent[-1].shape[1] < 400      # moving: a small frame first
        view.moved_at = time.perf_counter()                           # (however long that frame took)
        assert not viewer.poll()                                      # same camera, not resting: nothing
        time.sleep(0.25)
        assert viewer.poll() and client.sent[-1].shape == (300, 400, 3)   # resting: the canvas size
        assert viewer.moving_side(4 / 3, 400) >= 48 and viewer.rays_per_s > 0
    finally:
        viewer.stop()


def test_training_hook_renders_between_steps(tmp_path):
    """fit --view's hook opens the page at the first step and renders the live grid, through an
    upsample, within its time share."""
    client = FakeClient()
    urls = []

    class Recording(TrainingView):
        def __call__(self, loop, mse, seconds):
            super().__call__(loop, mse, seconds)
            view = self.viewer.views.setdefault(0, ClientView(client))
            if view.camera is None:
                cams = loop.scene.splits["test"].cameras
                view.camera = (ViewCamera(cams.c2w[0].double().numpy(), vertical_fov(cams), 1.0), 48, 48)
            if loop.step % 10 == 0:                       # the camera moves now and then
                view.camera_version += 1
                view.moved_at = time.perf_counter()

    hook = Recording("127.0.0.1", free_port(), tmp_path, announce=urls.append, render_share=0.5)
    try:
        fit_run(None, str(tmp_path / "run"), "tiny", TINY_FIT, progress=False, on_step=hook)
        html = urllib.request.urlopen(urls[0], timeout=10).read()
    finally:
        hook.stop()
    assert b"<html" in html.lower() and urls[0].startswith("http://127.0.0.1:")
    assert len(client.sent) >= 3 and hook.viewer.model_version == 60
    assert "step" in hook.viewer.panel.training_text.content


def listening_addresses(port: int) -> list[str]:
    """Local IPv4 addresses (dotted) listening on ``port``, from /proc/net/tcp."""
    found = []
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":
            found.append(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def plenox(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "plenox.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_view_command_binds_locally_and_stops_on_ctrl_c(tiny_run):
    port = free_port()
    proc = plenox("view", str(tiny_run), "--port", str(port))
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"viewing {tiny_run} at http://127.0.0.1:{port}"), line
        assert listening_addresses(port) == ["127.0.0.1"]
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=10).status == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "viewer stopped" in out and "Traceback" not in err


def test_busy_port_is_refused_in_one_line(tiny_run):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args in (["view", str(tiny_run)], ["fit", "--config", "tiny", "--out", str(tiny_run) + "_busy", "--view"]):
            proc = plenox(*args, "--port", str(port))
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 2, err
            assert err.count("\n") == 1 and f"127.0.0.1:{port} is not available" in err and "--port" in err


def test_fit_view_command_reports_then_serves_until_ctrl_c(tmp_path):
    port = free_port()
    proc = plenox("fit", "--config", "tiny", "--out", str(tmp_path / "run"), "--view", "--port", str(port), "--quiet",
                  *TINY_FIT)
    try:
        lines = []
        while not lines or not lines[-1].startswith("results in"):
            lines.append(proc.stdout.readline())
            assert lines[-1], f"fit --view ended early: {lines}"
        assert any(line.startswith(f"viewer at http://127.0.0.1:{port}") for line in lines)
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=10).status == 200   # still serving
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "viewer stopped" in out and "Traceback" not in err


def test_page_records_a_path_that_renders(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run")   # renders land in the run folder
    """Key-frames recorded by the page's Camera path controls save a camera_path.json that
    ``plenox render --path`` renders, starting at the first key-frame's view."""
    _, _, scene, renderer = open_run(str(tiny_run))
    viewer = Viewer(scene, lambda: renderer, port=free_port(), save_dir=tmp_path)
    try:
        panel = viewer.panel
        cams = scene.splits["test"].cameras
        for i in (0, 1):
            panel.add_keyframe(ViewCamera(cams.c2w[i].double().numpy(), vertical_fov(cams), 4 / 3))
        panel.path_size.value = (32, 24)
        panel.path_seconds.value, panel.path_fps.value = 1.0, 6
        file = panel.save_path()
    finally:
        viewer.stop()
    assert file == tmp_path / "camera_path.json" and "saved 6 frames" in panel.path_text.content
    path = read_camera_path(file)
    assert np.allclose(path.c2w[0], cams.c2w[0].double().numpy(), atol=1e-6)
    assert path.fov[0] == pytest.approx(np.degrees(vertical_fov(cams)))
    assert main(["render", str(run), "--path", str(file)]) == 0
    first = iio.imread(run / "renders" / "path" / "path_0000.png")
    direct = renderer.render_image(*scene.camera_rays(path_cameras(path), 0))["rgb"]
    assert first.shape == (24, 32, 3)
    assert np.abs(first.astype(int) - (direct.clamp(0, 1).numpy() * 255 + 0.5).astype(int)).max() <= 1
