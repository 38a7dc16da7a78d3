"""Plain-torch Plenoxels renderer: slow, dense and obviously correct.

It is the oracle the kernels are tested against: the same sample positions, sigma gate,
colour clamp, early stop and background as ``kernels.raymarch.march_ray``, with every
gradient left to torch autograd. No empty-space skipping: empty samples read zero.
"""

import torch

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


def render_reference(grid: SparseGrid, origins: torch.Tensor, dirs: torch.Tensor, step: float = 0.5,
                     sigma_thresh: float = 1e-8, stop_thresh: float = 1e-7, background=(1.0, 1.0, 1.0)):
    """Render rays with autograd through ``grid.density`` and ``grid.sh``.

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
    survive = torch.cumprod(1.0 - alpha, dim=1)
    trans_before = torch.cat([torch.ones_like(survive[:, :1]), survive[:, :-1]], dim=1)
    # The kernel stops after the first sample that takes transmittance under stop_thresh.
    included = (trans_before.detach() >= stop_thresh).to(alpha.dtype)
    weights = trans_before * alpha * included
    trans_final = torch.prod(1.0 - alpha * included, dim=1)

    b = grid.basis_dim
    unit = dirs / dirs.norm(dim=-1, keepdim=True)
    basis = eval_sh_basis(unit, b)
    coeffs = values[..., 1:].reshape(m, s, 3, b)
    color = torch.clamp((coeffs * basis[:, None, None, :]).sum(-1) + 0.5, min=0.0)
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
