"""CPU kernels: the per-ray and per-voxel maths of ``kernels.raymarch`` and ``kernels.voxel``
compiled with numba.njit and run on all cores.

Inputs are assumed validated (``plenox.models.grid_autograd`` does that): C-contiguous arrays, ``links``
int32 (Rx, Ry, Rz), ``density`` (N,), ``sh`` (N, 3B) and rays (M, 3) of one float dtype,
``occ`` uint8 block occupancy, ``scale``/``offset`` float64 (3,), the background ``bg_links``
int32 (2R, R), ``bg_density`` (K, L) and ``bg_rgb`` (K, 3L) (no rows: no background),
``march`` the ray-marching settings as one tuple of floats (``raymarch.MARCH_FIELDS``).

Kernels that scatter (backward, max-weight) split the rays into P interleaved parts: part 0
writes straight into the outputs and part p > 0 into private buffers ``priv_*[p - 1]``
(zero on entry, left zero on exit) that are then folded voxel-parallel, so plain writes are
race-free without atomics.
"""

import hashlib
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange
from numba.core.caching import NullCache

from . import raymarch, voxel
from .targets import compile_functions

# Reassociation and contraction let LLVM vectorise the SH loops; NaN/Inf semantics stay
# (the ray/box slabs rely on infinities), so no 'nnan'/'ninf'.
FASTMATH = {"reassoc", "contract", "arcp", "nsz"}


def _device_jit(fn):
    return njit(fastmath=FASTMATH)(fn)


_rays = compile_functions(vars(raymarch), raymarch.DEVICE_FUNCTIONS, _device_jit)
march_ray_at = _rays["march_ray_at"]
fit_ray_at = _rays["fit_ray_at"]
block_active = _rays["block_active"]
_voxel = compile_functions(vars(voxel), voxel.DEVICE_FUNCTIONS, _device_jit)
tv_cell_rows = _voxel["tv_cell_rows"]
tv_inv_norm = _voxel["tv_inv_norm"]
tv_voxel_rows = _voxel["tv_voxel_rows"]
tv_voxel_grad_at = _voxel["tv_voxel_grad_at"]
rmsprop_voxel = _voxel["rmsprop_voxel"]

SCRATCH_SIZE = raymarch.SCRATCH_SIZE
MODE_FORWARD = raymarch.MODE_FORWARD
MODE_BACKWARD = raymarch.MODE_BACKWARD
MODE_MAX_WEIGHT = raymarch.MODE_MAX_WEIGHT

# numba's on-disk cache is keyed on the stamp of the file defining a kernel only, but these
# kernels inline the maths of the other kernel modules: key them on the contents of all.
_SOURCE_STAMP = hashlib.sha256(b"".join(
    (Path(__file__).parent / name).read_bytes()
    for name in ("raymarch.py", "voxel.py", "targets.py", "cpu.py"))).hexdigest()

# Rays handed to one worker at a time; scratch buffers are allocated once per chunk.
CHUNK = 64


def _cached_kernel(fn):
    """njit(parallel=True, cache=True) with the cache keyed on all kernel sources; if numba's
    cache internals differ from what this expects, the kernel is compiled without a cache."""
    kernel = njit(parallel=True, cache=True, fastmath=FASTMATH)(fn)
    try:
        kernel._cache._cache_file._source_stamp = _SOURCE_STAMP
    except AttributeError:
        kernel._cache = NullCache()
    return kernel


@njit
def _scratch(sh):
    """Per-worker scratch for march_ray: basis (SCRATCH_SIZE,), corner rows (8,), corner weights (8,)."""
    return np.empty(SCRATCH_SIZE, dtype=sh.dtype), np.empty(8, dtype=np.int64), np.empty(8, dtype=sh.dtype)


@njit
def _no_grads(sh):
    """Stand-ins for the gradient arguments of the modes that do not write them: density (0,),
    sh (0, 3B), touched (0,), background density and rgb (0, 0), background touched (0, 0)."""
    return (np.empty(0, dtype=sh.dtype), np.empty((0, sh.shape[1]), dtype=sh.dtype), np.empty(0, dtype=np.uint8),
            np.empty((0, 0), dtype=sh.dtype), np.empty((0, 0), dtype=sh.dtype), np.empty((0, 0), dtype=np.uint8))


@_cached_kernel
def render_forward(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                   march, out_rgb, out_depth, out_acc):
    """Render M rays: out_rgb (M, 3), out_depth (M,) world units, out_acc (M,) opacity."""
    n_rays = origins.shape[0]
    n_chunks = (n_rays + CHUNK - 1) // CHUNK
    for c in prange(n_chunks):
        basis, idx, wts = _scratch(sh)
        no_d, no_sh, no_touch, no_bg_d, no_bg_rgb, no_bg_touch = _no_grads(sh)
        for r in range(c * CHUNK, min(n_rays, (c + 1) * CHUNK)):
            res = march_ray_at(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb,
                               origins, dirs, march, basis, idx, wts,
                               MODE_FORWARD, out_rgb, out_rgb, no_d, no_sh, no_touch, no_bg_d, no_bg_rgb, no_bg_touch)
            out_rgb[r, 0] = res[0]
            out_rgb[r, 1] = res[1]
            out_rgb[r, 2] = res[2]
            out_depth[r] = res[3]
            out_acc[r] = res[4]


@njit
def _part_outputs(part, grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched,
                  priv_density, priv_sh, priv_touched, priv_bg_density, priv_bg_rgb, priv_bg_touched):
    """The gradient outputs ray part ``part`` writes: part 0 the outputs themselves, part p > 0
    its private buffers priv_*[p - 1]."""
    if part == 0:
        return grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched
    return (priv_density[part - 1], priv_sh[part - 1], priv_touched[part - 1], priv_bg_density[part - 1],
            priv_bg_rgb[part - 1], priv_bg_touched[part - 1])


@njit(parallel=True, fastmath=FASTMATH)
def _fold_parts(grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched,
                priv_density, priv_sh, priv_touched, priv_bg_density, priv_bg_rgb, priv_bg_touched):
    """Add the part buffers priv_* (P-1, ...) of a scattering ray kernel into the outputs and
    zero them again, voxel-parallel (only the rows a part touched are read past the mark)."""
    width = grad_sh.shape[1]
    for v in prange(grad_density.shape[0]):
        for p in range(priv_density.shape[0]):
            if priv_touched[p, v]:
                grad_density[v] += priv_density[p, v]
                priv_density[p, v] = 0
                for j in range(width):
                    grad_sh[v, j] += priv_sh[p, v, j]
                    priv_sh[p, v, j] = 0
                touched[v] = 1
                priv_touched[p, v] = 0
    n_layers = grad_bg_density.shape[1]
    for v in prange(grad_bg_density.shape[0]):
        for p in range(priv_bg_density.shape[0]):
            for layer in range(n_layers):
                if priv_bg_touched[p, v, layer]:
                    grad_bg_density[v, layer] += priv_bg_density[p, v, layer]
                    priv_bg_density[p, v, layer] = 0
                    for c in range(3 * layer, 3 * layer + 3):
                        grad_bg_rgb[v, c] += priv_bg_rgb[p, v, c]
                        priv_bg_rgb[p, v, c] = 0
                    bg_touched[v, layer] = 1
                    priv_bg_touched[p, v, layer] = 0


@_cached_kernel
def render_backward(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                    march, rgb, grad_rgb, grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched,
                    priv_density, priv_sh, priv_touched, priv_bg_density, priv_bg_rgb, priv_bg_touched):
    """Accumulate dL/d(density) into grad_density (N,) and dL/d(sh) into grad_sh (N, 3B), and
    the background's into grad_bg_density (K, L) and grad_bg_rgb (K, 3L).

    ``rgb`` (M, 3) is the forward output and ``grad_rgb`` (M, 3) dL/drgb; touched (N,) and
    bg_touched (K, L) uint8 get 1 for every voxel (background row and layer) that received a
    gradient. priv_* are (P-1, ...) part buffers.
    """
    n_rays = origins.shape[0]
    n_parts = priv_density.shape[0] + 1
    for part in prange(n_parts):
        basis, idx, wts = _scratch(sh)
        gd, gs, tc, gbd, gbr, gbt = _part_outputs(part, grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb,
                                                  bg_touched, priv_density, priv_sh, priv_touched,
                                                  priv_bg_density, priv_bg_rgb, priv_bg_touched)
        for r in range(part, n_rays, n_parts):
            march_ray_at(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb,
                         origins, dirs, march, basis, idx, wts,
                         MODE_BACKWARD, rgb, grad_rgb, gd, gs, tc, gbd, gbr, gbt)
    _fold_parts(grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched,
                priv_density, priv_sh, priv_touched, priv_bg_density, priv_bg_rgb, priv_bg_touched)


@_cached_kernel
def render_fit(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
               march, target, loss_scale, out_rgb, grad_rgb, grad_density, grad_sh, touched, grad_bg_density,
               grad_bg_rgb, bg_touched, priv_density, priv_sh, priv_touched, priv_bg_density, priv_bg_rgb,
               priv_bg_touched):
    """Forward and backward of a squared-error loss against target (M, 3) in one pass over the
    rays (raymarch.fit_ray_at): out_rgb (M, 3) gets the colours, grad_rgb (M, 3) dL/dcolour, and
    the gradients and touched marks are accumulated as render_backward does."""
    n_rays = origins.shape[0]
    n_parts = priv_density.shape[0] + 1
    for part in prange(n_parts):
        basis, idx, wts = _scratch(sh)
        no_d, no_sh, no_touch, no_bg_d, no_bg_rgb, no_bg_touch = _no_grads(sh)
        gd, gs, tc, gbd, gbr, gbt = _part_outputs(part, grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb,
                                                  bg_touched, priv_density, priv_sh, priv_touched,
                                                  priv_bg_density, priv_bg_rgb, priv_bg_touched)
        for r in range(part, n_rays, n_parts):
            fit_ray_at(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb,
                       origins, dirs, march, basis, idx, wts, target, loss_scale, out_rgb, grad_rgb,
                       no_d, no_sh, no_touch, no_bg_d, no_bg_rgb, no_bg_touch, gd, gs, tc, gbd, gbr, gbt)
    _fold_parts(grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched,
                priv_density, priv_sh, priv_touched, priv_bg_density, priv_bg_rgb, priv_bg_touched)


@_cached_kernel
def max_weights(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                march, out_max, priv_max):
    """out_max (N,) = max(out_max, largest weight of any sample each voxel is a corner of).

    priv_max (P-1, N) are part buffers (zero on entry and exit)."""
    n_rays = origins.shape[0]
    n_parts = priv_max.shape[0] + 1
    for part in prange(n_parts):
        basis, idx, wts = _scratch(sh)
        no_d, no_sh, no_touch, no_bg_d, no_bg_rgb, no_bg_touch = _no_grads(sh)
        dest = out_max if part == 0 else priv_max[part - 1]
        for r in range(part, n_rays, n_parts):
            # origins stands in for the colour arrays, which this mode does not read.
            march_ray_at(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb,
                         origins, dirs, march, basis, idx, wts,
                         MODE_MAX_WEIGHT, origins, origins, dest, no_sh, no_touch, no_bg_d, no_bg_rgb, no_bg_touch)
    for v in prange(out_max.shape[0]):
        for p in range(n_parts - 1):
            if priv_max[p, v] > out_max[v]:
                out_max[v] = priv_max[p, v]
            priv_max[p, v] = 0


@_cached_kernel
def tv_grad(links, data, col_lo, col_hi, scale, cell_lo, cell_hi, weight, grad, inv_norms):
    """grad[:, col_lo:col_hi] += weight * d(TV over cells [cell_lo, cell_hi)) / d data.

    data, grad: (N, C); scale (3,) per-axis difference scales; cells are flat C-order
    indices into the (Rx, Ry, Rz) grid; inv_norms (cell_hi - cell_lo, col_hi - col_lo) is
    scratch of data's dtype. Race-free: each voxel gathers its own terms.
    """
    ry = links.shape[1]
    rz = links.shape[2]
    for k in prange(cell_hi - cell_lo):
        flat = cell_lo + k
        rows = tv_cell_rows(links, flat // (ry * rz), (flat // rz) % ry, flat % rz)
        for col in range(col_lo, col_hi):
            inv_norms[k, col - col_lo] = tv_inv_norm(data, rows, col, scale[0], scale[1], scale[2])
    # A voxel is a corner of cells at or below its own flat index, up to one x-slab below.
    last = min(cell_hi + ry * rz, links.shape[0] * ry * rz)
    for flat in prange(cell_lo, last):
        x = flat // (ry * rz)
        y = (flat // rz) % ry
        z = flat % rz
        row = links[x, y, z]
        if row < 0:
            continue
        near = tv_voxel_rows(links, x, y, z, cell_lo, cell_hi)
        for col in range(col_lo, col_hi):
            grad[row, col] += weight * tv_voxel_grad_at(data, inv_norms, near, col, col - col_lo,
                                                        scale[0], scale[1], scale[2])


@_cached_kernel
def rmsprop_step(density, grad_density, avg_density, sh, grad_sh, avg_sh, touched, lr_density, lr_sh, beta, eps,
                 sparsity):
    """RMSProp step (with the Cauchy sparsity gradient of weight ``sparsity`` on densities) on
    every voxel marked in touched (N,) uint8, which is cleared, as are the gradients used.

    density, grad_density, avg_density: (N, 1); sh, grad_sh, avg_sh: (N, C)."""
    for v in prange(touched.shape[0]):
        if touched[v]:
            touched[v] = 0
            rmsprop_voxel(density, grad_density, avg_density, sh, grad_sh, avg_sh, v, lr_density, lr_sh, beta, eps,
                          sparsity)


@_cached_kernel
def active_blocks(links, density, sigma_thresh, out):
    """out (nbx, nby, nbz) uint8: 1 where a block's cells have a corner voxel with density >
    sigma_thresh (see raymarch.block_active)."""
    nbx, nby, nbz = out.shape
    for flat in prange(nbx * nby * nbz):
        bx = flat // (nby * nbz)
        by = (flat // nbz) % nby
        bz = flat % nbz
        out[bx, by, bz] = block_active(links, density, sigma_thresh, bx, by, bz)


def scatter_parts() -> int:
    """How many ray parts the scattering kernels should use: one per thread, at most 8,
    because each part beyond the first costs a private copy of the output buffers."""
    return max(1, min(numba.get_num_threads(), 8))
