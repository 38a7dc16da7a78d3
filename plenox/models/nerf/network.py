"""The NeRF MLP, layer for layer as the reference code's ``NeRF`` module (run_nerf_helpers.py)."""

import torch
import torch.nn.functional as F
from torch import nn


class NerfMLP(nn.Module):
    """ReLU MLP mapping encoded points (and view directions) to raw colour and raw density.

    Layout (defaults): 8 linear layers of 256 with ReLU; the encoded point is concatenated
    to the activation of layer index 4, so layer 5 takes 256 + 63 inputs. With view
    directions, raw sigma comes from a linear head on the trunk output, and a linear
    256-wide feature plus the encoded direction feed one 128-wide ReLU layer and a linear
    RGB head. Without, one linear head gives (rgb, sigma). Outputs are raw: the renderer
    applies sigmoid to colour and ReLU to density, as the reference's raw2outputs does.

    Args:
        depth: trunk layers (reference D=8).
        width: trunk width (reference W=256); the view layer is width // 2.
        skips: trunk layer indices whose activation gets the encoded point appended.
        in_xyz: encoded point size (63 for 10 octaves).
        in_dir: encoded direction size (27 for 4 octaves); ignored without view directions.
        use_viewdirs: condition colour on the view direction (the reference configs do).
    """

    def __init__(self, depth: int = 8, width: int = 256, skips=(4,), in_xyz: int = 63, in_dir: int = 27,
                 use_viewdirs: bool = True):
        super().__init__()
        self.skips = tuple(skips)
        self.use_viewdirs = use_viewdirs
        in_sizes = [in_xyz] + [width + in_xyz if i - 1 in self.skips else width for i in range(1, depth)]
        self.pts_linears = nn.ModuleList(nn.Linear(n_in, width) for n_in in in_sizes)
        if use_viewdirs:
            self.alpha_linear = nn.Linear(width, 1)
            self.feature_linear = nn.Linear(width, width)
            self.views_linear = nn.Linear(width + in_dir, width // 2)
            self.rgb_linear = nn.Linear(width // 2, 3)
        else:
            self.output_linear = nn.Linear(width, 4)

    def forward(self, x_enc: torch.Tensor, d_enc: torch.Tensor | None = None):
        """Evaluate the network.

        Args:
            x_enc: (..., in_xyz) encoded points.
            d_enc: (..., in_dir) encoded unit view directions, broadcastable to x_enc's
                leading shape (e.g. (R, 1, in_dir) for (R, S, in_xyz) points); required
                when use_viewdirs.

        Returns:
            raw_rgb (..., 3) before sigmoid, raw_sigma (...) before ReLU (density per world unit).
        """
        lead = x_enc.shape[:-1]
        # Flat (points, channels) matrices: each linear layer is then a single GEMM whose
        # output is a fresh tensor, so the ReLU can run in place (addmm's backward needs
        # its input, not its output).
        x_flat = x_enc.reshape(-1, x_enc.shape[-1])
        h = x_flat
        for i, layer in enumerate(self.pts_linears):
            h = F.relu(layer(h), inplace=True)
            if i in self.skips:
                h = torch.cat((x_flat, h), dim=-1)
        if not self.use_viewdirs:
            out = self.output_linear(h).view(*lead, 4)
            return out[..., :3], out[..., 3]
        raw_sigma = self.alpha_linear(h).view(lead)
        feature = self.feature_linear(h)
        # views_linear(cat(feature, d_enc)) with the direction term computed once per ray
        # and broadcast over its samples instead of once per sample.
        w_feature, w_dir = self.views_linear.weight.split((feature.shape[-1], d_enc.shape[-1]), dim=1)
        h = F.linear(feature, w_feature).view(*lead, -1) + F.linear(d_enc, w_dir, self.views_linear.bias)
        return self.rgb_linear(F.relu(h, inplace=True)), raw_sigma
