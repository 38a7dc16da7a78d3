"""The SH basis against an independent formula: scipy's complex harmonics made real."""

import numpy as np
import pytest
import torch
from scipy.special import sph_harm_y

from plenox.models.sh import eval_sh_basis, sh_degree


def real_sh_from_scipy(l, m, dirs):
    """Real SH Y_lm of unit dirs (M, 3) built from scipy's complex Y_l^|m| (with Condon-Shortley phase)."""
    x, y, z = dirs.T
    theta = np.arccos(np.clip(z, -1, 1))
    phi = np.arctan2(y, x)
    ylm = sph_harm_y(l, abs(m), theta, phi)
    if m > 0:
        return np.sqrt(2) * (-1) ** m * ylm.real
    if m < 0:
        return np.sqrt(2) * (-1) ** m * ylm.imag
    return ylm.real


# svox2 orders coefficient k as (l, m) with k = l^2 + l + m; its sign convention differs from
# the Condon-Shortley real SH by this factor (negative on odd-m terms of degree 1 and 3, etc.).
def svox2_sign(l, m):
    return -1.0 if m % 2 == 1 else 1.0


@pytest.mark.parametrize("basis_dim", [1, 4, 9, 16])
def test_basis_matches_scipy(basis_dim):
    rng = np.random.default_rng(1)
    dirs = rng.normal(size=(200, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    ours = eval_sh_basis(torch.from_numpy(dirs), basis_dim).numpy()
    assert ours.shape == (200, basis_dim)
    for l in range(sh_degree(basis_dim) + 1):
        for m in range(-l, l + 1):
            k = l * l + l + m
            expected = svox2_sign(l, m) * real_sh_from_scipy(l, m, dirs)
            np.testing.assert_allclose(ours[:, k], expected, rtol=1e-10, atol=1e-12, err_msg=f"l={l} m={m}")


def test_kernel_basis_matches_torch():
    from plenox.kernels import raymarch
    from plenox.kernels.targets import compile_functions
    from numba import njit

    sh_basis = compile_functions(vars(raymarch), ["sh_basis"], njit)["sh_basis"]
    rng = np.random.default_rng(2)
    for v in rng.normal(size=(20, 3)):
        v = v / np.linalg.norm(v)
        out = np.zeros(16)
        sh_basis(v[0], v[1], v[2], 16, out)
        np.testing.assert_allclose(out, eval_sh_basis(torch.from_numpy(v), 16).numpy(), rtol=1e-12)


def test_bad_basis_dim():
    with pytest.raises(ValueError, match="basis size"):
        eval_sh_basis(torch.zeros(1, 3), 5)
