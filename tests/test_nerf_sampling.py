"""Stratified and hierarchical sampling against straightforward per-ray implementations."""

import numpy as np
import pytest
import torch

from plenox.models.nerf import hierarchical_samples, pdf_uniforms, sample_pdf, stratified_samples


def test_stratified_deterministic_is_linspace():
    t = stratified_samples(2.0, 6.0, 5, n_rays=3, perturb=False)
    torch.testing.assert_close(t, torch.linspace(2.0, 6.0, 5).expand(3, 5))


def test_stratified_perturbed_stays_in_strata():
    g = torch.Generator().manual_seed(0)
    near, far = torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0], [3.0]])
    t = stratified_samples(near, far, 4, n_rays=2, perturb=True, generator=g)
    grid = stratified_samples(near, far, 4, n_rays=2, perturb=False)
    mids = 0.5 * (grid[:, 1:] + grid[:, :-1])
    lower = torch.cat((grid[:, :1], mids), dim=1)
    upper = torch.cat((mids, grid[:, -1:]), dim=1)
    assert torch.all(t >= lower) and torch.all(t <= upper)
    assert not torch.equal(t, grid)


def test_stratified_lindisp():
    t = stratified_samples(1.0, 4.0, 3, n_rays=1, perturb=False, lindisp=True)
    torch.testing.assert_close(t, 1.0 / torch.tensor([[1.0, 0.625, 0.25]]))


def sample_pdf_loop(bins, weights, u):
    """Independent per-ray inverse-CDF sampling (float64, np.searchsorted), reference semantics."""
    out = np.empty_like(u)
    for r in range(bins.shape[0]):
        w = weights[r] + 1e-5
        cdf = np.concatenate(([0.0], np.cumsum(w / w.sum())))
        for k, level in enumerate(u[r]):
            i = np.searchsorted(cdf, level, side="right")
            lo, hi = max(i - 1, 0), min(i, len(cdf) - 1)
            denom = cdf[hi] - cdf[lo]
            denom = 1.0 if denom < 1e-5 else denom
            out[r, k] = bins[r, lo] + (level - cdf[lo]) / denom * (bins[r, hi] - bins[r, lo])
    return out


def random_histograms(n_rays=6, n_bins=9, seed=0):
    rng = np.random.default_rng(seed)
    bins = np.sort(rng.uniform(2.0, 6.0, (n_rays, n_bins + 1)), axis=1)
    weights = rng.uniform(0.0, 1.0, (n_rays, n_bins)) ** 4  # peaked, some bins nearly empty
    weights[0] = 0.0  # a ray that hit nothing samples uniformly
    return bins.astype(np.float32), weights.astype(np.float32)


@pytest.mark.parametrize("deterministic", [True, False])
def test_sample_pdf_matches_loop(deterministic):
    bins, weights = random_histograms()
    n = 17
    u = pdf_uniforms(bins.shape[0], n, deterministic, torch.Generator().manual_seed(3))
    got = sample_pdf(torch.from_numpy(bins), torch.from_numpy(weights), n, deterministic,
                     torch.Generator().manual_seed(3))
    want = sample_pdf_loop(bins.astype(np.float64), weights.astype(np.float64), u.numpy().astype(np.float64))
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=2e-5)


def test_sample_pdf_zero_weights_is_uniform():
    bins = torch.linspace(0.0, 1.0, 5).expand(2, 5)
    got = sample_pdf(bins, torch.zeros(2, 4), 3, deterministic=True)
    torch.testing.assert_close(got, torch.tensor([[0.0, 0.5, 1.0]]).expand(2, 3), atol=1e-6, rtol=0)


def test_hierarchical_samples_sorted_and_detached():
    t = stratified_samples(2.0, 6.0, 8, n_rays=4, perturb=False)
    weights = torch.rand(4, 8, requires_grad=True)
    t_all = hierarchical_samples(t, weights, 16, deterministic=False, generator=torch.Generator().manual_seed(1))
    assert t_all.shape == (4, 24)
    assert torch.all(t_all[:, 1:] >= t_all[:, :-1])
    assert not t_all.requires_grad
    # every coarse sample is still evaluated by the fine network
    assert all(torch.isin(t[r], t_all[r]).all() for r in range(4))
