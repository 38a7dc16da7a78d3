"""Kernel backends: where the hot loops of rendering and optimisation run.

A backend takes torch tensors (on its device), hands their memory to the Numba kernels
without copies and returns torch tensors. ``CpuBackend`` runs ``kernels.cpu``; the CUDA
backend (``plenox.backend_cuda``) runs the same maths as Numba CUDA kernels.
``backend_for(tensor)`` picks the backend for a tensor's device; ``resolve_device``
turns the user's ``auto|cpu|cuda`` into a torch device.
"""

import numpy as np
import torch

from plenox.kernels import cpu


class DeviceError(RuntimeError):
    """The requested device cannot be used (e.g. CUDA asked for but not available)."""


class _PartBuffers:
    """Private per-part output buffers for the CPU scatter kernels, kept zero between calls."""

    def __init__(self):
        self._cache = {}

    def get(self, name: str, shape: tuple, dtype) -> np.ndarray:
        key = (name, shape, np.dtype(dtype))
        if key not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[0] != name}
            self._cache[key] = np.zeros(shape, dtype=dtype)
        return self._cache[key]


class KernelBackend:
    """The tensor side of a kernel backend: allocates outputs and calls the kernels.

    Subclasses say how a kernel runs (``_run``); the kernels of every target take the same
    arguments, so everything else is shared.
    """

    name = "base"

    def _run(self, kernel: str, args: tuple, like: torch.Tensor, scatter: tuple = ()) -> None:
        """Run kernel ``kernel`` on ``args`` (tensors among them are passed as arrays) for
        tensors on ``like``'s device; ``scatter`` names the (name, tensor) outputs the kernel
        scatters into (for targets that need private buffers to do so)."""
        raise NotImplementedError

    @staticmethod
    def _grid_args(grid, options):
        scale, offset = grid.scale_offset()
        occ = grid.active_occupancy(options.sigma_thresh)
        return (grid.links, grid.density, grid.sh, grid.basis_dim, occ, scale, offset)

    @staticmethod
    def _march_args(options):
        return (float(options.step), float(options.sigma_thresh), float(options.stop_thresh),
                np.asarray(options.background, dtype=np.float64))

    def forward(self, grid, options, origins, dirs):
        """rgb (M, 3), depth (M,), acc (M,) for rays (M, 3)."""
        m = origins.shape[0]
        rgb = origins.new_empty((m, 3))
        depth = origins.new_empty(m)
        acc = origins.new_empty(m)
        if m:
            self._run("render_forward", (*self._grid_args(grid, options), origins, dirs,
                                         *self._march_args(options), rgb, depth, acc), origins)
        return rgb, depth, acc

    def backward(self, grid, options, origins, dirs, rgb, grad_rgb):
        """(grad_density (N,), grad_sh (N, 3B), touched bool (N,)) for dL/drgb (M, 3)."""
        grad_density = grid.grad_buffers.zeros_like("density", grid.density)
        grad_sh = grid.grad_buffers.zeros_like("sh", grid.sh)
        touched = torch.zeros(grid.n_voxels, dtype=torch.uint8, device=grid.density.device)
        if origins.shape[0]:
            self._run("render_backward", (*self._grid_args(grid, options), origins, dirs, *self._march_args(options),
                                          rgb, grad_rgb, grad_density, grad_sh, touched), origins,
                      scatter=(("density", grad_density), ("sh", grad_sh), ("touched", touched)))
        return grad_density, grad_sh, touched.bool()

    def max_weights(self, grid, options, origins, dirs, out_max):
        """out_max (N,) = max(out_max, per-voxel largest sample weight over the rays), in place."""
        if origins.shape[0]:
            self._run("max_weights", (*self._grid_args(grid, options), origins, dirs, *self._march_args(options),
                                      out_max), origins, scatter=(("max", out_max),))

    def active_blocks(self, links, density, sigma_thresh, out):
        """out (nbx, nby, nbz) uint8: 1 for blocks with a corner voxel of density > sigma_thresh,
        in place (see kernels.raymarch.block_active)."""
        self._run("active_blocks", (links, density, float(sigma_thresh), out), density)

    def tv_grad(self, links, data, col_lo, col_hi, scale, cell_lo, cell_hi, weight, grad):
        """grad[:, col_lo:col_hi] += weight * dTV/d data over cells [cell_lo, cell_hi) (see kernels.voxel)."""
        self._run("tv_grad", (links, data, col_lo, col_hi, np.asarray(scale, dtype=np.float64),
                              cell_lo, cell_hi, float(weight), grad), data)

    def rmsprop_update(self, data, grad, avg, rows, lr, beta, eps):
        """In-place RMSProp step on data[rows]; data, grad, avg (N, C), rows (K,) int64."""
        if rows.numel():
            self._run("rmsprop_update", (data, grad, avg, rows, float(lr), float(beta), float(eps)), data)


class CpuBackend(KernelBackend):
    """Numba CPU kernels over CPU tensors (all cores)."""

    name = "cpu"

    def __init__(self):
        self._parts = _PartBuffers()

    def _run(self, kernel, args, like, scatter=()):
        arrays = [a.detach().numpy() if isinstance(a, torch.Tensor) else a for a in args]
        # Each scattered output gets P-1 private part buffers (see kernels.cpu).
        n_priv = cpu.scatter_parts() - 1
        priv = [self._parts.get(name, (n_priv, *t.shape), t.detach().numpy().dtype) for name, t in scatter]
        getattr(cpu, kernel)(*arrays, *priv)


_BACKENDS = {"cpu": CpuBackend()}


def register_backend(device_type: str, backend) -> None:
    """Make ``backend`` serve tensors whose device type is ``device_type``."""
    _BACKENDS[device_type] = backend


def backend_for(tensor: torch.Tensor):
    """The backend that serves ``tensor``'s device; DeviceError if none does."""
    kind = tensor.device.type
    if kind == "cuda" and kind not in _BACKENDS:
        _load_cuda_backend()
    if kind not in _BACKENDS:
        raise DeviceError(f"no plenox kernels for device {tensor.device}")
    return _BACKENDS[kind]


def _load_cuda_backend() -> None:
    try:
        import plenox.backend_cuda  # noqa: F401  (registers itself)
    except ImportError as err:
        raise DeviceError(f"CUDA backend unavailable: {err}") from None


def resolve_device(name: str = "auto") -> torch.device:
    """torch device for 'auto' (CUDA when a usable GPU is present), 'cpu' or 'cuda'."""
    if name not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"unknown device {name!r}: use auto, cpu or cuda")
    if name == "cpu":
        return torch.device("cpu")
    usable = cuda_usable()
    if name == "cuda" and not usable:
        raise DeviceError("CUDA was requested but no usable GPU was found "
                          "(torch.cuda.is_available() and numba.cuda.is_available() must both be true)")
    return torch.device("cuda" if usable else "cpu")


def cuda_usable() -> bool:
    """True when torch and Numba both see a CUDA GPU."""
    if not torch.cuda.is_available():
        return False
    from numba import cuda
    return bool(cuda.is_available())
