"""Alpha compositing of network outputs along rays, as the reference's raw2outputs."""

import torch


def render_weights(raw_sigma: torch.Tensor, t: torch.Tensor, dirs: torch.Tensor, raw_noise_std: float = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Compositing weights w_i = T_i * alpha_i.

    Args:
        raw_sigma: (R, S) raw density (per world unit) before ReLU.
        t: (R, S) increasing sample distances, in units of |dirs|.
        dirs: (R, 3) ray directions; their length converts t spacing to world distance.
        raw_noise_std: std of Gaussian noise added to raw density before the ReLU, a
            regulariser the reference uses for LLFF training (1.0); 0 disables it.
        generator: random source for the noise.

    Returns:
        (R, S) weights; their sum is the ray's opacity.
    """
    # The last interval is "to infinity" so a ray's final sample absorbs what is left.
    dists = torch.cat((t[:, 1:] - t[:, :-1], torch.full_like(t[:, :1], 1e10)), dim=-1)
    dists = dists * torch.linalg.vector_norm(dirs, dim=-1, keepdim=True)
    if raw_noise_std > 0.0:
        noise = torch.randn(raw_sigma.shape, generator=generator, device=raw_sigma.device) * raw_noise_std
        raw_sigma = raw_sigma + noise
    alpha = 1.0 - torch.exp(-torch.relu(raw_sigma) * dists)
    # Exclusive product of transmittances; the 1e-10 keeps the product (and its gradient) from
    # collapsing to exactly zero behind an opaque sample, as in the reference.
    trans = torch.cumprod(torch.cat((torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-10), dim=-1), dim=-1)
    return alpha * trans[:, :-1]


def volume_render(raw_rgb: torch.Tensor, raw_sigma: torch.Tensor, t: torch.Tensor, dirs: torch.Tensor,
                  background: torch.Tensor | None = None, raw_noise_std: float = 0.0,
                  generator: torch.Generator | None = None) -> dict:
    """Composite raw network outputs into per-ray colour, depth and opacity.

    Args:
        raw_rgb: (R, S, 3) colour logits; sigmoid maps them to [0, 1].
        raw_sigma, t, dirs, raw_noise_std, generator: as render_weights.
        background: (3,) colour behind the scene (white for Blender), or None for black.

    Returns:
        dict with rgb (R, 3), depth (R,) expected distance in units of t, acc (R,) opacity,
        weights (R, S).
    """
    weights = render_weights(raw_sigma, t, dirs, raw_noise_std, generator)
    rgb = torch.sum(weights[..., None] * torch.sigmoid(raw_rgb), dim=-2)
    acc = weights.sum(dim=-1)
    if background is not None:
        rgb = rgb + (1.0 - acc[:, None]) * background
    return {"rgb": rgb, "depth": torch.sum(weights * t, dim=-1), "acc": acc, "weights": weights}
