"""Real spherical-harmonic basis (svox2 / PlenOctrees convention), torch reference.

The constants are svox2's and PlenOctrees' real SH basis (docs/architecture.md, Conventions).
"""

import torch

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005,
         -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)

BASIS_DIMS = (1, 4, 9, 16)


def check_basis_dim(basis_dim: int) -> int:
    """Return ``basis_dim`` if it is a supported SH size (1, 4, 9, 16), else raise ValueError."""
    if basis_dim not in BASIS_DIMS:
        raise ValueError(f"SH basis size must be one of {BASIS_DIMS} (degree 0-3), got {basis_dim}")
    return basis_dim


def sh_degree(basis_dim: int) -> int:
    """SH degree of a basis of ``basis_dim`` functions (1 -> 0, 4 -> 1, 9 -> 2, 16 -> 3)."""
    return BASIS_DIMS.index(check_basis_dim(basis_dim))


def eval_sh_basis(dirs: torch.Tensor, basis_dim: int) -> torch.Tensor:
    """SH basis values for unit directions.

    dirs: (..., 3) unit vectors. Returns (..., basis_dim) in the dtype of ``dirs``.
    """
    check_basis_dim(basis_dim)
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if basis_dim > 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if basis_dim > 4:
        xx, yy, zz = x * x, y * y, z * z
        out += [
            SH_C2[0] * x * y,
            SH_C2[1] * y * z,
            SH_C2[2] * (2.0 * zz - xx - yy),
            SH_C2[3] * x * z,
            SH_C2[4] * (xx - yy),
        ]
        if basis_dim > 9:
            out += [
                SH_C3[0] * y * (3.0 * xx - yy),
                SH_C3[1] * x * y * z,
                SH_C3[2] * y * (4.0 * zz - xx - yy),
                SH_C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
                SH_C3[4] * x * (4.0 * zz - xx - yy),
                SH_C3[5] * z * (xx - yy),
                SH_C3[6] * x * (xx - 3.0 * yy),
            ]
    return torch.stack(out, dim=-1)


def sh_to_rgb(sh: torch.Tensor, dirs: torch.Tensor, basis_dim: int) -> torch.Tensor:
    """The renderer's colour rule, max(sum_k sh_k Y_k(d) + 0.5, 0) per channel.

    sh: (M, 3 * basis_dim) channel-major coefficients; dirs: (M, 3) unit viewing directions
    (from the eye towards the point). Returns (M, 3), not clamped above.
    """
    coeffs = sh.reshape(sh.shape[0], 3, basis_dim)
    basis = eval_sh_basis(dirs.to(sh.dtype), basis_dim)
    return torch.clamp((coeffs * basis[:, None, :]).sum(-1) + 0.5, min=0.0)
