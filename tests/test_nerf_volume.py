"""raw2outputs semantics on hand-computed rays."""

import math

import torch

from plenox.models.nerf import render_weights, volume_render


def two_sample_ray():
    # One ray, direction length 2, samples at t = 1 and 2: world gaps 2 and "infinity".
    t = torch.tensor([[1.0, 2.0]])
    dirs = torch.tensor([[0.0, 2.0, 0.0]])
    raw_sigma = torch.tensor([[0.5, 1.0]])
    return raw_sigma, t, dirs


def test_weights_two_samples():
    raw_sigma, t, dirs = two_sample_ray()
    alpha0 = 1.0 - math.exp(-0.5 * 2.0)
    # the last sample's interval is 1e10 * |d|, so it absorbs everything that is left
    want = torch.tensor([[alpha0, 1.0 * (1.0 - alpha0 + 1e-10)]])
    torch.testing.assert_close(render_weights(raw_sigma, t, dirs), want)


def test_render_colour_depth_acc():
    raw_sigma, t, dirs = two_sample_ray()
    raw_rgb = torch.tensor([[[0.0, 2.0, -2.0], [1.0, 1.0, 1.0]]])
    w0 = 1.0 - math.exp(-1.0)
    w1 = math.exp(-1.0)
    sig = lambda v: 1.0 / (1.0 + math.exp(-v))
    out = volume_render(raw_rgb, raw_sigma, t, dirs)
    want_rgb = [w0 * sig(0.0) + w1 * sig(1.0), w0 * sig(2.0) + w1 * sig(1.0), w0 * sig(-2.0) + w1 * sig(1.0)]
    torch.testing.assert_close(out["rgb"], torch.tensor([want_rgb]))
    torch.testing.assert_close(out["depth"], torch.tensor([w0 * 1.0 + w1 * 2.0]))
    torch.testing.assert_close(out["acc"], torch.tensor([1.0]))
    assert out["weights"].shape == (1, 2)


def test_negative_density_is_empty_and_background_fills():
    # Sigma 0.25 over a unit gap, then two samples with negative raw sigma (ReLU -> empty).
    t = torch.tensor([[0.0, 1.0, 3.0]])
    dirs = torch.tensor([[1.0, 0.0, 0.0]])
    raw_sigma = torch.tensor([[0.25, -1.0, -3.0]])
    raw_rgb = torch.zeros(1, 3, 3)  # sigmoid -> 0.5 grey
    acc = 1.0 - math.exp(-0.25)
    out = volume_render(raw_rgb, raw_sigma, t, dirs, background=torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(out["acc"], torch.tensor([acc]))
    torch.testing.assert_close(out["weights"], torch.tensor([[acc, 0.0, 0.0]]))
    torch.testing.assert_close(out["rgb"], torch.tensor([[0.5 * acc + 1.0 - acc, 0.5 * acc, 0.5 * acc]]))
    assert out["depth"].item() == 0.0
    black = volume_render(raw_rgb, raw_sigma, t, dirs, background=None)
    torch.testing.assert_close(black["rgb"], torch.full((1, 3), 0.5 * acc))


def test_density_noise_is_seeded():
    raw_sigma = torch.zeros(4, 8)
    t = torch.linspace(0.0, 1.0, 8).expand(4, 8)
    dirs = torch.ones(4, 3)
    noisy = [render_weights(raw_sigma, t, dirs, 1.0, torch.Generator().manual_seed(5)) for _ in range(2)]
    torch.testing.assert_close(noisy[0], noisy[1])
    assert noisy[0].sum() > 0  # without noise every weight is zero
    assert render_weights(raw_sigma, t, dirs).sum() == 0
