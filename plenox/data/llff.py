"""Forward-facing LLFF captures: ``poses_bounds.npy`` plus ``images/`` or downsampled ``images_N/`` folders.

Each row of ``poses_bounds.npy`` is a flattened 3x5 matrix [R | t | (H, W, focal)]
at the full capture resolution, followed by the near and far scene depths of
that view. R's columns are the camera's [down, right, back] axes. The rows
belong to the image files in sorted order. Poses are processed exactly as the
NeRF reference code does (``load_llff_data`` with ``bd_factor=0.75``,
``recenter=True``), and the scene is fit in NDC space.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from plenox.data.cameras import Cameras, image_rays, to_ndc
from plenox.data.checks import check_rigid
from plenox.data.images import IMAGE_SUFFIXES, WHITE, load_images, scene_background
from plenox.data.scene import Scene, Split
from plenox.errors import SceneError

# The reference scales the scene so that the nearest bound lands at 1 / 0.75,
# safely beyond the NDC near plane at depth 1.
BD_FACTOR = 0.75
_FOLDER = re.compile(r"images(?:_([1-9]\d*))?$")


def image_folders(folder: Path) -> dict[int, Path]:
    """The image folders present, keyed by downsampling factor (``images`` is 1, ``images_4`` is 4)."""
    found = {}
    for child in folder.iterdir():
        match = _FOLDER.match(child.name)
        if child.is_dir() and match:
            found[int(match.group(1) or 1)] = child
    return found


def choose_folder(folder: Path, downscale: int) -> tuple[Path, int]:
    """The image folder to read for a total ``downscale`` and the box-filter factor still to apply.

    Takes the folder with the largest factor N dividing ``downscale`` (N = 1
    is ``images/``), so that the rest is an integer area downscale. When
    ``downscale`` is 1 and no full-resolution ``images/`` exists, the
    highest-resolution folder is used as is (fern ships only images_4 and
    images_8, so the default load is images_4, svox2's choice).
    """
    folders = image_folders(folder)
    if not folders:
        raise SceneError(folder, "no images/ or images_N/ folder next to poses_bounds.npy")
    usable = [n for n in folders if downscale % n == 0]
    if usable:
        n = max(usable)
        return folders[n], downscale // n
    if downscale == 1:
        return folders[min(folders)], 1
    have = ", ".join(folders[n].name for n in sorted(folders))
    raise SceneError(folder, f"no image folder for downscale {downscale} (have {have}; need images_N with N dividing it)")


def read_poses_bounds(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``poses_bounds.npy`` as poses (N, 3, 5) float64 and bounds (N, 2)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise SceneError(path, "file not found") from None
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError for corrupt .npy files
        raise SceneError(path, f"unreadable .npy file ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if arr.ndim != 2 or arr.shape[1] != 17 or arr.shape[0] == 0 or arr.dtype.kind not in "fiu":
        raise SceneError(path, f"expected an (N, 17) numeric array, got {arr.shape} {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        bad = int(np.nonzero(~np.isfinite(arr).all(axis=1))[0][0])
        raise SceneError(path, f"row {bad} has NaN or infinite entries")
    bounds = arr[:, 15:17]
    if (bounds <= 0).any():
        raise SceneError(path, "near/far bounds must be positive")
    return arr[:, :15].reshape(-1, 3, 5), bounds


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def average_pose(c2w: np.ndarray) -> np.ndarray:
    """The reference's ``poses_avg``: mean position, summed viewing and up axes made orthonormal; (4, 4)."""
    center = c2w[:, :3, 3].mean(0)
    back = _normalize(c2w[:, :3, 2].sum(0))
    up = c2w[:, :3, 1].sum(0)
    right = _normalize(np.cross(up, back))
    up = _normalize(np.cross(back, right))
    avg = np.eye(4)
    avg[:3, :4] = np.stack([right, up, back, center], axis=1)
    return avg


def normalize_poses(c2w: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Scale the scene so the nearest bound is 1 / BD_FACTOR, then express poses in the average pose's frame.

    c2w: (N, 4, 4) OpenGL camera-to-world; bounds: (N, 2) near/far depths. Returns the new (N, 4, 4) poses.
    """
    scale = 1.0 / (bounds.min() * BD_FACTOR)
    c2w = c2w.copy()
    c2w[:, :3, 3] *= scale
    return np.linalg.inv(average_pose(c2w)) @ c2w


def ndc_half_extent(cams: Cameras, focal: float) -> tuple[float, float]:
    """Half-widths in NDC x and y (at least 1) of the box that holds every ray of ``cams``
    from the near plane (z = -1) to infinity (z = 1).

    [-1, 1]^2 is the average camera's view; a camera moved sideways sees past it, and its
    border rays (14% of fern's) would leave the grid through the sides and show the
    background. NDC rays are straight, so their two ends bound them."""
    half = np.ones(2)
    for i in range(len(cams)):
        origins, dirs = image_rays(cams, i)
        ndc_o, ndc_d = to_ndc(origins, dirs, cams.width, cams.height, focal)
        for end in (ndc_o, ndc_o + ndc_d):
            half = np.maximum(half, end[..., :2].abs().amax(dim=(0, 1)).double().numpy())
    return float(half[0]), float(half[1])


def load_llff(folder: Path, downscale: int, background, holdout_every: int) -> Scene:
    """Load an LLFF folder; every ``holdout_every``-th view (0, N, 2N, ...) is the test split."""
    poses_path = folder / "poses_bounds.npy"
    poses, bounds = read_poses_bounds(poses_path)
    image_dir, extra = choose_folder(folder, downscale)
    paths = sorted(p for p in image_dir.iterdir() if p.suffix in IMAGE_SUFFIXES and not p.name.startswith("."))
    if len(paths) != len(poses):
        raise SceneError(image_dir, f"holds {len(paths)} images but {poses_path.name} has {len(poses)} poses")
    names = [p.stem for p in paths]
    images, alpha, (h, w) = load_images(paths, extra, background or WHITE)

    full_h, full_w, full_focal = poses[0, :, 4]
    ratio = w / full_w
    if abs(h - full_h * ratio) > 1.0:
        raise SceneError(image_dir, f"images are {w}x{h}, not a downscale of the poses' {full_w:g}x{full_h:g}")
    # [down, right, back] -> [right, up, back]
    rot = np.concatenate([poses[:, :, 1:2], -poses[:, :, 0:1], poses[:, :, 2:4]], axis=2)
    c2w = np.tile(np.eye(4), (len(poses), 1, 1))
    c2w[:, :3, :4] = rot
    check_rigid(c2w, names, poses_path)
    c2w = normalize_poses(c2w, bounds)

    focal = full_focal * ratio
    cams = Cameras(c2w=c2w, fx=focal, fy=focal, cx=w / 2, cy=h / 2, width=w, height=h).scaled(extra)
    is_test = np.arange(len(paths)) % holdout_every == 0
    splits = {}
    for split_name, mask in (("train", ~is_test), ("test", is_test)):
        idx = torch.from_numpy(np.nonzero(mask)[0])
        splits[split_name] = Split(
            images=images[idx],
            cameras=cams.subset(idx),
            names=[names[i] for i in idx.tolist()],
            alpha=None if alpha is None else alpha[idx],
        )
    half_x, half_y = ndc_half_extent(splits["train"].cameras, float(cams.fx[0]))
    return Scene(
        name=folder.name,
        format="llff",
        splits=splits,
        background=scene_background(background, alpha is not None),
        center=(0.0, 0.0, 0.0),
        radius=(half_x, half_y, 1.0),
        near=0.0,
        far=1.0,
        ndc=True,
        ndc_focal=float(cams.fx[0]),
        holdout=f"every {holdout_every}th view (0, {holdout_every}, {2 * holdout_every}, ...) held out, in file-name order",
    )
