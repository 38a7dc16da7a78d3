"""SparseGrid: construction, sampling, resample, prune, svox2-compatible files."""

import numpy as np
import pytest
import torch

from gridutil import random_grid
from plenox.models.grid import SparseGrid, block_occupancy, links_from_mask
from plenox.errors import GridFileError


def linear_field(grid, coeffs):
    """Fill density and SH with a linear function of voxel-centre world position."""
    centers = grid.voxel_centers()[grid.links >= 0].to(grid.density.dtype)  # C order == row order
    with torch.no_grad():
        grid.density.copy_(centers @ coeffs[:, 0] + 0.3)
        grid.sh.copy_(centers @ coeffs[:, 1:] - 0.1)


def test_world_grid_transform_matches_design():
    grid = SparseGrid.create((4, 8, 2), center=(1.0, 2.0, 3.0), radius=(2.0, 1.0, 0.5), basis_dim=1)
    g = torch.tensor([[0.0, 0.0, 0.0], [3.0, 7.0, 1.0], [-0.5, -0.5, -0.5]], dtype=torch.float64)
    res = torch.tensor([4.0, 8.0, 2.0], dtype=torch.float64)
    expected = grid.center + grid.radius * (2 * (g + 0.5) / res - 1)
    assert torch.allclose(grid.grid_to_world(g), expected)
    assert torch.allclose(grid.world_to_grid(expected), g)
    assert torch.allclose(grid.grid_to_world(g[2:]), grid.center - grid.radius)  # box corner


def test_sample_is_trilinear_between_voxel_centres():
    grid = SparseGrid.create(4, radius=1.0, basis_dim=1, dtype=torch.float64)
    coeffs = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    linear_field(grid, coeffs)
    pts = torch.rand(50, 3, dtype=torch.float64) * 1.4 - 0.7  # inside the outer voxel centres (+-0.75)
    density, sh = grid.sample(pts)
    assert torch.allclose(density, pts @ coeffs[:, 0] + 0.3)
    assert torch.allclose(sh, pts @ coeffs[:, 1:] - 0.1)


def test_resample_reproduces_linear_field():
    grid = SparseGrid.create((6, 5, 7), center=(0.2, 0.0, -0.1), radius=(1.0, 1.5, 0.8), basis_dim=4,
                             dtype=torch.float64)
    coeffs = torch.randn(3, 13, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    linear_field(grid, coeffs)
    fine = grid.resample((12, 10, 14))
    assert fine.resolution == (12, 10, 14) and fine.n_voxels == 12 * 10 * 14
    centers = fine.voxel_centers()[fine.links >= 0]
    # Exact where the new centre lies inside the old grid's outer centres; the border clamps.
    inside = ((grid.world_to_grid(centers) >= 0) & (grid.world_to_grid(centers) <= torch.tensor(
        grid.resolution, dtype=torch.float64) - 1)).all(dim=1)
    assert inside.sum() > 0.5 * inside.numel()
    expected = centers @ coeffs
    assert torch.allclose(fine.density[inside], expected[inside, 0] + 0.3, atol=1e-12)
    assert torch.allclose(fine.sh[inside], expected[inside, 1:] - 0.1, atol=1e-12)


def test_resample_with_keep_mask_allocates_only_kept():
    grid = random_grid(resolution=(6, 6, 6), seed=2)
    keep = np.zeros((9, 9, 9), dtype=bool)
    keep[2:5, 1:7, 3] = True
    fine = grid.resample(9, keep=keep)
    assert fine.n_voxels == keep.sum()
    assert np.array_equal(fine.links.numpy() >= 0, keep)


def test_prune_with_dilation():
    grid = SparseGrid.create(9, basis_dim=1)
    with torch.no_grad():
        grid.density.copy_(torch.arange(grid.n_voxels, dtype=torch.float32))
    keep = np.zeros((9, 9, 9), dtype=bool)
    keep[4, 4, 4] = True
    assert grid.prune(keep).n_voxels == 1
    one = grid.prune(keep, dilate=1)
    assert one.n_voxels == 27
    assert grid.prune(keep, dilate=2).n_voxels == 125
    # Values travel with their voxels.
    assert torch.equal(one.density, grid.density.detach()[grid.links[3:6, 3:6, 3:6].reshape(-1).long()])


def test_block_occupancy_covers_cells_touching_linked_voxels():
    mask = np.zeros((20, 20, 20), dtype=bool)
    mask[8, 0, 19] = True
    occ = block_occupancy(links_from_mask(mask))
    # 19 cells per axis in blocks of 8: [0..7], [8..15], [16..18]. Voxel x=8 is a corner of
    # cells 7 and 8 (blocks 0 and 1); y=0 is in cell 0; z=19 in the last cell, 18.
    assert occ.shape == (3, 3, 3)
    assert occ.sum() == 2 and occ[0, 0, 2] == 1 and occ[1, 0, 2] == 1


def test_save_load_round_trip(tmp_path):
    grid = random_grid(seed=3, dtype=torch.float32)
    path = tmp_path / "ckpt.npz"
    grid.save(path)
    with np.load(path) as f:  # svox2's keys and layout
        assert set(f.files) >= {"radius", "center", "links", "density_data", "sh_data", "basis_type"}
        assert f["density_data"].shape == (grid.n_voxels, 1) and f["density_data"].dtype == np.float32
        assert f["sh_data"].dtype == np.float16 and f["links"].dtype == np.int32
    back = SparseGrid.load(path)
    assert torch.equal(back.links, grid.links) and back.basis_dim == grid.basis_dim
    assert torch.equal(back.density, grid.density)
    assert torch.allclose(back.center, grid.center.float().double())
    assert torch.allclose(back.radius, grid.radius.float().double())
    # float16 keeps about 3 significant digits
    assert torch.allclose(back.sh, grid.sh, rtol=1e-3, atol=1e-4)
    exact = tmp_path / "exact.npz"
    grid.save(exact, sh_dtype=np.float32)
    assert torch.equal(SparseGrid.load(exact).sh, grid.sh)
    assert not list(tmp_path.glob("*.tmp"))


def test_save_refuses_nan(tmp_path):
    grid = random_grid(seed=4, dtype=torch.float32)
    with torch.no_grad():
        grid.sh[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        grid.save(tmp_path / "bad.npz")
    assert not list(tmp_path.iterdir())


def test_load_errors_name_the_file(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, radius=np.ones(3), center=np.zeros(3), links=np.zeros((2, 2, 2), np.int32))
    with pytest.raises(GridFileError, match=r"partial\.npz.*density_data, sh_data"):
        SparseGrid.load(path)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(GridFileError, match="garbage.npz"):
        SparseGrid.load(garbage)
    with pytest.raises(GridFileError, match="missing.npz"):
        SparseGrid.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("resolution", [0, (4, 0, 4), (4, 4), 1, (2.5, 3, 3)])
def test_bad_resolution(resolution):
    with pytest.raises(ValueError, match="resolution"):
        SparseGrid.create(resolution)


def test_bad_basis_and_shapes():
    with pytest.raises(ValueError, match="basis"):
        SparseGrid.create(4, basis_dim=7)
    grid = SparseGrid.create(3, basis_dim=1)
    with pytest.raises(ValueError, match="sh"):
        SparseGrid(grid.links, grid.density.detach(), grid.sh.detach()[:, :2], 0.0, 1.0, 1)
    with pytest.raises(ValueError, match="int32"):
        SparseGrid(grid.links.long(), grid.density.detach(), grid.sh.detach(), 0.0, 1.0, 1)
    with pytest.raises(ValueError, match="radius"):
        SparseGrid.create(3, radius=-1.0)
