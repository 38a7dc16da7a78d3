"""Image quality metrics: PSNR (the one definition), SSIM (as scikit-image computes it), mean/std summaries."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.ndimage import correlate1d

# SSIM as in Wang et al. 2004 and the NeRF / Plenoxels evaluations: 11x11 Gaussian window, sigma 1.5.
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # scipy's truncate=3.5 at sigma 1.5, i.e. the 11x11 window
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _pair(pred, gt, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64 arrays (H, W, 3) after checking their shapes agree."""
    p, g = (np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64) for x in (pred, gt))
    if p.shape != g.shape or p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"{name} needs two (H, W, 3) images of equal shape, got {p.shape} and {g.shape}")
    return p, g


def psnr(pred, gt) -> float:
    """Peak signal-to-noise ratio in dB of ``pred`` against ``gt``, both (H, W, 3) in [0, 1]; inf when equal.

    Accepts numpy arrays or torch tensors.
    """
    p, g = _pair(pred, gt, "psnr")
    return psnr_from_mse(float(np.mean((p - g) ** 2)))


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of a mean squared error of colours in [0, 1]; inf for 0."""
    return math.inf if mse <= 0.0 else -10.0 * math.log10(mse)


def _gaussian_window() -> np.ndarray:
    x = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return w / w.sum()


def ssim(pred, gt) -> float:
    """Structural similarity of ``pred`` against ``gt``, both (H, W, 3) RGB in [0, 1] (H, W >= 11).

    Equals ``skimage.metrics.structural_similarity(pred, gt, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)``:
    skimage filters the whole image and then drops a 5-pixel border, which is
    exactly the valid region of the 11x11 window used here; the mean runs over
    those pixels and the three channels. Accepts numpy arrays or torch tensors.
    """
    p, g = _pair(pred, gt, "ssim")
    r = SSIM_RADIUS
    if min(p.shape[:2]) < 2 * r + 1:
        raise ValueError(f"ssim needs images of at least 11x11 pixels, got {p.shape[1]}x{p.shape[0]}")
    w = _gaussian_window()
    # One separable filtering pass over all five moment maps; scipy's float64
    # correlate1d is an order of magnitude faster than a float64 torch conv.
    maps = np.stack([p, g, p * p, g * g, p * g])
    blurred = correlate1d(correlate1d(maps, w, axis=1), w, axis=2)[:, r:-r, r:-r]
    mu_x, mu_y, xx, yy, xy = blurred
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(s.mean())


def summarize(values) -> tuple[float, float]:
    """Mean and standard deviation of per-image values.

    The std is the sample one (n - 1 in the denominator, as nerfstudio's eval
    JSON reports it) and 0 for a single value.
    """
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("summarize needs at least one value")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
