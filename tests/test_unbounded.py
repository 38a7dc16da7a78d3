"""Unbounded scenes: the background model's files, optimiser, fit, config choice and exports."""

import json
import math

import numpy as np
import pytest
import torch

from gridutil import random_grid, with_background
from plenox.commands.export import export_grid
from plenox.commands.info import format_info, run_info
from plenox.data.builtin_unbounded import unbounded_scene
from plenox.metrics import psnr
from plenox.models.background import UP_Y_SVOX2, Background, BackgroundVoxels, reorient
from plenox.models.grid import SparseGrid
from plenox.models.grid_autograd import GridGrads
from plenox.models.svox2_files import read_svox2
from plenox.runs.folder import RunDir
from plenox.runs.fitting import fit_run
from plenox.runs.loading import default_config_name
from plenox.runs.registry import load_config
from plenox.training.grid_trainer import GridTrainer
from plenox.training.optimizer import SparseRMSProp
from plenox.training.regularizers import add_tv_grad, tv_loss_reference

# The generated unbounded scene's CI fit: 24^3 -> 32^3 and a 64x32 map of 16 layers on 32x32
# images (28 training, 4 held-out views), 200 steps of 1024 rays; the grid learns from step 40.
CI_FIT = ["resolutions=[[24,24,24],[32,32,32]]", "upsample_steps=[100]", "steps=200", "batch_size=1024",
          "lr_decay_steps=200", "lr_density_delay_steps=10", "log_every=50", "background_layers=16",
          "background_reso=32", "prune_ray_stride=2", "fg_begin_step=40"]
# A quicker one for the plumbing: 60 steps, the grid from step 10, the upsample at 30.
QUICK = [*CI_FIT, "upsample_steps=[30]", "steps=60", "lr_decay_steps=60", "fg_begin_step=10", "log_every=20",
         "background_layers=4", "background_reso=8"]


@pytest.fixture(scope="module")
def scene():
    return unbounded_scene(size=32, n_views=32)


def float32_grid(seed=0):
    grid = with_background(random_grid(seed=seed), seed=seed)
    bg = grid.background
    return SparseGrid(grid.links, grid.density.detach().float(), grid.sh.detach().float(), grid.center,
                      grid.radius, grid.basis_dim, Background(bg.links, bg.density.detach().float(),
                                                              bg.rgb.detach().float()))


def test_grid_file_keeps_the_background_exactly(tmp_path):
    grid = float32_grid()
    grid.save(tmp_path / "grid.npz", sh_dtype=np.float32)
    with np.load(tmp_path / "grid.npz") as f:
        assert f["background_data"].shape == (grid.background.n_rows, grid.background.layers, 4)
        assert f["background_links"].shape == (12, 6) and int(f["background_up"]) == 2
    back = SparseGrid.load(tmp_path / "grid.npz")
    for name in ("links", "density", "rgb"):
        assert torch.equal(getattr(back.background, name), getattr(grid.background, name))


def smooth_background(reso=24, layers=3) -> Background:
    """Every pixel holds f(u) = u . (0.3, -0.5, 0.8) times (layer + 1) in all four channels, u its direction."""
    bg = Background.create(reso, layers, dtype=torch.float64)
    i, j = torch.meshgrid(torch.arange(2 * reso, dtype=torch.float64), torch.arange(reso, dtype=torch.float64),
                          indexing="ij")
    lon, lat = math.pi * (i / reso - 1), math.pi * (0.5 - j / reso)
    u = torch.stack([torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon), torch.sin(lat)], -1)
    f = (u @ torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)).reshape(-1, 1) * torch.arange(1, layers + 1)
    with torch.no_grad():
        bg.density.copy_(f)
        bg.rgb.copy_(f[..., None].expand(-1, -1, 3))
    return bg


def test_svox2_map_puts_each_direction_where_svox2_reads_it():
    """svox2 reads direction u at pixel (2R (1/2 + atan2(u_x, u_z) / 2 pi), R (1/2 - asin(u_y) / pi))."""
    reso = 24
    svox2 = reorient(smooth_background(reso), to_svox2=True)
    assert svox2.up == UP_Y_SVOX2
    i, j = torch.meshgrid(torch.arange(2 * reso, dtype=torch.float64), torch.arange(reso, dtype=torch.float64),
                          indexing="ij")
    lon, lat = math.pi * (i / reso - 1), math.pi * (0.5 - j / reso)
    u = torch.stack([torch.cos(lat) * torch.sin(lon), torch.sin(lat), torch.cos(lat) * torch.cos(lon)], -1)
    want = (u @ torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)).reshape(-1)
    # Bilinear resampling of a smooth map: close, not exact. Both maps (svox2's convention)
    # have a row at the north pole and none at the south one, whose last 7.5 degrees read
    # the last row: leave out directions within 10 degrees of either map's poles (y, z).
    inner = ((u[..., 1].abs() < math.cos(math.radians(10))) & (u[..., 2].abs() < math.cos(math.radians(10)))).reshape(-1)
    assert (svox2.density[inner, 0] - want[inner]).abs().max() < 0.005
    assert torch.allclose(svox2.density[:, 2], 3 * svox2.density[:, 0])
    back = reorient(svox2, to_svox2=False)
    own = torch.stack([torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon), torch.sin(lat)], -1)
    inner = ((own[..., 1].abs() < math.cos(math.radians(10))) & (own[..., 2].abs() < math.cos(math.radians(10))))
    assert (back.density - smooth_background(reso).density)[inner.reshape(-1), 0].abs().max() < 0.01


def test_svox2_export_writes_the_background_and_reads_it_back(tmp_path):
    grid = float32_grid(1)
    result = export_grid(grid, "svox2", tmp_path / "ckpt.npz", 10.0, None, 1.0)
    assert "svox2's map" in result["note"]
    with np.load(tmp_path / "ckpt.npz") as f:
        assert {"background_links", "background_data"} <= set(f.files)
        assert int(f["background_up"]) == UP_Y_SVOX2
    back = read_svox2(tmp_path / "ckpt.npz")
    assert back.background.up == 2 and back.background.layers == grid.background.layers


def test_mesh_and_points_say_they_hold_the_foreground_only(tmp_path):
    grid = float32_grid(2)
    for fmt, name in (("ply", "points.ply"), ("mesh", "mesh.ply")):
        result = export_grid(grid, fmt, tmp_path / name, 1.0, 16, 1.0)
        assert result["note"].startswith("foreground only")
    plain = SparseGrid(grid.links, grid.density.detach(), grid.sh.detach(), grid.center, grid.radius, grid.basis_dim)
    assert "note" not in export_grid(plain, "ply", tmp_path / "plain.ply", 1.0, None, 1.0)


def test_background_tv_is_the_grid_tv_of_its_voxel_view():
    grid = with_background(random_grid(seed=3), seed=3)
    voxels = grid.background.voxels()
    grads = GridGrads(voxels.density, voxels.sh)
    cells = (40, 300)
    add_tv_grad(voxels, grads, cells, 0.7, 0.3)
    count = cells[1] - cells[0]
    for param, got, weight in ((grid.background.density, grads.density, 0.7), (grid.background.rgb, grads.sh, 0.3)):
        flat = param.detach().reshape(voxels.n_voxels, -1).clone().requires_grad_(True)
        loss = tv_loss_reference(voxels, cells, flat.squeeze(1) if flat.shape[1] == 1 else flat)
        (want,) = torch.autograd.grad(weight * loss / count, flat)
        assert torch.allclose(got.reshape(want.shape), want, atol=1e-12)
    assert grads.touched.any() and not grads.touched.all()


def test_background_rmsprop_updates_touched_voxels_only():
    grid = with_background(random_grid(seed=4), seed=4)
    optimizer = SparseRMSProp(grid)
    assert isinstance(optimizer.background.grid, BackgroundVoxels)
    assert optimizer.grads.background is optimizer.background.grads
    before = grid.background.density.detach().clone()
    bg_grads = optimizer.background.grads
    bg_grads.density[5] = 1.0
    bg_grads.mark(torch.arange(bg_grads.density.shape[0]) == 5)
    optimizer.step(0.0, 0.0, 0.5, 0.1)
    changed = (grid.background.density.detach() != before).reshape(-1)
    assert changed.nonzero().reshape(-1).tolist() == [5]
    assert not bg_grads.touched.any()


def make_trainer(scene, path, overrides=QUICK):
    cfg = load_config("unbounded", overrides)
    run = RunDir(path)
    run.create(cfg.to_dict(), {"source": "builtin_unbounded", "downscale": 1})
    return GridTrainer(scene, cfg, run)


def test_resume_with_background_matches_uninterrupted(scene, tmp_path):
    whole = make_trainer(scene, tmp_path / "whole")
    whole.train(progress=False)
    first = make_trainer(scene, tmp_path / "split", [*QUICK, "steps=40"])   # after the grid's start and the upsample
    first.train(progress=False)
    second = GridTrainer(scene, load_config("unbounded", QUICK), RunDir(tmp_path / "split"))
    second.resume()
    assert second.step == 40 and second.fg_started
    second.train(progress=False)
    for got, want in ((second.grid.density, whole.grid.density), (second.grid.sh, whole.grid.sh),
                      (second.grid.background.density, whole.grid.background.density),
                      (second.grid.background.rgb, whole.grid.background.rgb)):
        assert torch.equal(got, want)
    setup = RunDir(tmp_path / "whole").read_log()[0]["setup"]
    assert setup["background_model"]["layers"] == 4 and setup["foreground"] == "scene"


def test_config_choice_keeps_bounded_scenes_bounded():
    assert default_config_name("builtin_unbounded") == "unbounded"
    assert default_config_name(None) == "builtin"
    assert load_config("unbounded").background_layers > 0
    for name in ("builtin", "synthetic", "llff", "custom", "tiny"):
        assert load_config(name).background_layers == 0, name


def heldout_psnr(trainer, scene) -> float:
    render = trainer.renderer().render_image
    values = [psnr(render(*scene.view_rays("test", i))["rgb"], scene.splits["test"].images[i])
              for i in range(len(scene.splits["test"]))]
    return float(np.mean(values))


def test_background_model_fits_the_room_markedly_better(scene, tmp_path):
    """Same grid, steps and rays: the background model takes the room the bounded grid has no room for."""
    results = {}
    for name, extra in (("bounded", ["background_layers=0", "fg_begin_step=0"]), ("unbounded", [])):
        trainer = make_trainer(scene, tmp_path / name, [*CI_FIT, *extra])
        trainer.train(progress=False)
        results[name] = heldout_psnr(trainer, scene)
    # Calibrated: 14.44 dB bounded, 19.38 dB with the background model (seed 1: 14.49 and 18.07).
    assert results["unbounded"] > results["bounded"] + 2.5, results


def test_fit_info_and_protocol_say_the_box_and_the_model(tmp_path):
    out = tmp_path / "run"
    metrics = fit_run("builtin_unbounded", str(out), None, [*QUICK, "steps=20", "eval_views=1"], progress=False)
    assert json.loads((out / "config.json").read_text())["background_layers"] == 4
    protocol = metrics["protocol"]
    assert protocol["background_model"] == {"layers": 4, "map": [16, 8]}
    assert protocol["box_radius"] == [1.5, 1.5, 1.5]
    lines = format_info(run_info(str(out)))
    assert any(line.startswith("box: centre") and "background model of 4 layers" in line for line in lines)
