import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from plenox.data import builtin_scene
from plenox.metrics import psnr, ssim, summarize


def skimage_ssim(a, b):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=1, channel_axis=-1)


def test_psnr():
    gt = np.zeros((8, 8, 3))
    assert psnr(gt + 0.1, gt) == pytest.approx(20.0)
    assert psnr(torch.full((8, 8, 3), 0.01), torch.zeros(8, 8, 3)) == pytest.approx(40.0, rel=1e-6)
    assert psnr(gt, gt) == math.inf
    with pytest.raises(ValueError, match="shape"):
        psnr(gt, np.zeros((8, 7, 3)))


@pytest.mark.parametrize("noise", [0.02, 0.2])
def test_ssim_matches_skimage(noise):
    rng = np.random.default_rng(0)
    gt = builtin_scene(size=40, n_train=1, n_test=1).splits["train"].images[0].numpy()
    pred = np.clip(gt + rng.normal(0, noise, gt.shape), 0, 1).astype(np.float32)
    assert ssim(pred, gt) == pytest.approx(skimage_ssim(pred, gt), abs=1e-6)
    assert ssim(torch.from_numpy(pred), torch.from_numpy(gt)) == pytest.approx(ssim(pred, gt))


def test_ssim_of_non_square_random_images():
    rng = np.random.default_rng(1)
    a, b = rng.random((23, 31, 3)), rng.random((23, 31, 3))
    assert ssim(a, b) == pytest.approx(skimage_ssim(a, b), abs=1e-6)
    assert ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="11x11"):
        ssim(a[:10], b[:10])


def test_summarize():
    mean, std = summarize([30.0, 32.0, 34.0])
    assert (mean, std) == (32.0, 2.0)
    assert summarize(iter([5.0])) == (5.0, 0.0)
    with pytest.raises(ValueError):
        summarize([])
