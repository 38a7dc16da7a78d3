"""CUDA kernels: the per-ray and per-voxel maths of ``kernels.raymarch`` and ``kernels.voxel``
compiled with ``numba.cuda.jit(device=True)``, one thread per ray, voxel or (voxel, column).

The launchers mirror ``kernels.cpu`` (same arguments, same results) with these differences:
  * arrays are device arrays (``numba.cuda.as_cuda_array`` of torch tensors, or numpy
    arrays under the simulator, ``NUMBA_ENABLE_CUDASIM=1``);
  * ``scale`` and ``offset`` may be any 3-sequence: they travel by value, as ``march`` does;
  * scatters use atomics (``cuda.atomic.add``/``max``), so there are no part buffers;
  * every launcher takes the ``stream`` to launch on (0: the default stream).
Scratch arrays are per-thread local arrays of the data dtype, like the CPU kernels', so
the ray kernels are compiled once per dtype (float32 in production, float64 in tests).
"""

import functools

import numpy as np
from numba import cuda, from_dtype, types

from . import raymarch, voxel
from .targets import compile_functions

SCRATCH_SIZE = raymarch.SCRATCH_SIZE
MODE_FORWARD = raymarch.MODE_FORWARD
MODE_BACKWARD = raymarch.MODE_BACKWARD
MODE_MAX_WEIGHT = raymarch.MODE_MAX_WEIGHT

# Threads per block. A ray thread holds the whole march state, so its blocks are smaller.
RAY_THREADS = 128
VOXEL_THREADS = 256
OCCUPANCY_THREADS = (8, 8, 4)


@cuda.jit(device=True)
def _atomic_add1(arr, i, v):
    cuda.atomic.add(arr, i, v)


@cuda.jit(device=True)
def _atomic_add2(arr, i, j, v):
    cuda.atomic.add(arr, (i, j), v)


@cuda.jit(device=True)
def _atomic_max1(arr, i, v):
    cuda.atomic.max(arr, i, v)


def _device_jit(fn):
    return cuda.jit(device=True)(fn)


# Many rays reach the same voxel at once: their scatters must be atomic.
_rays = compile_functions(vars(raymarch), raymarch.DEVICE_FUNCTIONS, _device_jit, {
    "add1": _atomic_add1, "add2": _atomic_add2, "max1": _atomic_max1})
march_ray_at = _rays["march_ray_at"]
fit_ray_at = _rays["fit_ray_at"]
block_active = _rays["block_active"]
_voxel = compile_functions(vars(voxel), voxel.DEVICE_FUNCTIONS, _device_jit)
tv_cell_rows = _voxel["tv_cell_rows"]
tv_inv_norm = _voxel["tv_inv_norm"]
tv_voxel_rows = _voxel["tv_voxel_rows"]
tv_voxel_grad_at = _voxel["tv_voxel_grad_at"]
rmsprop_voxel = _voxel["rmsprop_voxel"]


@functools.cache
def _ray_kernels(dtype: np.dtype):
    """(forward, backward, max_weight, fit) CUDA kernels whose scratch arrays are of ``dtype``."""
    scratch = from_dtype(dtype)

    @cuda.jit(device=True)
    def march_one(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                  march, mode, rgb, grad_rgb, grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb,
                  bg_touched):
        # Corner rows fit int32 (links are int32), which saves registers over the CPU's int64.
        return march_ray_at(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb,
                            origins, dirs, march, cuda.local.array(SCRATCH_SIZE, scratch),
                            cuda.local.array(8, types.int32), cuda.local.array(8, scratch),
                            mode, rgb, grad_rgb, grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb,
                            bg_touched)

    @cuda.jit
    def forward(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                march, out_rgb, out_depth, out_acc):
        r = cuda.grid(1)
        if r >= origins.shape[0]:
            return
        # This mode neither reads the colour arrays nor writes the gradient ones: stand-ins.
        res = march_one(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb,
                        origins, dirs, march, MODE_FORWARD, out_rgb, out_rgb,
                        cuda.local.array(1, scratch), cuda.local.array((1, 1), scratch),
                        cuda.local.array(1, types.uint8), cuda.local.array((1, 1), scratch),
                        cuda.local.array((1, 1), scratch), cuda.local.array((1, 1), types.uint8))
        out_rgb[r, 0] = res[0]
        out_rgb[r, 1] = res[1]
        out_rgb[r, 2] = res[2]
        out_depth[r] = res[3]
        out_acc[r] = res[4]

    @cuda.jit
    def backward(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                 march, rgb, grad_rgb, grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched):
        r = cuda.grid(1)
        if r < origins.shape[0]:
            march_one(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb,
                      origins, dirs, march, MODE_BACKWARD, rgb, grad_rgb, grad_density, grad_sh, touched,
                      grad_bg_density, grad_bg_rgb, bg_touched)

    @cuda.jit
    def max_weight(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                   march, out_max):
        r = cuda.grid(1)
        if r < origins.shape[0]:
            # origins stands in for the colour arrays, which this mode does not read.
            march_one(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb,
                      origins, dirs, march, MODE_MAX_WEIGHT, origins, origins, out_max,
                      cuda.local.array((1, 1), scratch), cuda.local.array(1, types.uint8),
                      cuda.local.array((1, 1), scratch), cuda.local.array((1, 1), scratch),
                      cuda.local.array((1, 1), types.uint8))

    @cuda.jit
    def fit(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
            march, target, loss_scale, out_rgb, grad_rgb, grad_density, grad_sh, touched, grad_bg_density,
            grad_bg_rgb, bg_touched):
        r = cuda.grid(1)
        if r < origins.shape[0]:
            fit_ray_at(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb,
                       origins, dirs, march, cuda.local.array(SCRATCH_SIZE, scratch),
                       cuda.local.array(8, types.int32), cuda.local.array(8, scratch), target, loss_scale,
                       out_rgb, grad_rgb, cuda.local.array(1, scratch), cuda.local.array((1, 1), scratch),
                       cuda.local.array(1, types.uint8), cuda.local.array((1, 1), scratch),
                       cuda.local.array((1, 1), scratch), cuda.local.array((1, 1), types.uint8),
                       grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched)

    return forward, backward, max_weight, fit


def _blocks(n: int, threads: int) -> int:
    return (n + threads - 1) // threads


def _vec3(values) -> tuple:
    return tuple(float(v) for v in values)


def _launch_rays(kernel_index, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb,
                 origins, dirs, march, outputs, stream):
    n_rays = origins.shape[0]
    if n_rays == 0:
        return
    kernel = _ray_kernels(np.dtype(sh.dtype))[kernel_index]
    kernel[_blocks(n_rays, RAY_THREADS), RAY_THREADS, stream](
        links, density, sh, n_basis, occ, _vec3(scale), _vec3(offset), bg_links, bg_density, bg_rgb, origins, dirs,
        tuple(float(v) for v in march), *outputs)


def render_forward(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                   march, out_rgb, out_depth, out_acc, stream=0):
    """Render M rays: out_rgb (M, 3), out_depth (M,) world units, out_acc (M,) opacity."""
    _launch_rays(0, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                 march, (out_rgb, out_depth, out_acc), stream)


def render_backward(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                    march, rgb, grad_rgb, grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched,
                    stream=0):
    """Accumulate dL/d(density) into grad_density (N,) and dL/d(sh) into grad_sh (N, 3B), and
    the background's into grad_bg_density (K, L) and grad_bg_rgb (K, 3L).

    ``rgb`` (M, 3) is the forward output and ``grad_rgb`` (M, 3) dL/drgb; touched (N,) and
    bg_touched (K, L) uint8 get 1 for every voxel (background row and layer) that received a
    gradient.
    """
    _launch_rays(1, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                 march, (rgb, grad_rgb, grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched),
                 stream)


def render_fit(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
               march, target, loss_scale, out_rgb, grad_rgb, grad_density, grad_sh, touched, grad_bg_density,
               grad_bg_rgb, bg_touched, stream=0):
    """Forward and backward of a squared-error loss against target (M, 3) in one launch
    (raymarch.fit_ray_at): out_rgb (M, 3) gets the colours, grad_rgb (M, 3) dL/dcolour, and the
    gradients and touched marks are accumulated as render_backward does."""
    _launch_rays(3, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                 march, (target, float(loss_scale), out_rgb, grad_rgb, grad_density, grad_sh, touched,
                         grad_bg_density, grad_bg_rgb, bg_touched), stream)


def max_weights(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                march, out_max, stream=0):
    """out_max (N,) = max(out_max, largest weight of any sample each voxel is a corner of)."""
    _launch_rays(2, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                 march, (out_max,), stream)


@cuda.jit
def _tv_norms_kernel(links, data, col_lo, col_hi, scale, cell_lo, cell_hi, inv_norms):
    t = cuda.grid(1)
    width = col_hi - col_lo
    if t >= (cell_hi - cell_lo) * width:
        return
    ry = links.shape[1]
    rz = links.shape[2]
    k = t // width
    flat = cell_lo + k
    rows = tv_cell_rows(links, flat // (ry * rz), (flat // rz) % ry, flat % rz)
    inv_norms[k, t % width] = tv_inv_norm(data, rows, col_lo + t % width, scale[0], scale[1], scale[2])


@cuda.jit
def _tv_gather_kernel(links, data, col_lo, col_hi, scale, cell_lo, cell_hi, weight, grad, inv_norms, count):
    t = cuda.grid(1)
    width = col_hi - col_lo
    if t >= count * width:
        return
    ry = links.shape[1]
    rz = links.shape[2]
    flat = cell_lo + t // width
    x = flat // (ry * rz)
    y = (flat // rz) % ry
    z = flat % rz
    row = links[x, y, z]
    if row >= 0:
        near = tv_voxel_rows(links, x, y, z, cell_lo, cell_hi)
        col = col_lo + t % width
        grad[row, col] += weight * tv_voxel_grad_at(data, inv_norms, near, col, t % width,
                                                    scale[0], scale[1], scale[2])


def tv_grad(links, data, col_lo, col_hi, scale, cell_lo, cell_hi, weight, grad, inv_norms, stream=0):
    """grad[:, col_lo:col_hi] += weight * d(TV over cells [cell_lo, cell_hi)) / d data.

    data, grad: (N, C); scale (3,) per-axis difference scales; cells are flat C-order
    indices into the (Rx, Ry, Rz) grid; inv_norms (cell_hi - cell_lo, col_hi - col_lo) is
    scratch of data's dtype. Two launches: one thread per (cell, column) for the norms, then
    one per (voxel, column), each writing only its own element (the maths gathers), so no atomics.
    """
    rx, ry, rz = links.shape
    width = col_hi - col_lo
    n_cells = (cell_hi - cell_lo) * width
    # Voxels that are a corner of some cell in range: the range plus one x-slab past it.
    count = min(cell_hi + ry * rz, rx * ry * rz) - cell_lo
    if n_cells <= 0 or count <= 0:
        return
    _tv_norms_kernel[_blocks(n_cells, VOXEL_THREADS), VOXEL_THREADS, stream](
        links, data, col_lo, col_hi, _vec3(scale), cell_lo, cell_hi, inv_norms)
    _tv_gather_kernel[_blocks(count * width, VOXEL_THREADS), VOXEL_THREADS, stream](
        links, data, col_lo, col_hi, _vec3(scale), cell_lo, cell_hi, float(weight), grad, inv_norms, count)


@cuda.jit
def _rmsprop_kernel(density, grad_density, avg_density, sh, grad_sh, avg_sh, touched, lr_density, lr_sh, beta, eps,
                    sparsity):
    v = cuda.grid(1)
    if v < touched.shape[0] and touched[v]:
        touched[v] = 0
        rmsprop_voxel(density, grad_density, avg_density, sh, grad_sh, avg_sh, v, lr_density, lr_sh, beta, eps,
                      sparsity)


def rmsprop_step(density, grad_density, avg_density, sh, grad_sh, avg_sh, touched, lr_density, lr_sh, beta, eps,
                 sparsity, stream=0):
    """RMSProp step (with the Cauchy sparsity gradient of weight ``sparsity`` on densities) on
    every voxel marked in touched (N,) uint8, which is cleared, as are the gradients used.

    density, grad_density, avg_density: (N, 1); sh, grad_sh, avg_sh: (N, C). One thread per voxel."""
    n = touched.shape[0]
    if n:
        _rmsprop_kernel[_blocks(n, VOXEL_THREADS), VOXEL_THREADS, stream](
            density, grad_density, avg_density, sh, grad_sh, avg_sh, touched, float(lr_density), float(lr_sh),
            float(beta), float(eps), float(sparsity))


@cuda.jit
def _active_blocks_kernel(links, density, sigma_thresh, out):
    bx, by, bz = cuda.grid(3)
    if bx < out.shape[0] and by < out.shape[1] and bz < out.shape[2]:
        out[bx, by, bz] = block_active(links, density, sigma_thresh, bx, by, bz)


def active_blocks(links, density, sigma_thresh, out, stream=0):
    """out (nbx, nby, nbz) uint8: 1 where a block's cells have a corner voxel with density >
    sigma_thresh (see raymarch.block_active). One thread per block."""
    blocks = tuple(_blocks(n, t) for n, t in zip(out.shape, OCCUPANCY_THREADS))
    _active_blocks_kernel[blocks, OCCUPANCY_THREADS, stream](links, density, float(sigma_thresh), out)
