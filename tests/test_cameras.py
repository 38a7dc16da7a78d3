import numpy as np
import pytest
import torch
from scipy.optimize import fsolve

from plenox.data.cameras import Cameras, image_rays, ndc_view_dirs, pixel_rays, to_ndc


def random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def make_cams(n=3, width=65, height=49, distortion=None) -> Cameras:
    c2w = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        c2w[i, :3, :3] = random_rotation(i)
        c2w[i, :3, 3] = [i, -1.0, 2.0 + i]
    return Cameras(
        c2w=c2w,
        fx=torch.linspace(50, 70, n),
        fy=torch.linspace(52, 72, n),
        cx=width / 2,
        cy=height / 2,
        width=width,
        height=height,
        distortion=distortion,
    )


def test_centre_pixel_looks_down_minus_z():
    cams = make_cams()
    cam_idx = torch.arange(3)
    # Odd image sizes: the centre pixel's centre (32 + 0.5, 24 + 0.5) is the principal point.
    origins, dirs = pixel_rays(cams, cam_idx, torch.full((3,), 32), torch.full((3,), 24))
    assert torch.allclose(origins, cams.c2w[:, :3, 3])
    assert torch.allclose(dirs, -cams.c2w[:, :3, 2], atol=1e-6)


def test_directions_have_unit_depth_and_image_orientation():
    cams = make_cams(n=1)
    origins, dirs = image_rays(cams, 0)
    cam_dirs = dirs.reshape(-1, 3) @ cams.c2w[0, :3, :3]  # world -> camera (R is orthonormal)
    assert torch.allclose(cam_dirs[:, 2], torch.full_like(cam_dirs[:, 2], -1.0), atol=1e-6)
    cam_dirs = cam_dirs.reshape(cams.height, cams.width, 3)
    assert (cam_dirs[:, 1:, 0] > cam_dirs[:, :-1, 0]).all()  # columns go right (+x)
    assert (cam_dirs[1:, :, 1] < cam_dirs[:-1, :, 1]).all()  # rows go down (-y), row 0 at the top
    # Pixel (0, 0)'s ray goes through the top-left pixel's centre.
    expected = torch.tensor([(0.5 - cams.cx[0]) / cams.fx[0], -(0.5 - cams.cy[0]) / cams.fy[0], -1.0])
    assert torch.allclose(cam_dirs[0, 0], expected, atol=1e-6)


def test_image_rays_match_pixel_rays():
    cams = make_cams(distortion=torch.tensor([[0.1, -0.05, 0.01, 0.02]]).repeat(3, 1))
    o, d = image_rays(cams, 2)
    py, px = torch.meshgrid(torch.arange(cams.height), torch.arange(cams.width), indexing="ij")
    o2, d2 = pixel_rays(cams, torch.full((px.numel(),), 2), px.reshape(-1), py.reshape(-1))
    assert torch.equal(o.reshape(-1, 3), o2)
    assert torch.allclose(d.reshape(-1, 3), d2, atol=1e-6)


def opencv_distort(x, y, k1, k2, p1, p2):
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2
    return x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x), y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y


def test_distorted_pixel_ray_equals_undistorted_reference():
    k = (0.12, -0.04, 0.003, -0.002)
    cams = make_cams(n=1, distortion=torch.tensor([k]))
    px, py = torch.tensor([0, 10, 32, 64, 50]), torch.tensor([0, 40, 24, 48, 3])
    _, dirs = pixel_rays(cams, torch.zeros(5, dtype=torch.long), px, py)
    cam_dirs = (dirs @ cams.c2w[0, :3, :3]).double()
    fx, fy, cx, cy = (float(v[0]) for v in (cams.fx, cams.fy, cams.cx, cams.cy))
    shifts = []
    for i in range(5):
        xd, yd = (px[i].item() + 0.5 - cx) / fx, (py[i].item() + 0.5 - cy) / fy
        x, y = fsolve(lambda v: np.subtract(opencv_distort(*v, *k), (xd, yd)), [xd, yd], xtol=1e-12)
        reference = np.array([x, -y, -1.0])  # OpenCV y down -> OpenGL y up
        np.testing.assert_allclose(cam_dirs[i].numpy(), reference, atol=1e-4)
        shifts.append(abs(x - xd) + abs(y - yd))
    assert max(shifts) > 1e-2  # the distortion really moves the corner rays


def test_cameras_validation():
    good = make_cams()
    with pytest.raises(ValueError, match="c2w"):
        Cameras(c2w=torch.eye(4), fx=1.0, fy=1.0, cx=1.0, cy=1.0, width=2, height=2)
    with pytest.raises(ValueError, match="non-finite"):
        Cameras(c2w=good.c2w.clone().fill_(float("nan")), fx=good.fx, fy=good.fy, cx=good.cx, cy=good.cy,
                width=65, height=49)
    with pytest.raises(ValueError, match="fx"):
        Cameras(c2w=good.c2w, fx=torch.ones(2), fy=good.fy, cx=good.cx, cy=good.cy, width=65, height=49)
    with pytest.raises(ValueError, match="positive"):
        Cameras(c2w=good.c2w, fx=-good.fx, fy=good.fy, cx=good.cx, cy=good.cy, width=65, height=49)
    with pytest.raises(ValueError, match="width"):
        Cameras(c2w=good.c2w, fx=good.fx, fy=good.fy, cx=good.cx, cy=good.cy, width=6.5, height=49)
    with pytest.raises(ValueError, match="distortion"):
        Cameras(c2w=good.c2w, fx=good.fx, fy=good.fy, cx=good.cx, cy=good.cy, width=65, height=49,
                distortion=torch.zeros(3, 5))


def test_pixel_rays_validation():
    cams = make_cams()
    idx = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="px must lie"):
        pixel_rays(cams, idx, torch.tensor([0, 65]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="cam_idx must lie"):
        pixel_rays(cams, torch.tensor([0, 3]), torch.tensor([0, 0]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="integer"):
        pixel_rays(cams, idx, torch.tensor([0.5, 1.0]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="same shape"):
        pixel_rays(cams, idx, torch.tensor([0, 1, 2]), torch.tensor([0, 0, 0]))
    with pytest.raises(ValueError, match="out of range"):
        image_rays(cams, 3)


def test_subset_and_scaled():
    cams = make_cams(n=4, width=64, height=48, distortion=torch.rand(4, 4))
    for idx, expected in ((1, [1]), (slice(1, 3), [1, 2]), (torch.tensor([True, False, False, True]), [0, 3]),
                          (torch.tensor([3, 0]), [3, 0]), ([2], [2])):
        sub = cams.subset(idx)
        assert len(sub) == len(expected)
        assert torch.equal(sub.c2w, cams.c2w[expected])
        assert torch.equal(sub.fx, cams.fx[expected])
        assert torch.equal(sub.distortion, cams.distortion[expected])
    half = cams.scaled(2)
    assert (half.width, half.height) == (32, 24)
    assert torch.allclose(half.fx, cams.fx / 2) and torch.allclose(half.cy, cams.cy / 2)
    assert torch.equal(half.c2w, cams.c2w)
    assert cams.scaled(3).width == 21  # floor, as area downscaling crops
    with pytest.raises(ValueError):
        cams.scaled(0)


def test_to_ndc_maps_ray_points_onto_the_ndc_ray():
    width, height, focal, near = 40, 30, 35.0, 1.0
    origins = torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.0, 0.0], [-0.3, 0.2, -0.1]])
    dirs = torch.tensor([[0.1, 0.05, -1.0], [-0.2, 0.1, -1.0], [0.0, 0.0, -1.0]])
    ndc_o, ndc_d = to_ndc(origins, dirs, width, height, focal, near)
    assert torch.allclose(ndc_o[:, 2], torch.full((3,), -1.0))  # origins moved to the near plane
    assert torch.allclose((ndc_o + ndc_d)[:, 2], torch.ones(3))  # t = 1 is infinite depth
    for t in (2.0, 5.0, 40.0):
        p = origins + t * dirs
        projected = torch.stack(
            [-2 * focal / width * p[:, 0] / p[:, 2], -2 * focal / height * p[:, 1] / p[:, 2], 1 + 2 * near / p[:, 2]],
            dim=-1,
        )
        s = (projected[:, 2] - ndc_o[:, 2]) / ndc_d[:, 2]
        assert ((s > 0) & (s < 1)).all()
        assert torch.allclose(ndc_o + s[:, None] * ndc_d, projected, atol=1e-5)
    with pytest.raises(ValueError):
        to_ndc(origins, dirs[:2], width, height, focal)


def test_ndc_of_centre_ray_through_principal_axis():
    o, d = to_ndc(torch.zeros(1, 3), torch.tensor([[0.0, 0.0, -1.0]]), 10, 10, 10.0)
    assert torch.allclose(o, torch.tensor([[0.0, 0.0, -1.0]]))
    assert torch.allclose(d, torch.tensor([[0.0, 0.0, 2.0]]))


def test_ndc_view_dirs_recover_world_directions():
    width, height, focal = 40, 30, 35.0
    g = torch.Generator().manual_seed(0)
    origins = torch.randn(50, 3, generator=g, dtype=torch.float64) * 0.3
    dirs = torch.cat([torch.randn(50, 2, generator=g, dtype=torch.float64) * 0.4,
                      -torch.rand(50, 1, generator=g, dtype=torch.float64) - 0.5], dim=1)  # forward: towards -z
    ndc_o, ndc_d = to_ndc(origins, dirs, width, height, focal)
    expected = dirs / dirs.norm(dim=1, keepdim=True)
    assert torch.allclose(ndc_view_dirs(ndc_o, ndc_d, width, height, focal), expected, atol=1e-10)
