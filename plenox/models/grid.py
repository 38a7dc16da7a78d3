"""SparseGrid: the Plenoxels voxel data structure.

A grid of resolution (Rx, Ry, Rz) covers the world box ``center +- radius``. ``links``
(int32, (Rx, Ry, Rz)) maps each voxel to a row of the packed data or, when negative, marks
it empty. Rows hold a raw density (``density``, (N,)) and SH colour coefficients (``sh``,
(N, 3B), channel-major). Voxel centres sit at integer grid coordinates; see
``world_to_grid`` for the exact transform (docs/architecture.md, Conventions; as svox2).
"""

from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from plenox.backend import GridArrays, backend_for
from plenox.io.atomic import atomic_write
from plenox.io.checked import read_npz
from plenox.kernels.raymarch import BLOCK_SHIFT
from plenox.models.background import Background
from plenox.models.sh import check_basis_dim
from plenox.errors import DamagedFileError, GridFileError

SVOX2_BASIS_TYPE_SH = 1
REQUIRED_NPZ_KEYS = ("radius", "center", "links", "density_data", "sh_data")
BACKGROUND_NPZ_KEYS = ("background_links", "background_data", "background_up")



def _as_vec3(value, name: str) -> torch.Tensor:
    vec = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
    if vec.numel() == 1:
        vec = vec.repeat(3)
    if vec.numel() != 3 or not torch.isfinite(vec).all():
        raise ValueError(f"{name} must be a finite scalar or 3-vector, got {value!r}")
    return vec


def check_resolution(resolution) -> tuple[int, int, int]:
    """Normalise an int or 3 ints to a resolution tuple; each axis needs at least 2 voxels."""
    res = (resolution,) * 3 if np.isscalar(resolution) else tuple(resolution)
    if len(res) != 3 or any(int(r) != r or r < 2 for r in res):
        raise ValueError(f"resolution must be 3 integers >= 2, got {resolution!r}")
    return tuple(int(r) for r in res)


def links_from_mask(mask: np.ndarray) -> np.ndarray:
    """int32 links numbering the True voxels of ``mask`` in C order; -1 elsewhere."""
    links = np.full(mask.shape, -1, dtype=np.int32)
    links[mask] = np.arange(int(mask.sum()), dtype=np.int32)
    return links


def dilate_mask(mask: np.ndarray, steps: int) -> np.ndarray:
    """Grow a bool voxel mask by ``steps`` steps of the 26-neighbourhood (svox2's pruning dilation)."""
    if steps <= 0:
        return mask
    return ndimage.binary_dilation(mask, structure=np.ones((3, 3, 3), bool), iterations=steps)


def block_occupancy(links: np.ndarray) -> np.ndarray:
    """Block occupancy for empty-space skipping, uint8 (nbx, nby, nbz).

    A cell (i, j, k) spans voxels i..i+1 (per axis) and is occupied when any of its 8
    corners is linked; a block groups 2**BLOCK_SHIFT cells per axis and is occupied when
    any of its cells is.
    """
    size = 1 << BLOCK_SHIFT
    voxels = links >= 0
    cells = voxels[:-1, :-1, :-1].copy()
    for di in (0, 1):
        for dj in (0, 1):
            for dk in (0, 1):
                cells |= voxels[di:di + cells.shape[0], dj:dj + cells.shape[1], dk:dk + cells.shape[2]]
    nb = [-(-c // size) for c in cells.shape]
    padded = np.zeros([n * size for n in nb], dtype=bool)
    padded[:cells.shape[0], :cells.shape[1], :cells.shape[2]] = cells
    blocks = padded.reshape(nb[0], size, nb[1], size, nb[2], size).any(axis=(1, 3, 5))
    return blocks.astype(np.uint8)


class SparseGrid(torch.nn.Module):
    """Sparse voxel grid with density and SH parameters.

    links: int32 (Rx, Ry, Rz); density: (N,) raw sigma; sh: (N, 3 * basis_dim);
    center, radius: world box (3,) in world units; background: what lies outside the box's
    inscribed sphere (plenox.models.background), or None (then nothing is behind the box
    but the render options' background colour).
    """

    def __init__(self, links, density, sh, center, radius, basis_dim: int, background: Background | None = None):
        super().__init__()
        check_basis_dim(basis_dim)
        links = torch.as_tensor(links)
        if links.dtype != torch.int32 or links.dim() != 3:
            raise ValueError(f"links must be an int32 3-D array, got {links.dtype} {tuple(links.shape)}")
        check_resolution(tuple(links.shape))
        n_rows = int((links >= 0).sum())
        if links.numel() and int(links.max()) >= density.shape[0]:
            raise ValueError("links point past the end of the data rows")
        if density.dim() != 1 or sh.dim() != 2 or sh.shape != (density.shape[0], 3 * basis_dim):
            raise ValueError(f"density must be (N,) and sh (N, {3 * basis_dim}), "
                             f"got {tuple(density.shape)} and {tuple(sh.shape)}")
        if n_rows != density.shape[0]:
            raise ValueError(f"{n_rows} linked voxels but {density.shape[0]} data rows")
        self.register_buffer("links", links.contiguous())
        self.density = torch.nn.Parameter(density.detach().contiguous())
        self.sh = torch.nn.Parameter(sh.detach().contiguous())
        self.register_buffer("center", _as_vec3(center, "center"))
        self.register_buffer("radius", _as_vec3(radius, "radius"))
        if (self.radius <= 0).any():
            raise ValueError(f"radius must be positive, got {self.radius.tolist()}")
        self.basis_dim = basis_dim
        if background is not None and background.density.dtype != self.density.dtype:
            raise ValueError(f"background must share the grid's dtype {self.density.dtype}, "
                             f"got {background.density.dtype}")
        self.background = background
        self._occupancy = None
        self._active = None          # (cache key, density-aware block occupancy)
        self._density_epoch = 0      # bumped by mark_density_changed after every in-place write

    # ----- construction -------------------------------------------------------------
    @classmethod
    def create(cls, resolution, center=0.0, radius=1.0, basis_dim: int = 9, density_init: float = 0.1,
               sh_init: float = 0.0, mask=None, dtype=torch.float32) -> "SparseGrid":
        """A grid with every voxel allocated, or those where ``mask`` (bool (Rx, Ry, Rz)) is True."""
        res = check_resolution(resolution)
        check_basis_dim(basis_dim)
        if mask is None:
            mask = np.ones(res, dtype=bool)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != res:
            raise ValueError(f"mask shape {mask.shape} does not match resolution {res}")
        n = int(mask.sum())
        density = torch.full((n,), float(density_init), dtype=dtype)
        sh = torch.full((n, 3 * basis_dim), float(sh_init), dtype=dtype)
        return cls(torch.from_numpy(links_from_mask(mask)), density, sh, center, radius, basis_dim)

    @classmethod
    def sphere(cls, resolution, center=0.0, radius=1.0, **kwargs) -> "SparseGrid":
        """A grid allocating only the voxels whose centres lie in the box's inscribed ellipsoid."""
        res = check_resolution(resolution)
        axes = [(np.arange(r) + 0.5) / r * 2.0 - 1.0 for r in res]
        gx, gy, gz = np.meshgrid(*axes, indexing="ij")
        return cls.create(res, center, radius, mask=gx ** 2 + gy ** 2 + gz ** 2 <= 1.0, **kwargs)

    # ----- geometry -----------------------------------------------------------------
    @property
    def resolution(self) -> tuple[int, int, int]:
        return tuple(self.links.shape)

    @property
    def n_voxels(self) -> int:
        return int(self.density.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes the grid's arrays (links, density, sh, and the background's) take in memory."""
        own = sum(t.numel() * t.element_size() for t in (self.links, self.density, self.sh))
        return own + (self.background.nbytes if self.background is not None else 0)

    def scale_offset(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, offset), float64 (3,): grid = world * scale + offset."""
        res = torch.tensor(self.resolution, dtype=torch.float64)
        scale = res / (2.0 * self.radius.cpu())
        offset = res / 2.0 - 0.5 - self.center.cpu() * scale
        return scale.numpy(), offset.numpy()

    def world_to_grid(self, points: torch.Tensor) -> torch.Tensor:
        """World points (..., 3) -> grid coordinates (..., 3) (voxel centres at integers)."""
        scale, offset = self.scale_offset()
        return points * torch.from_numpy(scale).to(points) + torch.from_numpy(offset).to(points)

    def grid_to_world(self, coords: torch.Tensor) -> torch.Tensor:
        """Grid coordinates (..., 3) -> world points (..., 3)."""
        scale, offset = self.scale_offset()
        return (coords - torch.from_numpy(offset).to(coords)) / torch.from_numpy(scale).to(coords)

    def voxel_centers(self) -> torch.Tensor:
        """World positions (Rx, Ry, Rz, 3) float64 of every voxel centre."""
        axes = [torch.arange(r, dtype=torch.float64) for r in self.resolution]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
        return self.grid_to_world(coords)

    def occupancy(self) -> torch.Tensor:
        """Block occupancy (uint8 tensor on the grid's device) of the links, computed once
        (links never change in place: resample and prune make new grids)."""
        if self._occupancy is None or self._occupancy.device != self.links.device:
            occ = block_occupancy(self.links.cpu().numpy())
            self._occupancy = torch.from_numpy(occ).to(self.links.device)
        return self._occupancy

    def active_occupancy(self, sigma_thresh: float) -> torch.Tensor:
        """Block occupancy counting only voxels with density > sigma_thresh, on the grid's device.

        Exact for rendering and gradients (see kernels.raymarch.block_active). Cached until the
        density changes: whoever writes ``density`` in place (the optimiser) must call
        ``mark_density_changed``.
        """
        key = (self.density.device, self._density_epoch, float(sigma_thresh))
        if self._active is None or self._active[0] != key:
            occ = torch.empty(self.occupancy().shape, dtype=torch.uint8, device=self.links.device)
            backend_for(self.density).active_blocks(self.links, self.density.detach(), sigma_thresh, occ)
            self._active = (key, occ)
        return self._active[1]

    def mark_density_changed(self) -> None:
        """Invalidate caches derived from the density after an in-place write."""
        self._density_epoch += 1

    def kernel_arrays(self, sigma_thresh: float) -> GridArrays:
        """The grid as the kernels read it, with the block occupancy of density > sigma_thresh."""
        scale, offset = self.scale_offset()
        if self.background is not None:
            bg = self.background.kernel_arrays()
        else:
            bg = (torch.empty((0, 0), dtype=torch.int32, device=self.links.device),
                  self.density.new_empty((0, 0)), self.density.new_empty((0, 0)))
        return GridArrays(self.links, self.density.detach(), self.sh.detach(), self.basis_dim,
                          self.active_occupancy(sigma_thresh), scale, offset, *bg)

    def voxel_mask(self, rows: torch.Tensor) -> np.ndarray:
        """bool (Rx, Ry, Rz): True at the linked voxels whose row is True in ``rows`` (bool (N,))."""
        links = self.links.cpu().numpy()
        mask = np.zeros(links.shape, dtype=bool)
        mask[links >= 0] = rows.cpu().numpy()[links[links >= 0]]
        return mask

    # ----- sampling -----------------------------------------------------------------
    def sample(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Trilinear density (M,) and SH (M, 3B) at world points (M, 3); differentiable."""
        gpos = self.world_to_grid(points.to(self.density.dtype))
        values = trilinear(self.links, torch.cat([self.density[:, None], self.sh], dim=1), gpos)
        return values[:, 0], values[:, 1:]

    # ----- topology changes -----------------------------------------------------------
    def resample(self, resolution, keep=None) -> "SparseGrid":
        """A new grid of ``resolution`` over the same box, values trilinear from this one,
        on this grid's device.

        keep: optional bool (Rx', Ry', Rz') of new voxels to allocate (default: all).
        Voxel centres past the old grid's outer centres read the clamped border value. The
        background is kept as it is.
        """
        res = check_resolution(resolution)
        mask = np.ones(res, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
        if mask.shape != res:
            raise ValueError(f"keep mask shape {mask.shape} does not match resolution {res}")
        scale = torch.tensor(self.resolution, dtype=torch.float64) / torch.tensor(res, dtype=torch.float64)
        new_coords = torch.from_numpy(np.argwhere(mask)).to(torch.float64)
        old_coords = ((new_coords + 0.5) * scale - 0.5).to(self.links.device)
        with torch.no_grad():
            data = torch.cat([self.density[:, None], self.sh], dim=1)
            values = trilinear(self.links, data.to(torch.float64), old_coords).to(self.density.dtype)
        return SparseGrid(torch.from_numpy(links_from_mask(mask)), values[:, 0], values[:, 1:],
                          self.center, self.radius, self.basis_dim, self.background).to(self.links.device)

    def prune(self, keep, dilate: int = 0) -> "SparseGrid":
        """A new grid keeping the linked voxels where ``keep`` (bool (Rx, Ry, Rz)) is True,
        after growing ``keep`` by ``dilate`` steps of the 26-neighbourhood; on this grid's device.
        The background is kept as it is."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != self.resolution:
            raise ValueError(f"keep mask shape {keep.shape} does not match resolution {self.resolution}")
        keep = dilate_mask(keep, dilate)
        old_links = self.links.cpu().numpy()
        mask = keep & (old_links >= 0)
        rows = torch.from_numpy(old_links[mask].astype(np.int64)).to(self.links.device)
        return SparseGrid(torch.from_numpy(links_from_mask(mask)), self.density.detach()[rows],
                          self.sh.detach()[rows], self.center, self.radius, self.basis_dim,
                          self.background).to(self.links.device)

    # ----- files ----------------------------------------------------------------------
    def save(self, path, sh_dtype=np.float16) -> None:
        """Write an svox2-compatible npz atomically (plenox.io.atomic).

        sh is stored as ``sh_dtype`` (float16 as svox2; float32 for exact checkpoints); a
        background as float32 under svox2's key names (Background.npz_arrays).
        Refuses to write NaN or Inf.
        """
        path = Path(path)
        density = self.density.detach().cpu().numpy().astype(np.float32)
        sh = self.sh.detach().cpu().numpy().astype(np.float32)
        if not (np.isfinite(density).all() and np.isfinite(sh).all()):
            raise ValueError(f"refusing to write {path}: the grid holds NaN or Inf values")
        arrays = dict(radius=self.radius.cpu().numpy().astype(np.float32),
                      center=self.center.cpu().numpy().astype(np.float32), links=self.links.cpu().numpy(),
                      density_data=density[:, None], sh_data=sh.astype(sh_dtype),
                      basis_type=np.array(SVOX2_BASIS_TYPE_SH))
        if self.background is not None:
            arrays.update(self.background.npz_arrays())
            if not np.isfinite(arrays["background_data"]).all():
                raise ValueError(f"refusing to write {path}: the background holds NaN or Inf values")
        atomic_write(path, lambda tmp: np.savez(tmp, **arrays))

    @classmethod
    def load(cls, path, dtype=torch.float32) -> "SparseGrid":
        """Read a grid written by ``save`` or by svox2 (``ckpt.npz``); GridFileError if malformed."""
        path = Path(path)
        try:
            arrays = read_npz(path, REQUIRED_NPZ_KEYS)
        except DamagedFileError as err:
            raise GridFileError(f"{path}: cannot read grid file: {err.problem}") from None
        if any(arrays[k].dtype.kind not in "iuf" for k in REQUIRED_NPZ_KEYS):
            raise GridFileError(f"{path}: is not a grid file (non-numeric arrays)")
        if int(np.asarray(arrays.get("basis_type", SVOX2_BASIS_TYPE_SH)).reshape(-1)[:1].sum()) != SVOX2_BASIS_TYPE_SH:
            raise GridFileError(f"{path}: only the SH basis (basis_type 1) is supported")
        sh = arrays["sh_data"]
        if sh.ndim != 2 or sh.shape[1] % 3:
            raise GridFileError(f"{path}: sh_data must be (N, 3B), got {sh.shape}")
        density = arrays["density_data"].reshape(-1)
        if not (np.isfinite(density).all() and np.isfinite(sh).all()):
            raise GridFileError(f"{path}: holds NaN or Inf values (a damaged file)")
        background = Background.from_npz(arrays, path, dtype)
        try:
            return cls(torch.from_numpy(arrays["links"].astype(np.int32)),
                       torch.from_numpy(density.astype(np.float32)).to(dtype),
                       torch.from_numpy(sh.astype(np.float32)).to(dtype),
                       arrays["center"], arrays["radius"], sh.shape[1] // 3, background)
        except (ValueError, TypeError, RuntimeError) as err:
            raise GridFileError(f"{path}: not a valid grid ({err})") from None

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, voxels={self.n_voxels}, basis_dim={self.basis_dim}"


def trilinear(links: torch.Tensor, data: torch.Tensor, gpos: torch.Tensor) -> torch.Tensor:
    """Trilinear interpolation of packed rows at grid coordinates, as the kernels sample.

    links: int32 (Rx, Ry, Rz); data: (N, C); gpos: (M, 3) grid coordinates.
    Coordinates clamp to [0, R-1]; empty corners read zero. Returns (M, C), differentiable
    with respect to ``data``.
    """
    res = torch.tensor(links.shape, dtype=gpos.dtype, device=gpos.device)
    pos = torch.minimum(torch.clamp(gpos, min=0.0), res - 1)
    lo = torch.minimum(pos.floor().long(), (res - 2).long())
    frac = (pos - lo).to(data.dtype)
    out = data.new_zeros(gpos.shape[0], data.shape[1])
    for corner in range(8):
        offs = [(corner >> 2) & 1, (corner >> 1) & 1, corner & 1]
        row = links[lo[:, 0] + offs[0], lo[:, 1] + offs[1], lo[:, 2] + offs[2]].long()
        w = torch.ones_like(frac[:, 0])
        for axis in range(3):
            w = w * (frac[:, axis] if offs[axis] else 1.0 - frac[:, axis])
        valid = row >= 0
        vals = data[row.clamp(min=0)] * valid[:, None].to(data.dtype)
        out = out + w[:, None] * vals
    return out
