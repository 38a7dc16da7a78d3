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


def value_at(links, data, x, y, z, col):
    """data[links[x, y, z], col], or zero for an empty voxel."""
    row = links[x, y, z]
    if row < 0:
        return 0.0
    return data[row, col]


def tv_cell_grads(links, data, x, y, z, col, sx, sy, sz):
    """Gradient of one cell's TV term with respect to its 4 voxels.

    Returns (d_self, d_x, d_y, d_z): derivatives for voxels (x, y, z), (x+1, y, z),
    (x, y+1, z), (x, y, z+1) (the +1 neighbours clamped to the grid).
    """
    rx = links.shape[0]
    ry = links.shape[1]
    rz = links.shape[2]
    v = value_at(links, data, x, y, z, col)
    dx = sx * (value_at(links, data, min(x + 1, rx - 1), y, z, col) - v)
    dy = sy * (value_at(links, data, x, min(y + 1, ry - 1), z, col) - v)
    dz = sz * (value_at(links, data, x, y, min(z + 1, rz - 1), col) - v)
    inv = 1.0 / math.sqrt(dx * dx + dy * dy + dz * dz + TV_EPS)
    gx = sx * dx * inv if x + 1 < rx else 0.0
    gy = sy * dy * inv if y + 1 < ry else 0.0
    gz = sz * dz * inv if z + 1 < rz else 0.0
    return -(gx + gy + gz), gx, gy, gz


def tv_voxel_grad(links, data, x, y, z, col, sx, sy, sz, cell_lo, cell_hi):
    """d(sum of TV terms of the cells with flat index in [cell_lo, cell_hi)) / d v[x, y, z].

    A voxel is the base of cell (x, y, z) and the +1 neighbour of cells (x-1, y, z),
    (x, y-1, z), (x, y, z-1); cells are numbered in C order over (Rx, Ry, Rz).
    """
    ry = links.shape[1]
    rz = links.shape[2]
    flat = (x * ry + y) * rz + z
    g = 0.0
    if cell_lo <= flat < cell_hi:
        g += tv_cell_grads(links, data, x, y, z, col, sx, sy, sz)[0]
    if x > 0 and cell_lo <= flat - ry * rz < cell_hi:
        g += tv_cell_grads(links, data, x - 1, y, z, col, sx, sy, sz)[1]
    if y > 0 and cell_lo <= flat - rz < cell_hi:
        g += tv_cell_grads(links, data, x, y - 1, z, col, sx, sy, sz)[2]
    if z > 0 and cell_lo <= flat - 1 < cell_hi:
        g += tv_cell_grads(links, data, x, y, z - 1, col, sx, sy, sz)[3]
    return g


def rmsprop_element(data, grad, avg, row, col, lr, beta, eps):
    """One RMSProp update of data[row, col] (svox2: the first visit sets the running mean to g^2)."""
    g = grad[row, col]
    a = avg[row, col]
    a = g * g if a == 0.0 else beta * a + (1.0 - beta) * g * g
    avg[row, col] = a
    data[row, col] -= lr * g / (math.sqrt(a) + eps)


DEVICE_FUNCTIONS = ("value_at", "tv_cell_grads", "tv_voxel_grad", "rmsprop_element")
