"""COLMAP sparse models as a scene: ``sparse/0/{cameras,images,points3D}.{bin,txt}`` plus ``images/``.

The model files are read here with numpy and struct (no pycolmap), in COLMAP's binary
or text layout (``.bin`` is preferred where both exist). Only registered images (those
listed in ``images.bin``) are loaded, sorted by name; every 8th of them (0, 8, 16, ...)
is held out, as for LLFF. COLMAP stores world-to-camera poses (a unit quaternion
``qvec`` = (w, x, y, z) and ``tvec``, OpenCV camera axes: x right, y down, z forward);
they become OpenGL camera-to-world matrices, then the capture is normalised and
classified by :mod:`plenox.data.normalize` (object-centric: a box; forward-facing: NDC).
The sparse points give the object region's extent (or the depth bounds for NDC).

Camera models: SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV and FULL_OPENCV
with k3..k6 zero, i.e. pinholes with OpenCV k1, k2, p1, p2 distortion, which is what
:class:`plenox.data.cameras.Cameras` renders; fisheye and the other models are refused by
name. COLMAP's principal point is measured from the image's top-left corner, as plenox's.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from plenox.data.cameras import Cameras
from plenox.data.checks import check_rigid
from plenox.data.images import IMAGE_SUFFIXES, WHITE, load_images, scene_background
from plenox.data.llff import NdcFrame, forward_frame
from plenox.data.normalize import (OBJECT, Capture, ObjectFrame, align_similarity, budget_factor, budget_note,
                                   classify_capture, depth_bounds, frame_object, holdout_rule)
from plenox.data.scene import Scene, Split
from plenox.errors import SceneError

log = logging.getLogger(__name__)

# COLMAP's camera model ids (src/colmap/sensor/models.h) and their parameter counts.
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5),
    4: ("OPENCV", 8), 5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4), 9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
}
PARAM_COUNTS = dict(CAMERA_MODELS.values())
SUPPORTED = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV", "FULL_OPENCV")
MODEL_FILES = ("cameras", "images", "points3D")
# A COLMAP image side is far below this; larger values mean a damaged file.
MAX_SIDE = 1 << 20
# Largest camera-centre mismatch, as a fraction of their spread, for a model's points to be
# carried over to a transforms.json's cameras (the same poses written out agree to ~1e-7).
ALIGN_TOLERANCE = 0.01


@dataclass
class ColmapCamera:
    """One ``cameras`` entry: model name, image size in pixels, the model's parameters."""

    id: int
    model: str
    width: int
    height: int
    params: np.ndarray


@dataclass
class ColmapImage:
    """One registered image: world-to-camera rotation ``qvec`` (w, x, y, z), translation ``tvec``, camera id, file name."""

    id: int
    qvec: np.ndarray
    tvec: np.ndarray
    camera_id: int
    name: str


@dataclass
class ColmapModel:
    """A sparse model: cameras by id, registered images, and the 3D points (P, 3) float64 (empty if no points file)."""

    cameras: dict[int, ColmapCamera]
    images: list[ColmapImage]
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))


def model_dir(path: Path) -> Path | None:
    """The folder holding ``cameras.{bin,txt}`` for ``path``: the path itself (or, for a file, its folder),
    ``path/sparse/0``, ``path/sparse`` or ``path/0`` (``path`` being a ``sparse`` folder); None where there is none."""
    base = path.parent if path.is_file() else path
    for candidate in (base, base / "sparse" / "0", base / "sparse", base / "0"):
        if any((candidate / f"cameras{s}").is_file() for s in (".bin", ".txt")):
            return candidate
    return None


def capture_root(model: Path) -> Path:
    """The capture folder: the nearest of the model folder and its two parents that holds ``images/``."""
    for candidate in (model, model.parent, model.parent.parent):
        if (candidate / "images").is_dir():
            return candidate
    raise SceneError(model, "no images/ folder beside the COLMAP model (looked in it and its two parent folders)")


def read_model(folder: Path) -> ColmapModel:
    """Read the model in ``folder``: binary files where ``cameras.bin`` exists, else text files.

    ``points3D`` may be missing (then no points); ``cameras`` and ``images`` are required.
    """
    paths = {name: _model_file(folder, name) for name in MODEL_FILES}
    for name in ("cameras", "images"):
        if not paths[name].is_file():
            raise SceneError(paths[name], "file not found (a COLMAP model needs cameras and images files)")
    if paths["cameras"].suffix == ".bin":
        cameras, images = _read_cameras_bin(paths["cameras"]), _read_images_bin(paths["images"])
        points = _read_points_bin(paths["points3D"]) if paths["points3D"].is_file() else np.zeros((0, 3))
    else:
        cameras, images = _read_cameras_txt(paths["cameras"]), _read_images_txt(paths["images"])
        points = _read_points_txt(paths["points3D"]) if paths["points3D"].is_file() else np.zeros((0, 3))
    for image in images:
        if image.camera_id not in cameras:
            raise SceneError(paths["images"], f"image {image.name} names camera {image.camera_id}, "
                                              f"which {paths['cameras'].name} does not define")
    if not images:
        raise SceneError(paths["images"], "no registered images")
    return ColmapModel(cameras, images, points)


class _Bytes:
    """A cursor over a binary model file; reading past the end is a SceneError naming the file."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.data = path.read_bytes()
        except OSError as exc:
            raise SceneError(path, f"cannot read file ({exc.strerror or exc})") from None
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise SceneError(self.path, f"truncated: ends at byte {len(self.data)} inside a record")
        out = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return out

    def skip(self, size: int) -> None:
        if self.pos + size > len(self.data):
            raise SceneError(self.path, f"truncated: ends at byte {len(self.data)} inside a record")
        self.pos += size

    def string(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise SceneError(self.path, "truncated: an image name has no terminating zero byte")
        raw, self.pos = self.data[self.pos:end], end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SceneError(self.path, f"image name at byte {end - len(raw)} is not UTF-8 text (damaged file?)") from None

    def count(self, min_record: int, what: str) -> int:
        """A uint64 record count, refused where the rest of the file cannot hold that many records."""
        (n,) = self.take("Q")
        if n * min_record > len(self.data) - self.pos:
            raise SceneError(self.path, f"claims {n} {what} but holds {len(self.data)} bytes (truncated or not a COLMAP file)")
        return n

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise SceneError(self.path, f"{len(self.data) - self.pos} unexpected bytes after the last record")


def _camera(path: Path, cam_id: int, model: str, width, height, params) -> ColmapCamera:
    if not (0 < width < MAX_SIDE and 0 < height < MAX_SIDE):
        raise SceneError(path, f"camera {cam_id} has image size {width}x{height}")
    params = np.asarray(params, dtype=np.float64)
    if len(params) != PARAM_COUNTS[model]:
        raise SceneError(path, f"camera {cam_id}: {model} takes {PARAM_COUNTS[model]} parameters, got {len(params)}")
    if not np.isfinite(params).all():
        raise SceneError(path, f"camera {cam_id} has NaN or infinite parameters")
    return ColmapCamera(cam_id, model, int(width), int(height), params)


def _image(path: Path, image_id: int, qvec, tvec, camera_id: int, name: str) -> ColmapImage:
    qvec, tvec = np.asarray(qvec, dtype=np.float64), np.asarray(tvec, dtype=np.float64)
    norm = np.linalg.norm(qvec)
    if not (np.isfinite(qvec).all() and np.isfinite(tvec).all()) or not 0.5 < norm < 2.0:
        raise SceneError(path, f"image {name!r} (id {image_id}) has an invalid pose (qvec {qvec.tolist()})")
    return ColmapImage(image_id, qvec / norm, tvec, camera_id, name)


def _read_cameras_bin(path: Path) -> dict[int, ColmapCamera]:
    f = _Bytes(path)
    cameras = {}
    for _ in range(f.count(48, "cameras")):
        cam_id, model_id, width, height = f.take("iiQQ")
        if model_id not in CAMERA_MODELS:
            raise SceneError(path, f"camera {cam_id} has unknown camera model id {model_id}")
        model, n = CAMERA_MODELS[model_id]
        cameras[cam_id] = _camera(path, cam_id, model, width, height, f.take(f"{n}d"))
    f.finish()
    return cameras


def _read_images_bin(path: Path) -> list[ColmapImage]:
    f = _Bytes(path)
    images = []
    for _ in range(f.count(73, "images")):
        image_id, *pose, camera_id = f.take("I7dI")
        name = f.string()
        (n_points,) = f.take("Q")
        f.skip(24 * n_points)  # (x, y, point3D_id) per keypoint: not needed here
        images.append(_image(path, image_id, pose[:4], pose[4:], camera_id, name))
    f.finish()
    return images


def _read_points_bin(path: Path) -> np.ndarray:
    f = _Bytes(path)
    n = f.count(51, "points")
    xyz = np.empty((n, 3))
    for i in range(n):
        _, x, y, z, _, _, _, _, track = f.take("Q3d3BdQ")
        xyz[i] = x, y, z
        f.skip(8 * track)  # (image_id, point2D_idx) per observation
    f.finish()
    return _finite_points(path, xyz)


def _finite_points(path: Path, xyz: np.ndarray) -> np.ndarray:
    if not np.isfinite(xyz).all():
        raise SceneError(path, "a point has NaN or infinite coordinates")
    return xyz


def _text_rows(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of the non-comment lines; blank lines are kept (images.txt uses them)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneError(path, f"cannot read file ({exc})") from None
    return [(i + 1, line.strip()) for i, line in enumerate(text.splitlines()) if not line.lstrip().startswith("#")]


def _numbers(path: Path, lineno: int, words: list[str], kind=float) -> list:
    try:
        return [kind(w) for w in words]
    except ValueError:
        raise SceneError(path, f"line {lineno}: expected numbers, got {' '.join(words)!r}") from None


def _read_cameras_txt(path: Path) -> dict[int, ColmapCamera]:
    cameras = {}
    for lineno, line in _text_rows(path):
        if not line:
            continue
        words = line.split()
        if len(words) < 4:
            raise SceneError(path, f"line {lineno}: expected CAMERA_ID MODEL WIDTH HEIGHT PARAMS..., got {line!r}")
        if words[1] not in PARAM_COUNTS:
            raise SceneError(path, f"line {lineno}: unknown camera model {words[1]!r}")
        cam_id, width, height = _numbers(path, lineno, [words[0], words[2], words[3]], int)
        cameras[cam_id] = _camera(path, cam_id, words[1], width, height, _numbers(path, lineno, words[4:]))
    return cameras


def _read_images_txt(path: Path) -> list[ColmapImage]:
    rows = _text_rows(path)
    while rows and not rows[-1][1]:
        rows.pop()
    images = []
    # Two lines per image: the pose line, then the keypoints line (empty for an image without keypoints).
    for lineno, line in rows[::2]:
        words = line.split(maxsplit=9)
        if len(words) != 10:
            raise SceneError(path, f"line {lineno}: expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME, got {line!r}")
        values = _numbers(path, lineno, words[1:8])
        image_id, camera_id = _numbers(path, lineno, [words[0], words[8]], int)
        images.append(_image(path, image_id, values[:4], values[4:], camera_id, words[9]))
    return images


def _read_points_txt(path: Path) -> np.ndarray:
    xyz = []
    for lineno, line in _text_rows(path):
        if not line:
            continue
        words = line.split()
        if len(words) < 8:
            raise SceneError(path, f"line {lineno}: expected POINT3D_ID X Y Z R G B ERROR TRACK..., got {line!r}")
        xyz.append(_numbers(path, lineno, words[1:4]))
    return _finite_points(path, np.asarray(xyz, dtype=np.float64).reshape(-1, 3))


def qvec_to_rotation(q: np.ndarray) -> np.ndarray:
    """The (3, 3) rotation of a unit quaternion (w, x, y, z)."""
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def camera_to_world(images: list[ColmapImage]) -> np.ndarray:
    """OpenGL camera-to-world matrices (N, 4, 4) of COLMAP's world-to-camera poses (OpenCV axes)."""
    c2w = np.tile(np.eye(4), (len(images), 1, 1))
    for i, image in enumerate(images):
        rot = qvec_to_rotation(image.qvec)
        c2w[i, :3, :3] = rot.T
        c2w[i, :3, 3] = -rot.T @ image.tvec
    c2w[:, :3, 1:3] *= -1  # OpenCV (y down, z forward) -> OpenGL (y up, z back)
    return c2w


def pinhole(camera: ColmapCamera, path: Path) -> tuple[float, float, float, float, list[float]]:
    """(fx, fy, cx, cy, [k1, k2, p1, p2]) of a supported camera; SceneError naming any other model."""
    p = camera.params
    if camera.model not in SUPPORTED or (camera.model == "FULL_OPENCV" and np.any(p[8:] != 0)):
        what = "FULL_OPENCV with non-zero k3..k6" if camera.model == "FULL_OPENCV" else camera.model
        raise SceneError(path, f"camera {camera.id} uses the {what} camera model, which plenox cannot render "
                               f"(supported: pinholes with OpenCV k1, k2, p1, p2: {', '.join(SUPPORTED[:5])})")
    if camera.model == "SIMPLE_PINHOLE":
        return p[0], p[0], p[1], p[2], [0.0] * 4
    if camera.model == "PINHOLE":
        return p[0], p[1], p[2], p[3], [0.0] * 4
    if camera.model == "SIMPLE_RADIAL":
        return p[0], p[0], p[1], p[2], [p[3], 0.0, 0.0, 0.0]
    if camera.model == "RADIAL":
        return p[0], p[0], p[1], p[2], [p[3], p[4], 0.0, 0.0]
    return p[0], p[1], p[2], p[3], list(p[4:8])


def model_cameras(model: ColmapModel, images: list[ColmapImage], path: Path) -> Cameras:
    """Cameras (OpenGL c2w in the model's frame, per-image intrinsics) for ``images``, at the model's image size.

    All images must share one image size; COLMAP often refines one camera per image
    (beer_360 has 71), which is kept: intrinsics are per image.
    """
    first = model.cameras[images[0].camera_id]
    intrinsics = []
    for image in images:
        cam = model.cameras[image.camera_id]
        if (cam.width, cam.height) != (first.width, first.height):
            raise SceneError(path, f"images of different cameras mixed: {images[0].name} is {first.width}x{first.height} "
                                   f"(camera {first.id}) but {image.name} is {cam.width}x{cam.height} (camera {cam.id}); "
                                   f"plenox fits one image size: put them in separate scenes")
        intrinsics.append(pinhole(cam, path))
    fx, fy, cx, cy, dist = zip(*intrinsics)
    dist = np.asarray(dist, dtype=np.float32)
    return Cameras(c2w=camera_to_world(images), fx=fx, fy=fy, cx=cx, cy=cy, width=first.width,
                   height=first.height, distortion=dist if dist.any() else None)


def load_colmap(path: Path, downscale: int | None, background, holdout_every: int) -> Scene:
    """Load the COLMAP capture at ``path`` (the capture folder, its ``sparse``/``sparse/0`` folder or a model file).

    downscale: integer factor, or None for the pixel budget (:func:`plenox.data.normalize.budget_factor`).
    """
    folder, model = _open(path)
    root = capture_root(folder)
    images = sorted(model.images, key=lambda im: im.name)
    source = _model_file(folder, "images")
    cams = model_cameras(model, images, _model_file(folder, "cameras"))
    names = [Path(im.name).with_suffix("").as_posix() for im in images]
    check_rigid(cams.c2w.double().numpy(), names, source)
    paths = [_image_path(root / "images", im.name, source) for im in images]

    factor = budget_factor(cams.width, cams.height) if downscale is None else downscale
    if downscale is None:
        log.info(budget_note(root.name, cams.width, cams.height, factor))
    pixels, alpha, (h, w) = load_images(paths, factor, background or WHITE)
    if abs(h * cams.width - w * cams.height) > max(w, h):
        raise SceneError(paths[0], f"image is {w}x{h} but its COLMAP camera is {cams.width}x{cams.height}")
    capture, frame = frame_capture(cams, model.points, source, "the model has no points3D file or no points")
    log.info(f"{root.name}: {capture.reason}; {frame.note}")
    cams = replace(cams, c2w=frame.c2w).scaled(cams.width / w).scaled(factor)

    is_test = np.arange(len(images)) % holdout_every == 0
    splits = {}
    for split_name, mask in (("train", ~is_test), ("test", is_test)):
        idx = torch.from_numpy(np.nonzero(mask)[0])
        splits[split_name] = Split(images=pixels[idx], cameras=cams.subset(idx), names=[names[i] for i in idx.tolist()],
                                   alpha=None if alpha is None else alpha[idx])
    return frame.scene(root.name, "colmap", splits, scene_background(background, alpha is not None), capture,
                       holdout_rule(holdout_every, "image name"), factor)


def frame_capture(cams: Cameras, points: np.ndarray | None, source, remedy: str
                  ) -> tuple[Capture, ObjectFrame | NdcFrame]:
    """Classify a capture and frame it: a box for object-centric cameras, NDC for forward-facing ones.

    cams: the capture's cameras in its own coordinates; points: (P, 3) sparse points there, or
    None. NDC needs the scene's depth range, which only the points give here: a forward-facing
    capture without them is a SceneError naming ``source`` and suggesting ``remedy``.
    """
    c2w = cams.c2w.double().numpy()
    capture = classify_capture(c2w, source)
    if capture.kind == OBJECT:
        return capture, frame_object(c2w, points)
    if points is None or not len(points):
        raise SceneError(source, f"{capture.reason}, but there are no sparse points to give the depth range "
                                 f"NDC needs ({remedy})")
    return capture, forward_frame(c2w, depth_bounds(cams, points, source))


def colmap_capture(path: Path) -> Capture:
    """The capture kind of a COLMAP model, from its poses alone (no images read)."""
    folder, model = _open(path)
    images = sorted(model.images, key=lambda im: im.name)
    return classify_capture(camera_to_world(images), _model_file(folder, "images"))


def aligned_points(folder: Path, names: list[str], c2w: np.ndarray) -> np.ndarray | None:
    """The sparse points of the COLMAP model in ``folder`` (or its sparse/0, sparse), in the coordinates of
    the cameras ``c2w`` (N, 4, 4) of images ``names`` (file stems).

    The similarity between the model's camera centres and these cameras' centres (matched by
    file stem) carries the points over, so a transforms.json written from the model in any
    convention finds its points. None where there is no model, fewer than 3 images match, or
    the centres do not agree to ALIGN_TOLERANCE of their spread after the similarity.
    """
    model_folder = model_dir(folder)
    if model_folder is None:
        return None
    model = read_model(model_folder)
    index = {Path(im.name).stem: i for i, im in enumerate(model.images)}
    shared = [(j, index[n]) for j, n in enumerate(names) if n in index]
    if len(shared) < 3 or not len(model.points):
        return None
    mine, theirs = zip(*shared)
    dst = c2w[list(mine), :3, 3]
    src = camera_to_world([model.images[i] for i in theirs])[:, :3, 3]
    transform = align_similarity(src, dst)
    moved = src @ transform[:3, :3].T + transform[:3, 3]
    spread = np.sqrt(((dst - dst.mean(0)) ** 2).sum(1).mean())
    error = float(np.abs(moved - dst).max())
    if not error <= ALIGN_TOLERANCE * spread:
        log.info(f"{model_folder}: its cameras do not match the frames' (off by {error / spread:.1%} of their "
                 f"spread after a similarity); its points are not used")
        return None
    return model.points @ transform[:3, :3].T + transform[:3, 3]


def _open(path: Path) -> tuple[Path, ColmapModel]:
    folder = model_dir(path)
    if folder is None:
        raise SceneError(path, "no COLMAP model (cameras.bin or cameras.txt) here or in sparse/0 or sparse")
    return folder, read_model(folder)


def _model_file(folder: Path, name: str) -> Path:
    return folder / f"{name}{'.bin' if (folder / 'cameras.bin').is_file() else '.txt'}"


def _image_path(folder: Path, name: str, source: Path) -> Path:
    path = folder / name
    if path.is_file():
        return path
    for suffix in IMAGE_SUFFIXES:
        if path.with_suffix(suffix).is_file():
            return path.with_suffix(suffix)
    raise SceneError(source, f"registered image {name!r} not found in {folder}")
