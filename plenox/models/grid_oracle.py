"""Plain-torch Plenoxels renderer: slow, dense and obviously correct.

It is the oracle the kernels are tested against: the same sample positions, sigma gate,
colour clamp, early stop and background as ``kernels.raymarch.march_ray`` (and, for a grid
with a background model, ``march_background``), with every gradient left to torch
autograd. No empty-space skipping: empty samples read zero.
"""

import math

import torch

from plenox.kernels.raymarch import BG_SHELL
from plenox.models import background as msi
from plenox.models.grid import SparseGrid, trilinear
from plenox.models.sh import eval_sh_basis


def ray_samples(grid: SparseGrid, origins: torch.Tensor, dirs: torch.Tensor, step: float):
    """Sample positions of each ray, padded to the longest ray.

    Returns gpos (M, S, 3) grid coordinates, t_world (M, S) world distance from the
    origin, valid (M, S) bool, world_step (M,) world length of one step.
    """
    scale, offset = (torch.from_numpy(a).to(origins) for a in grid.scale_offset())
    res = torch.tensor(grid.resolution, dtype=origins.dtype, device=origins.device)
    unit = dirs / dirs.norm(dim=-1, keepdim=True)
    g_origin = origins * scale + offset
    g_dir = unit * scale
    world_per_unit = 1.0 / g_dir.norm(dim=-1)
    g_dir = g_dir * world_per_unit[:, None]

    with torch.no_grad():
        safe = torch.where(g_dir == 0, torch.ones_like(g_dir), g_dir)
        t1 = (-0.5 - g_origin) / safe
        t2 = (res - 0.5 - g_origin) / safe
        inside = (g_origin >= -0.5) & (g_origin <= res - 0.5)
        big = torch.full_like(t1, float("inf"))
        t_near = torch.where(g_dir == 0, torch.where(inside, -big, big), torch.minimum(t1, t2))
        t_far = torch.where(g_dir == 0, torch.where(inside, big, -big), torch.maximum(t1, t2))
        tmin = t_near.max(dim=-1).values.clamp(min=0.0)
        tmax = t_far.min(dim=-1).values
        hit = tmin <= tmax
        n_steps = torch.where(hit, torch.floor((tmax - tmin) / step) + 1, torch.zeros_like(tmin)).long()
        n_max = int(n_steps.max()) if n_steps.numel() else 0
        k = torch.arange(n_max, dtype=origins.dtype, device=origins.device)
        t = torch.where(hit, tmin, torch.zeros_like(tmin))[:, None] + k[None, :] * step
        valid = k[None, :] < n_steps[:, None]
    gpos = g_origin[:, None, :] + t[..., None] * g_dir[:, None, :]
    return gpos, t * world_per_unit[:, None], valid, world_per_unit * step


def background_samples(grid: SparseGrid, origins: torch.Tensor, dirs: torch.Tensor, step: float):
    """The background's samples of each ray (as ``kernels.raymarch.march_background``).

    Returns values (M, n, 4) raw [density, r, g, b], t_world (M, n) world distance from the
    origin, dt (M, n) the inverse-radius interval times the world length of a normalised
    unit, valid (M, n) bool; n = int(L / step) + 2 spheres."""
    bg = grid.background
    scale, offset = (torch.from_numpy(a).to(origins) for a in grid.scale_offset())
    res = torch.tensor(grid.resolution, dtype=origins.dtype, device=origins.device)
    unit = dirs / dirs.norm(dim=-1, keepdim=True)
    g_dir = unit * scale
    world_per_unit = 1.0 / g_dir.norm(dim=-1)
    n_dir = g_dir * world_per_unit[:, None] * 2.0 / res
    n_len = n_dir.norm(dim=-1)
    n_dir = n_dir / n_len[:, None]
    n_origin = (origins * scale + offset + 0.5) * 2.0 / res - 1.0
    world_per_n = world_per_unit / n_len

    b = (n_origin * n_dir).sum(-1)
    oo = (n_origin * n_origin).sum(-1)
    start = torch.where(b < 0, torch.sqrt(torch.clamp(oo - b * b, min=0.0)) + BG_SHELL, torch.sqrt(oo))
    inner = torch.clamp(start, min=1.0)
    n = int(bg.layers / step) + 2
    r = n / (n - torch.arange(n, dtype=origins.dtype, device=origins.device) - 0.5)      # (n,)
    disc = b[:, None] ** 2 - oo[:, None] + r[None, :] ** 2
    valid = (r[None, :] >= inner[:, None]) & (disc >= 0)
    t = torch.sqrt(torch.clamp(disc, min=0.0)) - b[:, None]
    invr = 1.0 / r
    # Each sample covers the inverse radii since the previous valid one (1 / inner for the first).
    prev = torch.cat([torch.full_like(b[:, None], math.inf), invr[None, :-1].expand(b.shape[0], -1)], dim=1)
    first = valid & ~torch.cat([torch.zeros_like(valid[:, :1]), valid[:, :-1]], dim=1)
    prev = torch.where(first, 1.0 / inner[:, None], prev)
    dt = (prev - invr[None, :]) * world_per_n[:, None]
    units = (n_origin[:, None, :] + t[..., None] * n_dir[:, None, :]) * invr[None, :, None]
    z = ((1.0 - invr) * bg.layers - 0.5)[None, :].expand_as(t)
    values = msi.sample(bg, units, z)
    return values, t * world_per_n[:, None], torch.where(valid, dt, torch.zeros_like(dt)), valid


def render_reference(grid: SparseGrid, origins: torch.Tensor, dirs: torch.Tensor, step: float = 0.5,
                     sigma_thresh: float = 1e-8, stop_thresh: float = 1e-7, background=(1.0, 1.0, 1.0)):
    """Render rays with autograd through ``grid.density`` and ``grid.sh`` (and the grid's
    background model's density and rgb, whose samples follow the grid's along each ray).

    origins, dirs: (M, 3) world space (dirs need not be unit length). Returns a dict with
    rgb (M, 3), depth (M,) world units and acc (M,) opacity.
    """
    gpos, t_world, valid, world_step = ray_samples(grid, origins, dirs, step)
    m, s = valid.shape
    data = torch.cat([grid.density[:, None], grid.sh], dim=1)
    values = trilinear(grid.links, data, gpos.reshape(-1, 3)).reshape(m, s, data.shape[1])
    sigma = values[..., 0]
    active = valid & (sigma > sigma_thresh)
    sigma = torch.where(active, sigma, torch.zeros_like(sigma))
    alpha = 1.0 - torch.exp(-sigma * world_step[:, None])
    b = grid.basis_dim
    unit = dirs / dirs.norm(dim=-1, keepdim=True)
    basis = eval_sh_basis(unit, b)
    coeffs = values[..., 1:].reshape(m, s, 3, b)
    color = torch.clamp((coeffs * basis[:, None, None, :]).sum(-1) + 0.5, min=0.0)
    if grid.background is not None:
        # The background's samples come after the grid's, in one transmittance.
        bg_values, bg_t, bg_dt, bg_valid = background_samples(grid, origins, dirs, step)
        bg_sigma = torch.where(bg_valid & (bg_values[..., 0] > sigma_thresh), bg_values[..., 0],
                               torch.zeros_like(bg_dt))
        alpha = torch.cat([alpha, 1.0 - torch.exp(-bg_sigma * bg_dt)], dim=1)
        color = torch.cat([color, torch.clamp(msi.SH_C0 * bg_values[..., 1:] + 0.5, min=0.0)], dim=1)
        t_world = torch.cat([t_world, bg_t], dim=1)
    survive = torch.cumprod(1.0 - alpha, dim=1)
    trans_before = torch.cat([torch.ones_like(survive[:, :1]), survive[:, :-1]], dim=1)
    # The kernel stops after the first sample that takes transmittance under stop_thresh.
    included = (trans_before.detach() >= stop_thresh).to(alpha.dtype)
    weights = trans_before * alpha * included
    trans_final = torch.prod(1.0 - alpha * included, dim=1)
    bg = torch.as_tensor(background, dtype=color.dtype, device=color.device)
    rgb = (weights[..., None] * color).sum(1) + trans_final[:, None] * bg
    depth = (weights * t_world).sum(1)
    return {"rgb": rgb, "depth": depth, "acc": 1.0 - trans_final}


@torch.no_grad()
def max_weights_reference(grid: SparseGrid, origins: torch.Tensor, dirs: torch.Tensor, step: float = 0.5,
                          sigma_thresh: float = 1e-8, stop_thresh: float = 1e-7) -> torch.Tensor:
    """Per-voxel largest sample weight T_i * alpha_i over the rays (N,), densely in torch."""
    gpos, _, valid, world_step = ray_samples(grid, origins, dirs, step)
    m, s = valid.shape
    data = grid.density.detach()[:, None]
    sigma = trilinear(grid.links, data, gpos.reshape(-1, 3)).reshape(m, s)
    active = valid & (sigma > sigma_thresh)
    sigma = torch.where(active, sigma, torch.zeros_like(sigma))
    alpha = 1.0 - torch.exp(-sigma * world_step[:, None])
    survive = torch.cumprod(1.0 - alpha, dim=1)
    trans_before = torch.cat([torch.ones_like(survive[:, :1]), survive[:, :-1]], dim=1)
    weights = trans_before * alpha * (trans_before >= stop_thresh) * active
    out = torch.zeros(grid.n_voxels, dtype=weights.dtype)
    res = torch.tensor(grid.resolution)
    pos = torch.minimum(torch.clamp(gpos.reshape(-1, 3), min=0.0), (res - 1).to(gpos.dtype))
    lo = torch.minimum(pos.floor().long(), res - 2)
    flat_w = weights.reshape(-1)
    keep = flat_w > 0
    for corner in range(8):
        offs = torch.tensor([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        c = lo + offs
        rows = grid.links[c[:, 0], c[:, 1], c[:, 2]].long()
        sel = keep & (rows >= 0)
        out.scatter_reduce_(0, rows[sel], flat_w[sel], reduce="amax")
    return out
