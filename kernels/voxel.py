"""Per-voxel maths of the optimiser, written once for every target (as ``raymarch``).

Plain Python that both ``numba.njit`` and ``numba.cuda.jit(device=True)`` compile; the
caller loops over voxels (CPU: prange, CUDA: one thread per voxel and channel).

TV follows svox2: for a cell (x, y, z) and one data column, with neighbours clamped at the
grid's far faces and empty voxels reading zero,
    tv = sqrt((sx * (v[x+1] - v))^2 + (sy * (v[y+1] - v))^2 + (sz * (v[z+1] - v))^2 + eps)
where (sx, sy, sz) = R / 256 per axis. Gradients are gathered per voxel (each voxel sums
the terms of the up-to-4 cells it belongs to), so no two threads write the same place.
"""

import math

TV_EPS = 1e-5


def value_of(data, row, col):
    """data[row, col], or zero for an empty voxel (row < 0)."""
    if row < 0:
        return 0.0
    return data[row, col]


def tv_cell_grads(data, base, px, py, pz, col, sx, sy, sz):
    """Gradient of one cell's TV term with respect to its 4 voxels, given their rows: ``base``
    (x, y, z) and its +1 neighbours ``px``, ``py``, ``pz`` (clamped to the grid: at a far face
    the neighbour is the base itself, so that difference and its gradient are zero).

    Returns (d_base, d_px, d_py, d_pz).
    """
    v = value_of(data, base, col)
    dx = sx * (value_of(data, px, col) - v)
    dy = sy * (value_of(data, py, col) - v)
    dz = sz * (value_of(data, pz, col) - v)
    inv = 1.0 / math.sqrt(dx * dx + dy * dy + dz * dz + TV_EPS)
    gx = sx * dx * inv
    gy = sy * dy * inv
    gz = sz * dz * inv
    return -(gx + gy + gz), gx, gy, gz


def tv_neighbours(links, x, y, z, cell_lo, cell_hi):
    """What voxel (x, y, z)'s TV gradient reads, looked up once for all data columns.

    A voxel is the base of cell (x, y, z) and the +1 neighbour of cells (x-1, y, z),
    (x, y-1, z), (x, y, z-1); cells are numbered in C order over (Rx, Ry, Rz) and count when
    their flat index is in [cell_lo, cell_hi). Returns 17 ints: whether each of those 4
    cells counts, the rows of the voxel and of its own cell's +x, +y, +z neighbours, then
    for each of the other 3 cells its base row and its two other +1 neighbours' rows
    (clamped at the far faces; -1 where empty).
    """
    rx = links.shape[0]
    ry = links.shape[1]
    rz = links.shape[2]
    flat = (x * ry + y) * rz + z
    xp = min(x + 1, rx - 1)
    yp = min(y + 1, ry - 1)
    zp = min(z + 1, rz - 1)
    own = 1 if cell_lo <= flat < cell_hi else 0
    cx = 1 if x > 0 and cell_lo <= flat - ry * rz < cell_hi else 0
    cy = 1 if y > 0 and cell_lo <= flat - rz < cell_hi else 0
    cz = 1 if z > 0 and cell_lo <= flat - 1 < cell_hi else 0
    xm = max(x - 1, 0)
    ym = max(y - 1, 0)
    zm = max(z - 1, 0)
    return (own, cx, cy, cz,
            links[x, y, z], links[xp, y, z], links[x, yp, z], links[x, y, zp],
            links[xm, y, z], links[xm, yp, z], links[xm, y, zp],
            links[x, ym, z], links[xp, ym, z], links[x, ym, zp],
            links[x, y, zm], links[xp, y, zm], links[x, yp, zm])


def tv_voxel_grad_at(data, n, col, sx, sy, sz):
    """d(sum of the counted TV terms) / d data[row, col] for the voxel whose ``tv_neighbours`` are ``n``."""
    g = 0.0
    if n[0]:
        g += tv_cell_grads(data, n[4], n[5], n[6], n[7], col, sx, sy, sz)[0]
    if n[1]:   # cell (x-1, y, z): this voxel is its +x neighbour
        g += tv_cell_grads(data, n[8], n[4], n[9], n[10], col, sx, sy, sz)[1]
    if n[2]:   # cell (x, y-1, z): its +y neighbour
        g += tv_cell_grads(data, n[11], n[12], n[4], n[13], col, sx, sy, sz)[2]
    if n[3]:   # cell (x, y, z-1): its +z neighbour
        g += tv_cell_grads(data, n[14], n[15], n[16], n[4], col, sx, sy, sz)[3]
    return g


def tv_voxel_grad(links, data, x, y, z, col, sx, sy, sz, cell_lo, cell_hi):
    """d(sum of TV terms of the cells with flat index in [cell_lo, cell_hi)) / d v[x, y, z]
    for one data column (``tv_voxel_grad_at`` of ``tv_neighbours``)."""
    return tv_voxel_grad_at(data, tv_neighbours(links, x, y, z, cell_lo, cell_hi), col, sx, sy, sz)


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


DEVICE_FUNCTIONS = ("value_of", "tv_cell_grads", "tv_neighbours", "tv_voxel_grad_at", "tv_voxel_grad",
                    "rmsprop_element")
