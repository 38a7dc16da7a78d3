"""NerfMLP: reference parameter count and equality with the reference forward pass."""

import torch
import torch.nn.functional as F

from plenox.models.nerf import NerfMLP


def linear_params(n_in, n_out):
    return n_in * n_out + n_out


def test_reference_parameter_count():
    # Reference NeRF(D=8, W=256, input_ch=63, input_ch_views=27, skips=[4], use_viewdirs=True):
    trunk = linear_params(63, 256) + 6 * linear_params(256, 256) + linear_params(256 + 63, 256)
    heads = linear_params(256, 1) + linear_params(256, 256) + linear_params(256 + 27, 128) + linear_params(128, 3)
    assert trunk + heads == 595_844
    assert sum(p.numel() for p in NerfMLP().parameters()) == 595_844


def test_parameter_count_without_viewdirs():
    trunk = linear_params(63, 256) + 6 * linear_params(256, 256) + linear_params(256 + 63, 256)
    net = NerfMLP(use_viewdirs=False)
    assert sum(p.numel() for p in net.parameters()) == trunk + linear_params(256, 4)


def reference_forward(net, x_enc, d_enc):
    """The reference NeRF.forward, per sample, with the view encoding concatenated."""
    h = x_enc
    for i, layer in enumerate(net.pts_linears):
        h = F.relu(layer(h))
        if i in net.skips:
            h = torch.cat([x_enc, h], -1)
    alpha = net.alpha_linear(h)
    feature = net.feature_linear(h)
    h = F.relu(net.views_linear(torch.cat([feature, d_enc], -1)))
    return net.rgb_linear(h), alpha[..., 0]


def test_matches_reference_forward_and_gradients():
    torch.manual_seed(0)
    net = NerfMLP(depth=6, width=32, in_xyz=9, in_dir=6)
    x_enc, d_enc = torch.randn(5, 7, 9), torch.randn(5, 1, 6)
    rgb, sigma = net(x_enc, d_enc)
    assert rgb.shape == (5, 7, 3) and sigma.shape == (5, 7)
    (rgb.square().sum() + sigma.sum()).backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()

    rgb_ref, sigma_ref = reference_forward(net, x_enc, d_enc.expand(5, 7, 6))
    (rgb_ref.square().sum() + sigma_ref.sum()).backward()
    torch.testing.assert_close(rgb, rgb_ref)
    torch.testing.assert_close(sigma, sigma_ref)
    for got, want in zip(grads, (p.grad for p in net.parameters())):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
