"""The viewer page's furniture: the GUI panel, training-camera frustums with thumbnails, the clip
box outline and recorded key-frames."""

import math
from pathlib import Path

import numpy as np
import torch
import viser

from plenox.data.camera_paths import Keyframe, make_path, write_camera_path
from plenox.data.scene import Scene
from plenox.viewer.cameras import ViewCamera, vertical_fov, viser_from_c2w
from plenox.viewer.frames import MODES, Look

THUMBNAIL = 64          # long side of a training-camera thumbnail, pixels
DEFAULT_MAX_SIDE = 800  # long side of a still frame, pixels (the canvas's when smaller)
NERF_MAX_SIDE = 200     # the same for a NeRF, which renders a few thousand rays per second
NERF_NOTE = ("**NeRF model**: an MLP renders a few thousand rays per second on a CPU, so frames are "
             "small and slow here; a Plenoxels grid renders about a hundred times faster.")


def thumbnails(images: torch.Tensor, long_side: int = THUMBNAIL) -> np.ndarray:
    """(N, h, w, 3) uint8 area-downscaled copies of images (N, H, W, 3) in [0, 1]."""
    stride = max(1, math.ceil(max(images.shape[1:3]) / long_side))
    small = torch.nn.functional.avg_pool2d(images.permute(0, 3, 1, 2), stride, stride).permute(0, 2, 3, 1)
    return (small.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def camera_scale(c2w: torch.Tensor) -> float:
    """A frustum size that suits the cameras' spread: 1/25 of their median distance to their mean."""
    positions = c2w[:, :3, 3].double()
    spread = float((positions - positions.mean(0)).norm(dim=1).median()) if len(positions) > 1 else 1.0
    return 0.04 * max(spread, 1e-3)


def move_camera(client: viser.ClientHandle, c2w, fov_y: float | None = None) -> None:
    """Point a browser's camera like OpenGL camera-to-world ``c2w`` (4, 4), optionally with a vertical fov (radians)."""
    wxyz, position = viser_from_c2w(c2w)
    with client.atomic():
        client.camera.wxyz = wxyz
        client.camera.position = position
        if fov_y is not None:
            client.camera.fov = fov_y


class Panel:
    """GUI controls of one viewer; ``on_change()`` is called when what a frame shows changes."""

    def __init__(self, server: viser.ViserServer, scene: Scene, box, save_dir: Path, nerf: bool, training: bool,
                 on_change):
        self.server, self.scene, self.save_dir, self.on_change = server, scene, Path(save_dir), on_change
        self.keyframes: list[Keyframe] = []
        self._keyframe_nodes = []
        self.box = box
        gui = server.gui
        gui.configure_theme(dark_mode=False)
        gui.main_panel.dock_right()   # beside the canvas, not over the picture
        if nerf:
            gui.add_markdown(NERF_NOTE)
        self.training_text = gui.add_markdown("waiting for the first training step", visible=training)
        self.frame_text = gui.add_markdown("no frame yet")
        with gui.add_folder("Display"):
            self.mode = gui.add_dropdown("Show", MODES, initial_value="rgb")
            self.background = gui.add_rgb("Background", (255, 255, 255))
            self.max_side = gui.add_slider("Still size", min=64, max=2048, step=16, initial_value=NERF_MAX_SIDE if nerf else DEFAULT_MAX_SIDE,
                                           hint="long side, in pixels, of the frame rendered once the camera rests")
            self.show_cameras = gui.add_checkbox("Training cameras", True)
        for handle in (self.mode, self.background, self.max_side):
            handle.on_update(lambda _: self.on_change())
        self.show_cameras.on_update(lambda _: self._show_frustums(self.show_cameras.value))
        self.clip_enabled, self.clip_ranges, self._clip_node = None, [], None
        if box is not None:
            self._add_clip_controls(*box)
        self._add_path_controls()
        self.frustums = self._add_frustums()

    # ----- what frames show ------------------------------------------------------------------
    def look(self) -> Look:
        clip = None
        if self.clip_enabled is not None and self.clip_enabled.value:
            lows, highs = zip(*(tuple(r.value) for r in self.clip_ranges))
            clip = (tuple(map(float, lows)), tuple(map(float, highs)))
        return Look(self.mode.value, tuple(c / 255 for c in self.background.value), clip)

    def set_model_background(self, rgb) -> None:
        self.background.value = tuple(int(round(255 * c)) for c in rgb)

    # ----- clip box ----------------------------------------------------------------------------
    def _add_clip_controls(self, low: np.ndarray, high: np.ndarray) -> None:
        gui = self.server.gui
        with gui.add_folder("Clip box", expand_by_default=False):
            self.clip_enabled = gui.add_checkbox("Clip", False, hint="render only the voxels inside the box")
            for axis, lo, hi in zip("xyz", low, high):
                step = float(hi - lo) / 100
                self.clip_ranges.append(gui.add_multi_slider(
                    f"{axis}{' (NDC)' if self.scene.ndc else ''}", min=float(lo), max=float(hi), step=step,
                    initial_value=(float(lo), float(hi)), min_range=step))
        for handle in (self.clip_enabled, *self.clip_ranges):
            handle.on_update(lambda _: self._clip_changed())

    def _clip_changed(self) -> None:
        look = self.look()
        if self._clip_node is not None:
            self._clip_node.remove()
            self._clip_node = None
        if look.clip is not None and not self.scene.ndc:   # an NDC box has no simple shape in the world
            lo, hi = np.array(look.clip[0]), np.array(look.clip[1])
            self._clip_node = self.server.scene.add_box("/clip_box", color=(255, 120, 0), dimensions=tuple(hi - lo),
                                                        wireframe=True, position=tuple((lo + hi) / 2))
        self.on_change()

    # ----- training cameras --------------------------------------------------------------------
    def _add_frustums(self) -> list:
        split = self.scene.splits["train"]
        cams = split.cameras
        fov, aspect, scale = vertical_fov(cams), cams.width / cams.height, camera_scale(cams.c2w)
        handles = []
        for i, image in enumerate(thumbnails(split.images)):
            wxyz, position = viser_from_c2w(cams.c2w[i].double().numpy())
            handle = self.server.scene.add_camera_frustum(
                f"/cameras/{split.names[i]}", fov=fov, aspect=aspect, scale=scale, image=image, format="jpeg",
                jpeg_quality=80, wxyz=wxyz, position=position, color=(40, 90, 200), thickness=1.5,
                thickness_units="screen")
            handle.on_click(self._go_to(cams.c2w[i].double().numpy(), fov))
            handles.append(handle)
        return handles

    def _go_to(self, c2w: np.ndarray, fov: float):
        def callback(event) -> None:
            move_camera(event.client, c2w, fov)
        return callback

    def _show_frustums(self, visible: bool) -> None:
        for handle in self.frustums:
            handle.visible = visible

    # ----- camera path -------------------------------------------------------------------------
    def _add_path_controls(self) -> None:
        gui = self.server.gui
        cams = self.scene.splits["train"].cameras
        with gui.add_folder("Camera path", expand_by_default=False):
            add = gui.add_button("Add key-frame", hint="record this view as the path's next key-frame")
            clear = gui.add_button("Clear key-frames")
            self.path_size = gui.add_vector2("Video size", (cams.width, cams.height), min=(16, 16), step=1)
            self.path_seconds = gui.add_number("Seconds", 4.0, min=0.1, step=0.1)
            self.path_fps = gui.add_number("FPS", 30, min=1, max=240, step=1)
            self.path_loop = gui.add_checkbox("Loop", False)
            self.path_file = gui.add_text("File", str(self.save_dir / "camera_path.json"))
            save = gui.add_button("Save camera_path.json")
            self.path_text = gui.add_markdown("no key-frames")
        add.on_click(lambda event: self.add_keyframe(self._camera_of(event.client)))
        clear.on_click(lambda _: self.clear_keyframes())
        save.on_click(lambda _: self.save_path())

    @staticmethod
    def _camera_of(client: viser.ClientHandle) -> ViewCamera:
        cam = client.camera
        return ViewCamera.from_viser(cam.wxyz, cam.position, cam.fov, cam.aspect)

    def add_keyframe(self, camera: ViewCamera) -> None:
        width, height = self.path_size.value
        self.keyframes.append(Keyframe(camera.c2w, math.degrees(camera.fov_y), width / height))
        wxyz, position = viser_from_c2w(camera.c2w)
        scale = camera_scale(self.scene.splits["train"].cameras.c2w)
        self._keyframe_nodes.append(self.server.scene.add_camera_frustum(
            f"/keyframes/{len(self.keyframes)}", fov=camera.fov_y, aspect=width / height, scale=scale,
            wxyz=wxyz, position=position, color=(220, 30, 30), thickness=2.0, thickness_units="screen"))
        self.path_text.content = f"{len(self.keyframes)} key-frame(s)"

    def clear_keyframes(self) -> None:
        for node in self._keyframe_nodes:
            node.remove()
        self.keyframes, self._keyframe_nodes = [], []
        self.path_text.content = "no key-frames"

    def save_path(self) -> Path | None:
        """Write the key-frames' path to the File box's path; returns it (None without key-frames)."""
        if not self.keyframes:
            self.path_text.content = "add a key-frame first"
            return None
        width, height = (int(v) for v in self.path_size.value)
        path = make_path(self.keyframes, width, height, float(self.path_fps.value), float(self.path_seconds.value),
                         bool(self.path_loop.value))
        file = write_camera_path(path, self.path_file.value)
        self.path_text.content = (f"saved {len(path)} frames to `{file}`; render with "
                                  f"`plenox render RUN --path {file} --video path.mp4`")
        return file

    # ----- status lines ----------------------------------------------------------------------
    def show_training(self, step: int, steps: int | None, psnr: float, rays_per_s: float) -> None:
        total = f" / {steps:,}" if steps else ""
        self.training_text.content = (f"**training** step {step:,}{total} · PSNR {psnr:.2f} dB · "
                                      f"{rays_per_s:,.0f} rays/s")

    def show_training_done(self, step: int) -> None:
        self.training_text.content = f"**training done** at step {step:,}; showing the final model"

    def show_frame(self, width: int, height: int, seconds: float, still: bool, fps: float) -> None:
        if still:
            self.frame_text.content = f"still frame {width}x{height} in {seconds:.2f} s"
        else:
            self.frame_text.content = f"moving: {width}x{height} at {fps:.1f} fps"
