"""plenox export / import: svox2 round trip, PLY points and meshes read by independent readers."""

import numpy as np
import pytest
import torch

from gridutil import random_grid, rays_at_box
from plenox.commands.export import export_run, point_cloud
from plenox.commands.import_svox2 import import_run
from plenox.models.svox2_files import read_svox2, write_svox2
from plenox.models.grid import SparseGrid
from plenox.models.mesh import density_lattice, extract_mesh, lattice_to_world
from plenox.models.grid_autograd import render_chunked, render_rays
from plenox.runs.folder import RunDir
from plenox.models.sh import SH_C0
from plenox.runs.loading import load_grid_run
from plenox.errors import ExportError

plyfile = pytest.importorskip("plyfile")
trimesh = pytest.importorskip("trimesh")


def as_stored(grid: SparseGrid) -> SparseGrid:
    """The grid as an svox2 checkpoint stores it: SH rounded to float16, box to float32."""
    return SparseGrid(grid.links, grid.density.detach(), grid.sh.detach().half().float(), grid.center.float(),
                      grid.radius.float(), grid.basis_dim)


def ball_grid(resolution=40, ball_radius=0.55, center=(0.1, -0.2, 0.05)):
    """Density 50 + 200 (r0 - r) (the 50 level set is the sphere of radius r0), red DC colour."""
    grid = SparseGrid.create(resolution, center=center, radius=1.0, basis_dim=4)
    dist = (grid.voxel_centers() - grid.center).norm(dim=-1).reshape(-1)
    with torch.no_grad():
        grid.density.copy_((50.0 + 200.0 * (ball_radius - dist)).float())
        grid.sh.zero_()
        grid.sh[:, 0] = 1.0
    return grid


def test_svox2_file_layout_and_exact_round_trip(tmp_path):
    grid = random_grid(dtype=torch.float32)
    write_svox2(grid, tmp_path / "ckpt.npz")
    with np.load(tmp_path / "ckpt.npz") as f:
        assert set(f.files) == {"radius", "center", "links", "density_data", "sh_data", "basis_type"}
        assert f["sh_data"].dtype == np.float16 and f["sh_data"].shape == (grid.n_voxels, 27)
        assert f["density_data"].dtype == np.float32 and f["density_data"].shape == (grid.n_voxels, 1)
        assert f["links"].dtype == np.int32 and f["links"].shape == grid.resolution
        assert f["radius"].shape == f["center"].shape == (3,) and int(f["basis_type"]) == 1
    back = read_svox2(tmp_path / "ckpt.npz")
    origins, dirs = (t.float().contiguous() for t in rays_at_box(grid, 500))
    assert torch.equal(render_rays(back, origins, dirs)["rgb"], render_rays(as_stored(grid), origins, dirs)["rgb"])


def test_svox2_scene_scale_keeps_images(tmp_path):
    grid = as_stored(random_grid(dtype=torch.float32))
    write_svox2(grid, tmp_path / "ckpt.npz", scene_scale=2 / 3)
    with np.load(tmp_path / "ckpt.npz") as f:
        np.testing.assert_allclose(f["radius"], grid.radius.numpy() * 2 / 3, rtol=1e-6)
        scaled = SparseGrid.load(tmp_path / "ckpt.npz")
    origins, dirs = (t.float().contiguous() for t in rays_at_box(grid, 500))
    want = render_rays(grid, origins, dirs)["rgb"]
    # The file's own world: rays scaled by 2/3 see the same images.
    seen = render_rays(scaled, (origins * 2 / 3).contiguous(), dirs)["rgb"]
    torch.testing.assert_close(seen, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(render_rays(read_svox2(tmp_path / "ckpt.npz", 2 / 3), origins, dirs)["rgb"], want,
                               atol=1e-5, rtol=0)


def test_run_export_then_import_renders_identically(tiny_run, tmp_path):
    result = export_run(str(tiny_run), "svox2", str(tmp_path / "ckpt.npz"))
    assert result["voxels"] > 0
    record = import_run(str(tmp_path / "ckpt.npz"), None, str(tmp_path / "imported"))
    assert record["voxels"] == result["voxels"]
    _, _, scene, original = load_grid_run(str(tiny_run))
    _, cfg, _, imported = load_grid_run(str(tmp_path / "imported"))
    assert cfg.resolutions == [list(original.resolution)] and RunDir(tmp_path / "imported").import_file.exists()
    for i in range(2):
        origins, dirs = scene.view_rays("test", i)
        assert torch.equal(render_chunked(imported, origins, dirs)["rgb"],
                           render_chunked(as_stored(original), origins, dirs)["rgb"])


def test_ply_points_read_by_plyfile(tmp_path):
    grid = random_grid(dtype=torch.float32)
    points = point_cloud(grid, density_thresh=2.0)
    from plenox.io.ply import ply_bytes
    (tmp_path / "p.ply").write_bytes(ply_bytes(points))
    data = plyfile.PlyData.read(str(tmp_path / "p.ply"))
    vertex = data["vertex"]
    keep = grid.density.detach() >= 2.0
    assert vertex.count == int(keep.sum()) > 0 and data.text is False and data.byte_order == "<"
    assert [p.name for p in vertex.properties] == ["x", "y", "z", "red", "green", "blue", "density"]
    assert vertex["red"].dtype == np.uint8 and vertex["x"].dtype == np.float32
    # Rows are numbered in C order, so the kept voxels appear in row order.
    centers = grid.voxel_centers()[grid.links >= 0][keep.numpy()]
    np.testing.assert_allclose(np.stack([vertex["x"], vertex["y"], vertex["z"]], 1), centers.numpy(), atol=1e-6)
    np.testing.assert_array_equal(vertex["density"], grid.density.detach()[keep].numpy())
    dc_green = grid.sh.detach()[keep][:, grid.basis_dim].double()
    want = (torch.clamp(SH_C0 * dc_green + 0.5, 0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    np.testing.assert_array_equal(vertex["green"], want)


def test_marching_cubes_sphere_radius_within_a_voxel(tmp_path):
    grid = ball_grid()
    mesh = extract_mesh(grid, level=50.0)
    dist = np.linalg.norm(mesh["vertices"] - grid.center.numpy(), axis=1)
    voxel = 2.0 / 40
    assert np.abs(dist - 0.55).max() < voxel
    radial = (mesh["vertices"] - grid.center.numpy()) / dist[:, None]
    assert ((mesh["normals"] * radial).sum(1) > 0.99).all()                         # outward normals
    assert (mesh["colors"] == [round(255 * (SH_C0 + 0.5)), 128, 128]).all()        # red DC, no view term
    finer = extract_mesh(grid, level=50.0, resolution=56)
    assert len(finer["vertices"]) > len(mesh["vertices"])
    assert np.abs(np.linalg.norm(finer["vertices"] - grid.center.numpy(), axis=1) - 0.55).max() < voxel


@pytest.mark.parametrize("suffix", [".ply", ".obj"])
def test_mesh_files_read_by_trimesh(tmp_path, suffix):
    grid = ball_grid()
    run = RunDir(tmp_path / "run")
    run.create({}, {"source": "builtin", "downscale": 1})
    run.save_grid(grid)
    out = tmp_path / f"ball{suffix}"
    result = export_run(str(run.path), "mesh", str(out), density_thresh=50.0)
    mesh = trimesh.load(str(out), process=False)
    assert len(mesh.vertices) == result["vertices"] and len(mesh.faces) == result["faces"]
    assert mesh.is_watertight and mesh.volume == pytest.approx(4 / 3 * np.pi * 0.55 ** 3, rel=0.03)
    colors = mesh.visual.vertex_colors[:, :3]
    assert (np.abs(colors.astype(int) - [199, 128, 128]) <= 1).all()
    if suffix == ".ply":
        assert [p.name for p in plyfile.PlyData.read(str(out))["vertex"].properties] == \
            ["x", "y", "z", "red", "green", "blue"]


def test_export_errors(tiny_run, tmp_path):
    with pytest.raises(ExportError, match="unknown format 'stl'"):
        export_run(str(tiny_run), "stl")
    with pytest.raises(ExportError, match="no density reaches"):
        export_run(str(tiny_run), "mesh", str(tmp_path / "m.ply"), density_thresh=1e9)
    with pytest.raises(ExportError, match=".ply or .obj"):
        export_run(str(tiny_run), "mesh", str(tmp_path / "m.stl"))
    with pytest.raises(ExportError, match="positive"):
        export_run(str(tiny_run), "mesh", str(tmp_path / "m.ply"), density_thresh=-1.0)
    assert not list(tmp_path.iterdir())


def test_density_lattice_is_the_renderers_trilinear_sample():
    grid = random_grid(dtype=torch.float32)
    shape = (17, 9, 23)
    volume = density_lattice(grid, shape)
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    density, _ = grid.sample(torch.from_numpy(lattice_to_world(grid, shape, index.astype(np.float64))))
    np.testing.assert_allclose(volume.reshape(-1), density.detach().numpy(), atol=1e-5)
