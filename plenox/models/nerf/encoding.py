"""Positional encoding as the NeRF reference code builds it (``Embedder`` in run_nerf_helpers.py)."""

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """Map x to [x, sin(2^0 x), cos(2^0 x), sin(2^1 x), cos(2^1 x), ..., cos(2^(F-1) x)].

    The reference uses frequencies 2^k with no factor of pi, so a unit-scale input
    spans about 2^(F-1) / (2 pi) periods at the highest frequency.

    Args:
        n_freqs: number of octaves F (10 for positions, 4 for view directions).
        include_input: prepend the raw input, as the reference does.
        in_dim: size of the last input dimension (3 for points and directions).
    """

    def __init__(self, n_freqs: int, include_input: bool = True, in_dim: int = 3):
        super().__init__()
        self.n_freqs = n_freqs
        self.include_input = include_input
        self.in_dim = in_dim
        # A buffer so the frequencies follow the module across devices.
        self.register_buffer("freqs", 2.0 ** torch.arange(n_freqs, dtype=torch.float32), persistent=False)

    @property
    def out_dim(self) -> int:
        """Encoded size: in_dim * (include_input + 2 * n_freqs); 63 for (10, xyz), 27 for (4, dir)."""
        return self.in_dim * (int(self.include_input) + 2 * self.n_freqs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode x of shape (..., in_dim) into (..., out_dim)."""
        scaled = x[..., None, :] * self.freqs[:, None]  # (..., F, in_dim)
        # Stacking sin before cos on a new axis then flattening reproduces the
        # reference order: for each frequency, all sin components then all cos.
        periodic = torch.stack((torch.sin(scaled), torch.cos(scaled)), dim=-2)  # (..., F, 2, in_dim)
        periodic = periodic.flatten(start_dim=-3)
        if self.include_input:
            return torch.cat((x, periodic), dim=-1)
        return periodic
