"""NerfModel: batching, chunk invariance, schedule, checkpoints."""

import os

import numpy as np
import pytest
import torch

from plenox.models.nerf import NerfConfig, NerfModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(**overrides):
    base = dict(n_coarse=8, n_fine=8, netdepth=2, netwidth=16, multires=3, multires_views=2, batch_rays=32,
                chunk=16, precrop_iters=0)
    return NerfConfig(**{**base, **overrides})


def random_rays(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    dirs = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    return -4.0 * dirs, dirs, torch.rand(n, 3, generator=g)


def test_num_parameters_reference_size():
    assert NerfModel().num_parameters() == 2 * 595_844


def test_learning_rate_schedule():
    model = NerfModel(tiny_config(lr=5e-4, lr_decay_steps=500_000))
    assert model.learning_rate() == 5e-4
    assert model.learning_rate(500_000) == pytest.approx(5e-5)
    assert model.learning_rate(250_000) == pytest.approx(5e-4 * 0.1 ** 0.5)


def test_train_step_independent_of_chunk():
    # Without random sample placement the chunked, gradient-accumulated step is the batch step.
    rays = random_rays(32)
    models = [NerfModel(tiny_config(perturb=False, chunk=chunk)) for chunk in (32, 5)]
    results = [m.train_step(*rays) for m in models]
    assert results[0]["loss"] == pytest.approx(results[1]["loss"], rel=1e-5)
    assert results[0]["psnr"] == pytest.approx(results[1]["psnr"], rel=1e-5)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert models[0].step == 1


def test_render_deterministic_and_chunk_independent():
    origins, dirs, _ = random_rays(20)
    a = NerfModel(tiny_config(chunk=20)).render_rays(origins, dirs)
    b = NerfModel(tiny_config(chunk=3)).render_rays(origins, dirs)
    assert a["rgb"].shape == (20, 3) and a["depth"].shape == (20,) and a["acc"].shape == (20,)
    for key in ("rgb", "depth", "acc"):
        torch.testing.assert_close(a[key], b[key])


def test_sample_batch_precrop_and_distinct_pixels():
    n, h, w = 3, 8, 12
    images = np.random.default_rng(0).uniform(size=(n, h, w, 3)).astype(np.float32)
    # Encode (image, row, col) in the ray origins to check which pixels were drawn.
    idx = np.stack(np.meshgrid(np.arange(n), np.arange(h), np.arange(w), indexing="ij"), -1).astype(np.float32)
    model = NerfModel(tiny_config(batch_rays=24, precrop_iters=10, precrop_frac=0.5))
    g = torch.Generator().manual_seed(0)
    origins, dirs, rgb = model.sample_batch(images, idx, idx, step=0, generator=g)
    assert origins.shape == dirs.shape == rgb.shape == (24, 3)
    image, rows, cols = origins.long().T
    assert len(set(image.tolist())) == 1  # one image per batch
    assert rows.min() >= 2 and rows.max() <= 5 and cols.min() >= 3 and cols.max() <= 8  # centre half
    assert len(set(zip(rows.tolist(), cols.tolist()))) == 24  # without replacement
    torch.testing.assert_close(rgb, torch.from_numpy(images[image, rows, cols]))
    # after the precrop phase, pixels come from the whole image (and torch inputs work too)
    origins, _, _ = model.sample_batch(torch.from_numpy(images), torch.from_numpy(idx), torch.from_numpy(idx),
                                       step=10, generator=g)
    rows, cols = origins[:, 1].long(), origins[:, 2].long()
    assert rows.min() < 2 or rows.max() > 5 or cols.min() < 3 or cols.max() > 8


def test_llff_preset():
    cfg = NerfConfig.llff()
    assert (cfg.n_coarse, cfg.n_fine, cfg.raw_noise_std, cfg.lr_decay_steps) == (64, 64, 1.0, 250_000)
    assert (cfg.near, cfg.far, cfg.white_bkgd, cfg.lindisp, cfg.precrop_iters) == (0.0, 1.0, False, False, 0)


def test_save_load_round_trip(tmp_path):
    # LLFF-style settings also exercise density noise (random stream) and the black background.
    cfg = tiny_config(raw_noise_std=1.0, white_bkgd=False, near=0.0, far=1.0, seed=7)
    model = NerfModel(cfg)
    for seed in range(3):
        model.train_step(*random_rays(32, seed))
    path = tmp_path / "nerf.pt"
    model.save(path)
    assert os.listdir(tmp_path) == ["nerf.pt"]  # no temporary left behind
    loaded = NerfModel.load(path)
    assert loaded.config == cfg and loaded.step == 3

    origins, dirs, _ = random_rays(10, seed=99)
    for key, value in model.render_rays(origins, dirs).items():
        torch.testing.assert_close(loaded.render_rays(origins, dirs)[key], value, rtol=0, atol=0)
    # Same optimiser moments, step and random stream: the next step is identical.
    batch = random_rays(32, seed=5)
    assert loaded.train_step(*batch) == model.train_step(*batch)
    for a, b in zip(model.parameters(), loaded.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
