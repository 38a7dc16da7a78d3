"""CPU kernels: the per-ray maths of ``kernels.raymarch`` compiled with numba.njit and run
over batches of rays on all cores.

Inputs are assumed validated (``plenox.render`` does that): C-contiguous arrays, ``links``
int32 (Rx, Ry, Rz), ``density`` (N,), ``sh`` (N, 3B) and rays (M, 3) of one float dtype,
``occ`` uint8 block occupancy, ``scale``/``offset``/``background`` float64 (3,).
"""

import hashlib
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange
from numba.core.caching import NullCache

from . import raymarch

# Reassociation and contraction let LLVM vectorise the SH loops; NaN/Inf semantics stay
# (the ray/box slabs rely on infinities), so no 'nnan'/'ninf'.
FASTMATH = {"reassoc", "contract", "arcp", "nsz"}

_device = raymarch.compile_for(lambda fn: njit(fastmath=FASTMATH)(fn))
march_ray = _device["march_ray"]

# numba's on-disk cache is keyed on the stamp of the file defining a kernel only, but these
# kernels inline the per-ray maths of raymarch.py: key them on the contents of both.
_SOURCE_STAMP = hashlib.sha256(b"".join(
    (Path(__file__).parent / name).read_bytes() for name in ("raymarch.py", "cpu.py"))).hexdigest()


def _cached_kernel(fn):
    """njit(parallel=True, cache=True) with the cache keyed on all kernel sources; if numba's
    cache internals differ from what this expects, the kernel is compiled without a cache."""
    kernel = njit(parallel=True, cache=True, fastmath=FASTMATH)(fn)
    try:
        kernel._cache._cache_file._source_stamp = _SOURCE_STAMP
    except AttributeError:
        kernel._cache = NullCache()
    return kernel

# Rays handed to one worker at a time; scratch buffers are allocated once per chunk.
CHUNK = 64


@_cached_kernel
def render_forward(links, density, sh, n_basis, occ, scale, offset, origins, dirs,
                   step, sigma_thresh, stop_thresh, background, out_rgb, out_depth, out_acc):
    """Render M rays: out_rgb (M, 3), out_depth (M,) world units, out_acc (M,) opacity."""
    n_rays = origins.shape[0]
    n_chunks = (n_rays + CHUNK - 1) // CHUNK
    for c in prange(n_chunks):
        basis = np.empty(16, dtype=sh.dtype)
        idx = np.empty(8, dtype=np.int64)
        wts = np.empty(8, dtype=sh.dtype)
        no_grad_d = np.empty(0, dtype=density.dtype)
        no_grad_sh = np.empty((0, sh.shape[1]), dtype=sh.dtype)
        no_touch = np.empty(0, dtype=np.uint8)
        for r in range(c * CHUNK, min(n_rays, (c + 1) * CHUNK)):
            res = march_ray(links, density, sh, n_basis, occ, scale, offset,
                            origins[r, 0], origins[r, 1], origins[r, 2],
                            dirs[r, 0], dirs[r, 1], dirs[r, 2],
                            step, sigma_thresh, stop_thresh,
                            background[0], background[1], background[2], basis, idx, wts,
                            False, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                            no_grad_d, no_grad_sh, no_touch)
            out_rgb[r, 0] = res[0]
            out_rgb[r, 1] = res[1]
            out_rgb[r, 2] = res[2]
            out_depth[r] = res[3]
            out_acc[r] = res[4]


@_cached_kernel
def render_backward(links, density, sh, n_basis, occ, scale, offset, origins, dirs,
                    step, sigma_thresh, stop_thresh, background, rgb, grad_rgb,
                    grad_density, grad_sh, touched, priv_density, priv_sh, priv_touched):
    """Accumulate dL/d(density) into grad_density (N,) and dL/d(sh) into grad_sh (N, 3B).

    ``rgb`` (M, 3) is the forward output and ``grad_rgb`` (M, 3) dL/drgb. Rays are split
    into P = priv_density.shape[0] + 1 interleaved parts; part 0 scatters straight into
    the outputs and part p > 0 into its private buffers priv_*[p - 1] (zero on entry and
    left zero on exit), which are then folded in voxel-parallel: race-free with plain adds.
    touched (N,) uint8 gets 1 for every voxel that received a gradient.
    """
    n_rays = origins.shape[0]
    n_parts = priv_density.shape[0] + 1
    for part in prange(n_parts):
        basis = np.empty(16, dtype=sh.dtype)
        idx = np.empty(8, dtype=np.int64)
        wts = np.empty(8, dtype=sh.dtype)
        if part == 0:
            gd = grad_density
            gs = grad_sh
            tc = touched
        else:
            gd = priv_density[part - 1]
            gs = priv_sh[part - 1]
            tc = priv_touched[part - 1]
        for r in range(part, n_rays, n_parts):
            march_ray(links, density, sh, n_basis, occ, scale, offset,
                      origins[r, 0], origins[r, 1], origins[r, 2],
                      dirs[r, 0], dirs[r, 1], dirs[r, 2],
                      step, sigma_thresh, stop_thresh,
                      background[0], background[1], background[2], basis, idx, wts,
                      True, rgb[r, 0], rgb[r, 1], rgb[r, 2],
                      grad_rgb[r, 0], grad_rgb[r, 1], grad_rgb[r, 2], gd, gs, tc)
    n_vox = grad_density.shape[0]
    width = grad_sh.shape[1]
    for v in prange(n_vox):
        for p in range(n_parts - 1):
            if priv_touched[p, v]:
                grad_density[v] += priv_density[p, v]
                priv_density[p, v] = 0
                for j in range(width):
                    grad_sh[v, j] += priv_sh[p, v, j]
                    priv_sh[p, v, j] = 0
                touched[v] = 1
                priv_touched[p, v] = 0


def backward_parts() -> int:
    """How many ray parts ``render_backward`` should use: one per thread, at most 8,
    because each part beyond the first costs a private copy of the gradient buffers."""
    return max(1, min(numba.get_num_threads(), 8))
