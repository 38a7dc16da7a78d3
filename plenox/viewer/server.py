"""The viewer: a viser server whose browsers see a model rendered from their own cameras.

Rendering is progressive and per browser: while the camera moves, small frames sized so one takes
about 1 / TARGET_FPS seconds at the measured rays/s; once it has rested for REST_DELAY_S, one
frame at the still size (the canvas's long side, capped by the panel's "Still size"),
interrupted if the camera moves again. All rendering happens on the thread that calls ``poll``:
the standalone loop (``serve``) or, while training, the training thread between two steps
(``training_hook``), which therefore never renders a half-updated or re-allocated grid and needs
no lock. While training, frames are also rate-limited so that rendering takes at most
``render_share`` of the wall-clock time, and a resting view refreshes every REFRESH_S seconds.
"""

from __future__ import annotations

import contextlib
import io
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import viser

from plenox.data.scene import Scene
from plenox.viewer.cameras import ViewCamera, frame_size, vertical_fov
from plenox.viewer.frames import CHUNK, FrameRenderer, grid_box
from plenox.viewer.panel import Panel
from plenox.viewer.ports import ViewerError, check_port

TARGET_FPS = 12.0      # moving frames are sized to take about 1 / TARGET_FPS s
MIN_SIDE = 48          # smallest long side of a moving frame, pixels
REST_DELAY_S = 0.2     # the camera counts as resting after this long without a move
REFRESH_S = 3.0        # while training, a resting view re-renders this often
STATS_EVERY_S = 1.0    # panel status lines update at most this often
RENDER_SHARE = 0.08    # while training, rendering may take at most this share of the wall-clock time
MAX_CREDIT_S = 0.25    # rendering time that may be spent in one burst while training
INTERRUPT_S = 0.05     # a camera move interrupts a still frame within about this long


@dataclass
class ClientView:
    """What one browser shows and wants. ``camera`` is replaced whole by viser's thread."""

    client: viser.ClientHandle
    camera: tuple | None = None          # (ViewCamera, canvas width, canvas height)
    camera_version: int = 0
    moved_at: float = 0.0
    shown: tuple | None = None           # (camera_version, look_version, model_version) of the last frame
    shown_still: bool = False
    shown_at: float = 0.0
    frame_times: list = field(default_factory=list)


class RenderBudget:
    """Rendering time earned at ``share`` seconds per wall-clock second, banked up to ``burst`` seconds."""

    def __init__(self, share: float, burst: float = MAX_CREDIT_S):
        self.share, self.burst = share, burst
        self.credit, self.last = burst, time.perf_counter()

    def allows(self, now: float) -> bool:
        self.credit = min(self.burst, self.credit + (now - self.last) * self.share)
        self.last = now
        return self.credit > 0

    def spend(self, seconds: float) -> None:
        self.credit -= seconds


class Viewer:
    """A running viewer of ``scene``; ``renderer()`` gives the model to draw (called per frame, on
    the polling thread).

    host, port: where to listen (ViewerError when the port is taken). save_dir: default folder of
    recorded camera paths. training: show the training status line and limit rendering to
    render_share of the time. nerf: show the slow-on-CPU note.
    """

    def __init__(self, scene: Scene, renderer, host: str = "127.0.0.1", port: int = 8080,
                 save_dir: Path = Path("."), training: bool = False, nerf: bool = False,
                 render_share: float = RENDER_SHARE):
        check_port(host, port)
        with contextlib.redirect_stdout(io.StringIO()):   # viser's own URL banner: the command prints one line
            self.server = viser.ViserServer(host=host, port=port, label="plenox", verbose=False)
        if self.server.get_port() != port:   # taken between the check and the bind
            self.server.stop()
            raise ViewerError(f"{host}:{port} is not available; choose another port with --port")
        self.host, self.port = host, port
        self.scene, self.renderer = scene, renderer
        self.frames = FrameRenderer(scene)
        self.model_version = 0
        self.look_version = 0
        self.rays_per_s = None            # pixels per second rendered and sent, moving average
        self.budget = RenderBudget(render_share) if training else None
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.views: dict[int, ClientView] = {}
        self.frames_rendered = 0
        self.last_frame = None            # (width, height, seconds, still) of the last frame shown
        self._stats_at = 0.0
        self._train_stats = None          # (psnr moving average, rays/s moving average)
        model = renderer()
        self.panel = Panel(self.server, scene, grid_box(model), save_dir, nerf, training, self._look_changed)
        self.panel.set_model_background(model.protocol()["background"])
        self._set_initial_camera()
        self.server.on_client_connect(self._connect)
        self.server.on_client_disconnect(lambda client: self.views.pop(client.client_id, None))

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Close the server; ``serve`` returns at its next poll."""
        self.stopped.set()
        self.wake.set()
        with contextlib.redirect_stdout(io.StringIO()):   # viser's "server stopped"
            self.server.stop()

    # ----- browsers ---------------------------------------------------------------------------
    def _set_initial_camera(self) -> None:
        """New browsers start at the first training camera, orbiting the scene's centre, with the
        training cameras' mean up direction as the world's up."""
        cams = self.scene.splits["train"].cameras
        up = cams.c2w[:, :3, 1].double().sum(0).numpy()
        up /= np.linalg.norm(up)
        c2w = cams.c2w[0].double().numpy()
        forward = -c2w[:3, 2]
        if self.scene.ndc:
            distance = 1.0
        else:
            distance = max(float(forward @ (np.asarray(self.scene.center) - c2w[:3, 3])), 1e-3)
        self.server.scene.set_up_direction(tuple(up))
        self.server.initial_camera.position = tuple(c2w[:3, 3])
        self.server.initial_camera.look_at = tuple(c2w[:3, 3] + distance * forward)
        self.server.initial_camera.up = tuple(up)
        self.server.initial_camera.fov = vertical_fov(cams)

    def _connect(self, client: viser.ClientHandle) -> None:
        view = ClientView(client)
        self.views[client.client_id] = view

        @client.camera.on_update
        def _(camera: viser.CameraHandle) -> None:
            if camera.image_width <= 0 or camera.image_height <= 0:
                return
            view.camera = (ViewCamera.from_viser(camera.wxyz, camera.position, camera.fov, camera.aspect),
                           camera.image_width, camera.image_height)
            view.camera_version += 1
            view.moved_at = time.perf_counter()
            self.wake.set()

    def _look_changed(self) -> None:
        self.look_version += 1
        self.wake.set()

    # ----- rendering ----------------------------------------------------------------------------
    def moving_side(self, aspect: float, cap: int) -> int:
        """Long side of a moving frame: about 1 / TARGET_FPS seconds of pixels at the measured speed."""
        if self.rays_per_s is None:
            return min(MIN_SIDE, cap)
        pixels = self.rays_per_s / TARGET_FPS
        side = math.sqrt(pixels * max(aspect, 1.0 / aspect))
        return int(min(max(MIN_SIDE, 8 * round(side / 8)), cap))

    def due(self, view: ClientView, now: float) -> bool | None:
        """None when ``view`` needs no frame now, else whether the frame is a still one."""
        if view.camera is None:
            return None
        resting = now - view.moved_at >= REST_DELAY_S
        state = (view.camera_version, self.look_version, self.model_version)
        if view.shown is None or view.shown[:2] != state[:2]:
            return resting
        if not view.shown_still and resting:
            return True
        if view.shown[2] != state[2] and now - view.shown_at >= REFRESH_S:
            return True
        return None

    def poll(self) -> bool:
        """Render the frames that are due; returns whether any was shown."""
        shown = False
        for view in list(self.views.values()):
            now = time.perf_counter()
            still = self.due(view, now)
            if still is None or (self.budget is not None and not self.budget.allows(now)):
                continue
            shown |= self.render_view(view, still)
        return shown

    def render_view(self, view: ClientView, still: bool) -> bool:
        """Render and send one frame for ``view``; False when a camera move interrupted it."""
        camera, canvas_w, canvas_h = view.camera
        state = (view.camera_version, self.look_version, self.model_version)
        cap = min(int(self.panel.max_side.value), max(canvas_w, canvas_h))
        side = cap if still else self.moving_side(camera.aspect, cap)
        width, height = frame_size(camera.aspect, side)
        look = self.panel.look()

        def interrupted() -> bool:
            return (view.camera_version, self.look_version) != state[:2]

        start = time.perf_counter()
        # chunks of about INTERRUPT_S of rays, so a move is noticed that soon even with a slow model
        chunk = int(min(max((self.rays_per_s or 0) * INTERRUPT_S, 1024), CHUNK))
        image = self.frames.render(self.renderer(), camera, width, height, look, self.model_version,
                                   interrupted if still else None, chunk, moving=not still)
        seconds = time.perf_counter() - start
        if self.budget is not None:
            self.budget.spend(seconds)
        if image is None:
            return False
        view.client.scene.set_background_image(image, format="jpeg", jpeg_quality=90 if still else 70)
        end = time.perf_counter()
        speed = width * height / max(end - start, 1e-6)     # rendering, encoding and sending
        self.rays_per_s = speed if self.rays_per_s is None else 0.7 * self.rays_per_s + 0.3 * speed
        view.shown, view.shown_still, view.shown_at = state, still, end
        view.frame_times = (view.frame_times + [view.shown_at])[-10:]
        self.frames_rendered += 1
        self.last_frame = (width, height, seconds, still)
        self._show_stats(force=still)
        return True

    def _show_stats(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._stats_at < STATS_EVERY_S:
            return
        self._stats_at = now
        if self.last_frame is not None:
            times = max(self.views.values(), key=lambda v: len(v.frame_times), default=None)
            span = times.frame_times[-1] - times.frame_times[0] if times and len(times.frame_times) > 1 else 0
            fps = (len(times.frame_times) - 1) / span if span > 0 else 1.0 / max(self.last_frame[2], 1e-6)
            self.panel.show_frame(*self.last_frame, fps)

    # ----- drivers ------------------------------------------------------------------------------
    def serve(self) -> None:
        """Render for the connected browsers until ``stop()`` or KeyboardInterrupt (Ctrl-C)."""
        while not self.stopped.is_set():
            if not self.poll():
                self.wake.wait(0.05)
                self.wake.clear()

    def training_hook(self, loop, mse: float, seconds: float) -> None:
        """TrainingLoop.on_step: note the step's figures, then render what is due from the live model."""
        psnr = -10.0 * math.log10(max(mse, 1e-12))
        rays = loop.config.rays_per_step / max(seconds, 1e-9)
        if self._train_stats is None:
            self._train_stats = (psnr, rays)
        else:
            p, r = self._train_stats
            self._train_stats = (0.9 * p + 0.1 * psnr, 0.9 * r + 0.1 * rays)
        self.model_version = loop.step
        self.renderer = loop.renderer
        now = time.perf_counter()
        if now - self._stats_at >= STATS_EVERY_S:
            self.panel.show_training(loop.step, None if loop.budget else loop.config.steps, *self._train_stats)
            self._show_stats(force=True)
        self.poll()


class TrainingView:
    """A TrainingLoop.on_step hook that opens a Viewer of the live model at the first step (the
    port is checked at once, so a busy port fails before training starts) and renders between steps.
    ``announce(url)`` is called once the page is up."""

    def __init__(self, host: str, port: int, save_dir: Path, announce=print,
                 render_share: float = RENDER_SHARE):
        check_port(host, port)
        self.host, self.port, self.save_dir, self.announce = host, port, Path(save_dir), announce
        self.render_share = render_share
        self.viewer: Viewer | None = None

    def __call__(self, loop, mse: float, seconds: float) -> None:
        if self.viewer is None:
            self.viewer = Viewer(loop.scene, loop.renderer, self.host, self.port, self.save_dir, training=True,
                                 nerf=loop.config.model == "nerf", render_share=self.render_share)
            self.announce(self.viewer.url)
        self.viewer.training_hook(loop, mse, seconds)

    def stop(self) -> None:
        if self.viewer is not None:
            self.viewer.stop()
