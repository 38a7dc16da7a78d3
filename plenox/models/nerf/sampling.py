"""Sample placement along rays: stratified coarse samples and hierarchical (inverse-CDF) fine samples.

Both follow the reference's render_rays / sample_pdf. Distances t are in units of the ray
direction's length (world units for unit directions; NDC depth in [0, 1] for NDC rays).
"""

import torch


def stratified_samples(near, far, n_samples: int, n_rays: int, perturb: bool,
                       generator: torch.Generator | None = None, lindisp: bool = False,
                       device=None) -> torch.Tensor:
    """Coarse sample distances, evenly spaced in depth (or in inverse depth), optionally jittered.

    Args:
        near, far: floats or tensors broadcastable to (n_rays, 1).
        n_samples: samples per ray.
        n_rays: number of rays R.
        perturb: jitter each sample uniformly within its stratum (training) rather than
            at the evenly spaced positions (evaluation).
        generator: random source for the jitter.
        lindisp: space samples linearly in 1/t (the reference's option for unbounded
            360-degree scenes); off for Blender and for NDC rays.
        device: device of the result when near and far are floats.

    Returns:
        (R, n_samples) increasing distances in [near, far].
    """
    s = torch.linspace(0.0, 1.0, n_samples, device=device)
    near = torch.as_tensor(near, dtype=torch.float32, device=device)
    far = torch.as_tensor(far, dtype=torch.float32, device=device)
    if lindisp:
        t = 1.0 / (1.0 / near * (1.0 - s) + 1.0 / far * s)
    else:
        t = near * (1.0 - s) + far * s
    t = t.expand(n_rays, n_samples)
    if not perturb:
        return t.contiguous()
    # Strata run between neighbouring midpoints; the end strata are half-width, as in the reference.
    mids = 0.5 * (t[:, 1:] + t[:, :-1])
    upper = torch.cat((mids, t[:, -1:]), dim=-1)
    lower = torch.cat((t[:, :1], mids), dim=-1)
    u = torch.rand(t.shape, generator=generator, device=t.device)
    return lower + (upper - lower) * u


def pdf_uniforms(n_rays: int, n_samples: int, deterministic: bool,
                 generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """The CDF levels u that sample_pdf inverts: (R, n_samples).

    Deterministic: linspace(0, 1, n_samples) on every ray. Otherwise
    ``torch.rand((R, n_samples), generator=generator)``, so a caller holding a generator
    in the same state can reproduce them.
    """
    if deterministic:
        return torch.linspace(0.0, 1.0, n_samples, device=device).expand(n_rays, n_samples).contiguous()
    return torch.rand((n_rays, n_samples), generator=generator, device=device)


def invert_pdf(bins: torch.Tensor, weights: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear inverse CDF of the histogram ``weights`` over ``bins`` evaluated at u.

    Args:
        bins: (R, B + 1) increasing bin edges.
        weights: (R, B) non-negative bin masses; 1e-5 is added so all-zero rays sample uniformly.
        u: (R, N) CDF levels in [0, 1].

    Returns:
        (R, N) sample positions within [bins[:, 0], bins[:, -1]].
    """
    weights = weights + 1e-5
    pdf = weights / weights.sum(dim=-1, keepdim=True)
    cdf = torch.cat((torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=-1)), dim=-1)  # (R, B + 1)
    inds = torch.searchsorted(cdf, u.contiguous(), right=True)
    below = (inds - 1).clamp(min=0)
    above = inds.clamp(max=cdf.shape[-1] - 1)
    cdf_below, cdf_above = torch.gather(cdf, 1, below), torch.gather(cdf, 1, above)
    bins_below, bins_above = torch.gather(bins, 1, below), torch.gather(bins, 1, above)
    denom = cdf_above - cdf_below
    # u at or past the last CDF value gives below == above; the reference maps those to the edge.
    denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
    frac = (u - cdf_below) / denom
    return bins_below + frac * (bins_above - bins_below)


def sample_pdf(bins: torch.Tensor, weights: torch.Tensor, n_samples: int, deterministic: bool,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw n_samples positions per ray from the histogram ``weights`` over ``bins`` (reference sample_pdf).

    Args:
        bins: (R, B + 1) bin edges (the coarse sample midpoints in hierarchical sampling).
        weights: (R, B) bin masses (the coarse weights without the first and last).
        n_samples: samples per ray N.
        deterministic: evenly spaced CDF levels instead of uniform random ones.
        generator: random source when not deterministic.

    Returns:
        (R, N) positions, not sorted when random.
    """
    u = pdf_uniforms(bins.shape[0], n_samples, deterministic, generator, device=bins.device)
    return invert_pdf(bins, weights, u)


def hierarchical_samples(t_coarse: torch.Tensor, weights_coarse: torch.Tensor, n_fine: int,
                         deterministic: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """All distances the fine network evaluates: coarse plus importance samples, sorted.

    Args:
        t_coarse: (R, Sc) coarse distances.
        weights_coarse: (R, Sc) coarse rendering weights; gradients do not flow into them,
            so the coarse network is trained only by its own photometric loss.
        n_fine: importance samples per ray Sf.
        deterministic: evenly spaced CDF levels (evaluation).
        generator: random source for training.

    Returns:
        (R, Sc + Sf) sorted distances.
    """
    mids = 0.5 * (t_coarse[:, 1:] + t_coarse[:, :-1])
    t_fine = sample_pdf(mids, weights_coarse[:, 1:-1].detach(), n_fine, deterministic, generator)
    return torch.sort(torch.cat((t_coarse, t_fine), dim=-1), dim=-1).values
