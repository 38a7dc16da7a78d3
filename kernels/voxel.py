"""Per-voxel maths of the optimiser, written once for every target (as ``raymarch``).

Plain Python that both ``numba.njit`` and ``numba.cuda.jit(device=True)`` compile; the
caller loops over cells and voxels (CPU: prange; CUDA: one thread per voxel, or per voxel and column).

TV follows svox2: for a cell (x, y, z) and one data column, with neighbours clamped at the
grid's far faces and empty voxels reading zero,
    tv = sqrt((sx * (v[x+1] - v))^2 + (sy * (v[y+1] - v))^2 + (sz * (v[z+1] - v))^2 + eps)
where (sx, sy, sz) = R / 256 per axis. Its gradient takes two passes: each cell's inverse norm
1 / tv per column first (one square root per cell and column), then each voxel gathers the
terms of the up-to-4 cells it belongs to from those norms, so no two threads write the same
place and no square root is taken four times.

RMSProp updates a voxel's density and SH row together, with svox2's Cauchy sparsity
gradient on its density added first; the caller loops over the voxels marked touched.
"""

import math

TV_EPS = 1e-5


def masked_row(row):
    """(row, 1) for a voxel's row, (0, 0) for an empty one (row < 0): the maths reads
    data[row, col] * mask, which is zero for an empty voxel without a branch per column
    (branch-free column loops vectorise on the CPU)."""
    if row < 0:
        return 0, 0
    return row, 1


def tv_cell_rows(links, x, y, z):
    """Masked rows (``masked_row``: 4 rows, then their 4 masks) of cell (x, y, z)'s base voxel
    and of its +x, +y, +z neighbours (clamped to the grid: at a far face the neighbour is the
    base itself, so that difference is zero)."""
    rx = links.shape[0]
    ry = links.shape[1]
    rz = links.shape[2]
    b, mb = masked_row(links[x, y, z])
    px, mx = masked_row(links[min(x + 1, rx - 1), y, z])
    py, my = masked_row(links[x, min(y + 1, ry - 1), z])
    pz, mz = masked_row(links[x, y, min(z + 1, rz - 1)])
    return b, px, py, pz, mb, mx, my, mz


def tv_inv_norm(data, rows, col, sx, sy, sz):
    """1 / tv of one cell for one data column, given the cell's ``tv_cell_rows``."""
    v = data[rows[0], col] * rows[4]
    dx = sx * (data[rows[1], col] * rows[5] - v)
    dy = sy * (data[rows[2], col] * rows[6] - v)
    dz = sz * (data[rows[3], col] * rows[7] - v)
    return 1.0 / math.sqrt(dx * dx + dy * dy + dz * dz + TV_EPS)


def counted_cell(flat, cell_lo, cell_hi, inside):
    """(index flat - cell_lo, 1) of a cell that counts (``inside`` the grid and its flat index in
    [cell_lo, cell_hi)), else (0, 0): an index into the norms and its mask."""
    if inside and cell_lo <= flat < cell_hi:
        return flat - cell_lo, 1
    return 0, 0


def tv_voxel_rows(links, x, y, z, cell_lo, cell_hi):
    """What voxel (x, y, z)'s TV gradient reads, looked up once for all data columns.

    A voxel is the base of cell (x, y, z) and the +1 neighbour of cells (x-1, y, z),
    (x, y-1, z), (x, y, z-1); cells are numbered in C order over (Rx, Ry, Rz) and count when
    their flat index is in [cell_lo, cell_hi). Returns 20 ints: for those 4 cells their
    ``counted_cell`` indices, then masks; the voxel's own row; the masked rows of its +x, +y,
    +z neighbours (clamped at the far faces) and -x, -y, -z neighbours, then their 6 masks.
    """
    rx = links.shape[0]
    ry = links.shape[1]
    rz = links.shape[2]
    flat = (x * ry + y) * rz + z
    k0, m0 = counted_cell(flat, cell_lo, cell_hi, True)
    k1, m1 = counted_cell(flat - ry * rz, cell_lo, cell_hi, x > 0)
    k2, m2 = counted_cell(flat - rz, cell_lo, cell_hi, y > 0)
    k3, m3 = counted_cell(flat - 1, cell_lo, cell_hi, z > 0)
    px, mpx = masked_row(links[min(x + 1, rx - 1), y, z])
    py, mpy = masked_row(links[x, min(y + 1, ry - 1), z])
    pz, mpz = masked_row(links[x, y, min(z + 1, rz - 1)])
    xm, mxm = masked_row(links[max(x - 1, 0), y, z])
    ym, mym = masked_row(links[x, max(y - 1, 0), z])
    zm, mzm = masked_row(links[x, y, max(z - 1, 0)])
    return (k0, k1, k2, k3, m0, m1, m2, m3, links[x, y, z],
            px, py, pz, xm, ym, zm, mpx, mpy, mpz, mxm, mym, mzm)


def tv_voxel_grad_at(data, inv_norms, n, col, norm_col, sx, sy, sz):
    """d(sum of the counted TV terms) / d data[row, col] for the (non-empty) voxel whose
    ``tv_voxel_rows`` are ``n``; inv_norms[k, norm_col] is ``tv_inv_norm`` of counted cell k
    for this column. Cells that do not count have mask 0."""
    v = data[n[8], col]
    # Its own cell: d tv / d base; cells (x-1, y, z), (x, y-1, z), (x, y, z-1): it is their +1 neighbour.
    own = (sx * sx * (data[n[9], col] * n[15] - v) + sy * sy * (data[n[10], col] * n[16] - v)
           + sz * sz * (data[n[11], col] * n[17] - v))
    return (-own * inv_norms[n[0], norm_col] * n[4]
            + sx * sx * (v - data[n[12], col] * n[18]) * inv_norms[n[1], norm_col] * n[5]
            + sy * sy * (v - data[n[13], col] * n[19]) * inv_norms[n[2], norm_col] * n[6]
            + sz * sz * (v - data[n[14], col] * n[20]) * inv_norms[n[3], norm_col] * n[7])


def cauchy_grad(sigma, weight):
    """d/dsigma of weight * log(1 + 2 sigma^2): svox2's Cauchy sparsity loss on a density."""
    return weight * 4.0 * sigma / (1.0 + 2.0 * sigma * sigma)


def rmsprop_element(data, grad, avg, row, col, lr, beta, eps):
    """One RMSProp update of data[row, col] (svox2: the first visit sets the running mean to g^2),
    consuming the gradient: grad[row, col] is zeroed for the next step (the element is at hand,
    so clearing costs nothing here, where zeroing the buffers apart cost a pass over them)."""
    g = grad[row, col]
    grad[row, col] = 0.0
    a = avg[row, col]
    a = g * g if a == 0.0 else beta * a + (1.0 - beta) * g * g
    avg[row, col] = a
    data[row, col] -= lr * g / (math.sqrt(a) + eps)


def rmsprop_voxel(density, grad_density, avg_density, sh, grad_sh, avg_sh, row, lr_density, lr_sh, beta, eps,
                  sparsity):
    """RMSProp on one voxel's density (density, grad_density, avg_density: (N, 1)) after adding
    ``cauchy_grad`` of weight ``sparsity`` to its gradient, and on its SH row (N, C)."""
    grad_density[row, 0] += cauchy_grad(density[row, 0], sparsity)
    rmsprop_element(density, grad_density, avg_density, row, 0, lr_density, beta, eps)
    for col in range(sh.shape[1]):
        rmsprop_element(sh, grad_sh, avg_sh, row, col, lr_sh, beta, eps)


DEVICE_FUNCTIONS = ("masked_row", "tv_cell_rows", "tv_inv_norm", "counted_cell", "tv_voxel_rows",
                    "tv_voxel_grad_at", "cauchy_grad", "rmsprop_element", "rmsprop_voxel")
