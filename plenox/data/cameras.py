"""Pinhole cameras, ray generation and NeRF's NDC warp.

Conventions (docs/architecture.md): camera-to-world matrices are OpenGL style
(x right, y up, z back, so a camera looks down its -z axis); pixel (px, py) is
column px, row py with row 0 at the top, and its ray goes through the pixel
centre (px + 0.5, py + 0.5). Ray directions are the world image of the
camera-space vector (x, y, -1): their depth along the optical axis is 1, as in
the NeRF reference code, so they are not unit length.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

# Newton steps for inverting OpenCV distortion; nerfstudio uses 10, which
# converges to float precision for any lens a radiance field is fitted on.
_UNDISTORT_ITERS = 10


def _as_float_tensor(value, name: str) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.float32)
    if not torch.isfinite(t).all():
        raise ValueError(f"Cameras.{name} has non-finite values")
    return t


@dataclass
class Cameras:
    """A batch of N pinhole cameras sharing one image size.

    c2w: (N, 4, 4) float32 camera-to-world, OpenGL axes.
    fx, fy: (N,) float32 focal lengths in pixels (a scalar is broadcast to N).
    cx, cy: (N,) float32 principal point in pixels, measured from the image's
        top-left corner (so the centre of a W-wide image is W / 2).
    width, height: image size in pixels.
    distortion: (N, 4) OpenCV k1, k2, p1, p2, or None for an ideal pinhole.
    """

    c2w: Tensor
    fx: Tensor
    fy: Tensor
    cx: Tensor
    cy: Tensor
    width: int
    height: int
    distortion: Tensor | None = None

    def __post_init__(self):
        self.c2w = _as_float_tensor(self.c2w, "c2w")
        if self.c2w.ndim != 3 or self.c2w.shape[1:] != (4, 4):
            raise ValueError(f"Cameras.c2w must have shape (N, 4, 4), got {tuple(self.c2w.shape)}")
        n = self.c2w.shape[0]
        for name in ("fx", "fy", "cx", "cy"):
            t = _as_float_tensor(getattr(self, name), name)
            if t.ndim == 0:
                t = t.expand(n).clone()
            if t.shape != (n,):
                raise ValueError(f"Cameras.{name} must have shape ({n},), got {tuple(t.shape)}")
            setattr(self, name, t)
        if n and ((self.fx <= 0).any() or (self.fy <= 0).any()):
            raise ValueError("Cameras.fx and Cameras.fy must be positive")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value <= 0:
                raise ValueError(f"Cameras.{name} must be a positive integer, got {value!r}")
            setattr(self, name, int(value))
        if self.distortion is not None:
            self.distortion = _as_float_tensor(self.distortion, "distortion")
            if self.distortion.shape != (n, 4):
                raise ValueError(
                    f"Cameras.distortion must have shape ({n}, 4), got {tuple(self.distortion.shape)}"
                )

    def __len__(self) -> int:
        return self.c2w.shape[0]

    def subset(self, idx) -> Cameras:
        """The cameras selected by ``idx``: an int, slice, bool mask or LongTensor/list of indices.

        An int gives a batch of one camera, so the result is always a Cameras batch.
        """
        if isinstance(idx, int):
            idx = [idx]
        if isinstance(idx, (list, tuple)):
            idx = torch.as_tensor(idx) if len(idx) else torch.zeros(0, dtype=torch.long)
        picked = {}
        for f in fields(self):
            value = getattr(self, f.name)
            picked[f.name] = value[idx] if isinstance(value, Tensor) else value
        return Cameras(**picked)

    def scaled(self, factor: float) -> Cameras:
        """Cameras for images downscaled by ``factor`` (2 halves focal lengths, principal point and size).

        The new size is floor(size / factor), which is what area downscaling
        gives after cropping the ragged right and bottom edges; since the crop
        keeps the top-left corner, the principal point scales exactly.
        """
        factor = float(factor)
        if not (factor > 0 and factor != float("inf")):
            raise ValueError(f"scale factor must be a positive finite number, got {factor}")
        width, height = int(self.width // factor), int(self.height // factor)
        if width < 1 or height < 1:
            raise ValueError(f"downscaling {self.width}x{self.height} by {factor} leaves no pixels")
        return Cameras(
            c2w=self.c2w.clone(),
            fx=self.fx / factor,
            fy=self.fy / factor,
            cx=self.cx / factor,
            cy=self.cy / factor,
            width=width,
            height=height,
            distortion=None if self.distortion is None else self.distortion.clone(),
        )


def _distort(x: Tensor, y: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
    """OpenCV radial-tangential distortion of normalised coordinates (y down), k = (M, 4)."""
    k1, k2, p1, p2 = k.unbind(-1)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * k2)
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd


def _undistort(xd: Tensor, yd: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
    """Invert :func:`_distort` by Newton's method (as nerfstudio and instant-ngp do), in float64.

    xd, yd: (M,) distorted normalised coordinates in OpenCV axes (y down); k: (M, 4).
    """
    xd, yd, k = xd.double(), yd.double(), k.double()
    k1, k2, p1, p2 = k.unbind(-1)
    x, y = xd.clone(), yd.clone()
    for _ in range(_UNDISTORT_ITERS):
        rx, ry = _distort(x, y, k)
        rx, ry = rx - xd, ry - yd  # residuals
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * k2)
        dradial = 2 * k1 + 4 * k2 * r2  # 2 * d(radial)/d(r2)
        # Jacobian [[a, b], [b, d]] of the distortion at (x, y); this model's is symmetric.
        a = radial + x * x * dradial + 2 * p1 * y + 6 * p2 * x
        b = x * y * dradial + 2 * p1 * x + 2 * p2 * y
        d = radial + y * y * dradial + 6 * p1 * y + 2 * p2 * x
        det = a * d - b * b
        # A vanishing Jacobian means the lens model folds over here; stay put.
        ok = det.abs() > 1e-12
        safe = torch.where(ok, det, torch.ones_like(det))
        x = x - torch.where(ok, (rx * d - ry * b) / safe, torch.zeros_like(x))
        y = y - torch.where(ok, (ry * a - rx * b) / safe, torch.zeros_like(y))
    return x.float(), y.float()


def _check_index(name: str, t: Tensor, upper: int) -> Tensor:
    if not isinstance(t, Tensor):
        t = torch.as_tensor(t)
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.dtype.is_complex:
        raise ValueError(f"{name} must be an integer tensor, got {t.dtype}")
    if t.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {tuple(t.shape)}")
    if t.numel() and (t.min() < 0 or t.max() >= upper):
        raise ValueError(f"{name} must lie in [0, {upper}), got values in [{int(t.min())}, {int(t.max())}]")
    return t.long()


def _camera_dirs(px: Tensor, py: Tensor, fx, fy, cx, cy, distortion: Tensor | None) -> Tensor:
    """Camera-space directions (..., 3), depth 1, through pixel centres (px + 0.5, py + 0.5).

    px, py: integer pixel tensors; the intrinsics and ``distortion`` (..., 4)
    broadcast against them (per-ray gathers or one camera's scalars).
    """
    # Normalised coordinates in OpenCV axes (y down), where the distortion model lives.
    x = (px.float() + 0.5 - cx) / fx
    y = (py.float() + 0.5 - cy) / fy
    x, y = torch.broadcast_tensors(x, y)
    if distortion is not None:
        shape = x.shape
        x, y = _undistort(x.reshape(-1), y.reshape(-1), distortion.expand(*shape, 4).reshape(-1, 4))
        x, y = x.reshape(shape), y.reshape(shape)
    return torch.stack([x, -y, -torch.ones_like(x)], dim=-1)


def pixel_rays(cams: Cameras, cam_idx: Tensor, px: Tensor, py: Tensor) -> tuple[Tensor, Tensor]:
    """World-space rays through pixel centres.

    cam_idx, px, py: (M,) integer tensors: camera index, column and row (row 0 at the top).
    Returns origins (M, 3) and directions (M, 3), float32; a direction is the
    world image of the camera-space vector (x, y, -1), so its depth is 1. With
    distortion set, the observed (distorted) pixel is undistorted first.
    """
    cam_idx = _check_index("cam_idx", cam_idx, len(cams))
    px = _check_index("px", px, cams.width)
    py = _check_index("py", py, cams.height)
    if not (cam_idx.shape == px.shape == py.shape):
        raise ValueError(
            f"cam_idx, px and py must have the same shape, got "
            f"{tuple(cam_idx.shape)}, {tuple(px.shape)}, {tuple(py.shape)}"
        )
    dist = None if cams.distortion is None else cams.distortion[cam_idx]
    d_cam = _camera_dirs(px, py, cams.fx[cam_idx], cams.fy[cam_idx], cams.cx[cam_idx], cams.cy[cam_idx], dist)
    c2w = cams.c2w[:, :3, :][cam_idx]
    dirs = torch.einsum("mij,mj->mi", c2w[:, :, :3], d_cam)
    return c2w[:, :, 3].contiguous(), dirs


def image_rays(cams: Cameras, i: int) -> tuple[Tensor, Tensor]:
    """Rays for every pixel of camera ``i``: origins and directions, each (H, W, 3) float32.

    The same rays as :func:`pixel_rays` over the whole image, without per-ray gathers.
    """
    if not 0 <= int(i) < len(cams):
        raise ValueError(f"camera index {i} out of range for {len(cams)} cameras")
    i = int(i)
    px = torch.arange(cams.width)[None, :]
    py = torch.arange(cams.height)[:, None]
    dist = None if cams.distortion is None else cams.distortion[i]
    d_cam = _camera_dirs(px, py, cams.fx[i], cams.fy[i], cams.cx[i], cams.cy[i], dist)
    dirs = d_cam @ cams.c2w[i, :3, :3].T
    origins = cams.c2w[i, :3, 3].expand(cams.height, cams.width, 3).clone()
    return origins, dirs


def to_ndc(
    origins: Tensor, dirs: Tensor, width: int, height: int, focal: float, near: float = 1.0
) -> tuple[Tensor, Tensor]:
    """NeRF's ``ndc_rays``: warp forward-facing rays into normalised device coordinates.

    origins, dirs: (..., 3) world rays in a frame whose cameras look down -z
    (LLFF after recentring). Each origin is first moved to the plane z = -near;
    the NDC ray then runs from z = -1 (t = 0) to z = 1 (t = 1, infinite depth).
    width, height, focal: the image size and focal length in pixels.
    Returns NDC origins and directions, (..., 3) each.
    """
    if origins.shape != dirs.shape or origins.shape[-1:] != (3,):
        raise ValueError(
            f"origins and dirs must both have shape (..., 3), got {tuple(origins.shape)} and {tuple(dirs.shape)}"
        )
    if not (focal > 0 and width > 0 and height > 0 and near > 0):
        raise ValueError("to_ndc needs positive width, height, focal and near")
    t = -(near + origins[..., 2]) / dirs[..., 2]
    o = origins + t[..., None] * dirs
    ax = -2.0 * focal / width
    ay = -2.0 * focal / height
    ox, oy, oz = o.unbind(-1)
    dx, dy, dz = dirs.unbind(-1)
    ndc_o = torch.stack([ax * ox / oz, ay * oy / oz, 1.0 + 2.0 * near / oz], dim=-1)
    ndc_d = torch.stack([ax * (dx / dz - ox / oz), ay * (dy / dz - oy / oz), -2.0 * near / oz], dim=-1)
    return ndc_o, ndc_d


def ndc_view_dirs(ndc_origins: Tensor, ndc_dirs: Tensor, width: int, height: int, focal: float) -> Tensor:
    """Unit world-space directions of rays given in NDC (the inverse of :func:`to_ndc` for directions).

    NeRF feeds its colour branch the world direction of an NDC ray; this recovers it from
    the NDC ray alone: x/z of the origin and dx/dz of the direction follow from the NDC
    x and y, and forward-facing rays travel towards -z.
    ndc_origins, ndc_dirs: (..., 3) as returned by to_ndc with the same width, height, focal.
    Returns (..., 3) unit vectors.
    """
    ax = -2.0 * focal / width
    ay = -2.0 * focal / height
    slope_x = (ndc_origins[..., 0] + ndc_dirs[..., 0]) / ax   # dx / dz
    slope_y = (ndc_origins[..., 1] + ndc_dirs[..., 1]) / ay   # dy / dz
    d = -torch.stack([slope_x, slope_y, torch.ones_like(slope_x)], dim=-1)
    return d / torch.linalg.vector_norm(d, dim=-1, keepdim=True)
