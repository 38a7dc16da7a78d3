"""The background of an unbounded scene: svox2's multi-sphere image (MSI) behind the voxel grid.

Everything outside the foreground box's inscribed sphere is L concentric spheric layers, each
an equirectangular image of 2R x R pixels holding a raw density and raw RGB per pixel; the
layers sit at inverse radii uniform between the unit sphere (1) and infinity (0) of the box's
normalised coordinates (the box is [-1, 1]^3 there). A ray composites the grid's samples and
then the background's, in one transmittance (the kernel is ``kernels.raymarch.march_background``;
``plenox.models.grid_oracle`` is its plain-torch reference). A grid without a background
renders exactly as before: the kernels see arrays with no rows and skip it.

Layout (as svox2's ``background_links`` / ``background_data``): ``links`` int32 (2R, R) maps
each pixel to a row (negative: empty, reads zero); ``density`` (K, L) and ``rgb`` (K, L, 3)
hold the rows; a sample's colour is max(C0 * rgb + 0.5, 0) (svox2's scaling). The map's
poles are on the box's z axis (up in plenox's object scenes: the built-in scene, Blender,
framed captures), where svox2 puts them on y: ``reorient`` resamples between the two, so an
svox2 checkpoint's background can be read and one written for svox2.
"""

import math

import numpy as np
import torch

from plenox.errors import GridFileError

SH_C0 = 0.28209479177387814
# grid.npz keys: svox2's names, plus the pole axis (absent in svox2's files: y).
NPZ_LINKS, NPZ_DATA, NPZ_UP = "background_links", "background_data", "background_up"
UP_Z, UP_Y_SVOX2 = 2, 1


class Background(torch.nn.Module):
    """A multi-sphere image: links int32 (2R, R); density (K, L) raw sigma; rgb (K, L, 3) raw colour;
    ``up`` the axis of the map's poles: UP_Z (plenox's, what the kernels render) or UP_Y_SVOX2
    (an svox2 file's, only on the way in or out: see ``reorient``)."""

    def __init__(self, links, density, rgb, up: int = UP_Z):
        super().__init__()
        if up not in (UP_Z, UP_Y_SVOX2):
            raise ValueError(f"background pole axis must be {UP_Z} (z) or {UP_Y_SVOX2} (y), got {up}")
        self.up = up
        links = torch.as_tensor(links)
        if links.dtype != torch.int32 or links.dim() != 2 or links.shape[0] != 2 * links.shape[1] \
                or links.shape[1] < 2:
            raise ValueError(f"background links must be int32 (2R, R) with R >= 2, got {links.dtype} "
                             f"{tuple(links.shape)}")
        if density.dim() != 2 or density.shape[1] < 2 or rgb.shape != (*density.shape, 3):
            raise ValueError(f"background density must be (K, L >= 2) and rgb (K, L, 3), got "
                             f"{tuple(density.shape)} and {tuple(rgb.shape)}")
        n_rows = int((links >= 0).sum())
        if n_rows != density.shape[0] or (n_rows and int(links.max()) >= n_rows):
            raise ValueError(f"background links hold {n_rows} pixels but there are {density.shape[0]} rows")
        self.register_buffer("links", links.contiguous())
        self.density = torch.nn.Parameter(density.detach().contiguous())
        self.rgb = torch.nn.Parameter(rgb.detach().to(density.dtype).contiguous())

    @classmethod
    def create(cls, reso: int, layers: int, init_density: float = 0.1, init_rgb: float = 0.0,
               dtype=torch.float32) -> "Background":
        """Every pixel of a 2R x R map allocated, with ``layers`` layers of the given raw values."""
        if reso < 2 or layers < 2:
            raise ValueError(f"a background needs reso >= 2 and layers >= 2, got {reso} and {layers}")
        n = 2 * reso * reso
        links = torch.arange(n, dtype=torch.int32).reshape(2 * reso, reso)
        return cls(links, torch.full((n, layers), float(init_density), dtype=dtype),
                   torch.full((n, layers, 3), float(init_rgb), dtype=dtype))

    @property
    def reso(self) -> int:
        """R: the map is 2R pixels round and R from pole to pole."""
        return int(self.links.shape[1])

    @property
    def layers(self) -> int:
        return int(self.density.shape[1])

    @property
    def n_rows(self) -> int:
        return int(self.density.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.links, self.density, self.rgb))

    def kernel_arrays(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(links (2R, R), density (K, L), rgb (K, 3L)) as the kernels read them (no autograd)."""
        if self.up != UP_Z:
            raise ValueError("this background's map has svox2's poles (y): reorient it before rendering")
        return self.links, self.density.detach(), self.rgb.detach().view(self.n_rows, 3 * self.layers)

    def voxels(self) -> "BackgroundVoxels":
        """The background as a voxel grid of (longitude, latitude, layer), for TV and RMSProp."""
        return BackgroundVoxels(self)

    def describe(self) -> str:
        return (f"background: {self.layers} layers of {2 * self.reso}x{self.reso} pixels "
                f"({self.n_rows:,} pixels allocated) from the box's inscribed sphere to infinity")

    # ----- files ----------------------------------------------------------------------
    def npz_arrays(self) -> dict:
        """npz entries: svox2's key names and (K, L, 4) [r, g, b, sigma] layout, float32, plus
        the pole axis (which svox2 ignores; a file without it is svox2's, poles on y)."""
        data = torch.cat([self.rgb.detach(), self.density.detach()[..., None]], dim=-1).cpu().numpy()
        return {NPZ_LINKS: self.links.cpu().numpy(), NPZ_DATA: data.astype(np.float32), NPZ_UP: np.array(self.up)}

    @classmethod
    def from_npz(cls, arrays: dict, path, dtype=torch.float32) -> "Background | None":
        """The background stored in ``arrays`` (a grid.npz's or svox2 ckpt.npz's entries), None if
        there is none; an svox2 file's map (poles on y) is resampled to plenox's (poles on z)."""
        if NPZ_DATA not in arrays:
            return None
        data, links = arrays[NPZ_DATA], arrays.get(NPZ_LINKS)
        if links is None or data.ndim != 3 or data.shape[2] != 4:
            raise GridFileError(f"{path}: background_data must be (K, L, 4) with background_links beside it")
        data = torch.from_numpy(data.astype(np.float32)).to(dtype)
        up = int(arrays[NPZ_UP]) if NPZ_UP in arrays else UP_Y_SVOX2
        try:
            bg = cls(torch.from_numpy(links.astype(np.int32)), data[..., 3], data[..., :3], up)
        except ValueError as err:
            raise GridFileError(f"{path}: {err}") from None
        return bg if up == UP_Z else reorient(bg, to_svox2=False)

    def extra_repr(self) -> str:
        return f"reso={self.reso}, layers={self.layers}, rows={self.n_rows}, up={'yz'[self.up - 1]}"


class BackgroundVoxels:
    """A Background seen as a voxel grid of resolution (2R, R, L), which is what the grid's TV
    (plenox.training.regularizers) and sparse RMSProp (plenox.training.optimizer) read.

    links int32 (2R, R, L): voxel (i, j, l) is row ``links[i, j] * L + l``; density (K*L,)
    and sh (K*L, 3) alias the background's data (read anew at each access, so they follow it
    across devices). Longitude does not wrap here: TV across the map's seam is left out.
    """

    def __init__(self, background: Background):
        self._background = background
        layers = background.layers
        links = background.links.long()
        volume = links[..., None] * layers + torch.arange(layers, device=links.device)
        self.links = torch.where(links[..., None] >= 0, volume, -1).to(torch.int32).contiguous()

    @property
    def density(self) -> torch.Tensor:
        return self._background.density.detach().view(-1)

    @property
    def sh(self) -> torch.Tensor:
        return self._background.rgb.detach().view(-1, 3)

    @property
    def resolution(self) -> tuple[int, int, int]:
        return tuple(self.links.shape)

    @property
    def n_voxels(self) -> int:
        return self._background.n_rows * self._background.layers

    def mark_density_changed(self) -> None:
        """Nothing is cached on the background's density."""


# ----- sampling in torch: the reference's lookups and the resampling between pole axes ------
def equirect(units: torch.Tensor, reso: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Map coordinates (x in [0, 2R], y in [0, R]) of unit directions (..., 3), poles on z
    (as ``kernels.raymarch.bg_corners``)."""
    lat = torch.asin(units[..., 2].clamp(-1.0, 1.0))
    lon = torch.atan2(units[..., 1], units[..., 0])
    x = (reso * (1.0 + lon / math.pi)).clamp(0.0, 2.0 * reso)
    return x, reso * (0.5 - lat / math.pi)


def pixel_corners(x: torch.Tensor, y: torch.Tensor, reso: int):
    """The 4 map pixels around coordinates (x, y): [(i, j, weight)], longitude wrapping,
    latitude clamped to the rows (as ``kernels.raymarch.bg_corners``)."""
    lx = torch.clamp(x.floor().long(), max=2 * reso - 1)
    fx = x - lx
    yc = y.clamp(0.0, reso - 1.0)
    ly = torch.clamp(yc.floor().long(), max=reso - 2)
    fy = yc - ly
    nx = torch.where(lx + 1 < 2 * reso, lx + 1, torch.zeros_like(lx))
    return [(lx, ly, (1 - fx) * (1 - fy)), (lx, ly + 1, (1 - fx) * fy),
            (nx, ly, fx * (1 - fy)), (nx, ly + 1, fx * fy)]


def sample(background: Background, units: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Trilinear [raw density, raw r, g, b] (..., 4) at unit directions (..., 3) and layer
    coordinates z (...), differentiable in the background's data: the reference lookup."""
    data = torch.cat([background.density[..., None], background.rgb], dim=-1)   # (K, L, 4)
    layers = background.layers
    x, y = equirect(units, background.reso)
    zc = z.clamp(0.0, layers - 1.0)
    lz = torch.clamp(zc.floor().long(), max=layers - 2)
    fz = (zc - lz)[..., None].to(data.dtype)
    out = data.new_zeros(*units.shape[:-1], 4)
    for i, j, w in pixel_corners(x, y, background.reso):
        rows = background.links[i, j].long()
        linked = (rows >= 0)[..., None].to(data.dtype)
        safe = rows.clamp(min=0)
        value = data[safe, lz] * (1 - fz) + data[safe, lz + 1] * fz
        out = out + (w[..., None].to(data.dtype) * linked) * value
    return out


def reorient(background: Background, to_svox2: bool) -> Background:
    """The background resampled (bilinearly, per layer) to a map with its poles on svox2's y
    axis (``to_svox2``) or, from such a map, on plenox's z axis; the world is the same.

    svox2's map puts direction u at longitude atan2(u_x, u_z), latitude asin(u_y), which is
    plenox's map of the relabelled direction (u_z, u_x, u_y). Every pixel of the result is
    allocated. Lossy: for exchanging files with svox2, not for checkpoints."""
    if background.up != (UP_Z if to_svox2 else UP_Y_SVOX2):
        raise ValueError(f"the background's poles are already on {'y' if to_svox2 else 'z'}")
    reso, layers = background.reso, background.layers
    i, j = torch.meshgrid(torch.arange(2 * reso, dtype=torch.float64), torch.arange(reso, dtype=torch.float64),
                          indexing="ij")
    lon, lat = math.pi * (i / reso - 1.0), math.pi * (0.5 - j / reso)   # the target's pixel centres
    along, up = torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon)
    if to_svox2:   # target pixel direction (sin lon cos lat, sin lat, cos lon cos lat), read from plenox's map
        x, y = equirect(torch.stack([up, torch.sin(lat), along], dim=-1), reso)
    else:          # target pixel direction (cos lon cos lat, sin lon cos lat, sin lat), read from svox2's map
        units = torch.stack([along, up, torch.sin(lat)], dim=-1)
        x, y = equirect(units[..., [2, 0, 1]], reso)
    data = torch.cat([background.density.detach()[..., None], background.rgb.detach()], dim=-1).double().cpu()
    links = background.links.cpu()
    out = torch.zeros(2 * reso, reso, layers, 4, dtype=torch.float64)
    for pi, pj, w in pixel_corners(x, y, reso):
        rows = links[pi, pj].long()
        out += (w * (rows >= 0))[..., None, None] * data[rows.clamp(min=0)]
    out = out.reshape(-1, layers, 4).to(background.density.dtype)
    links = torch.arange(2 * reso * reso, dtype=torch.int32).reshape(2 * reso, reso)
    return Background(links, out[..., 0], out[..., 1:], UP_Y_SVOX2 if to_svox2 else UP_Z).to(background.density.device)
