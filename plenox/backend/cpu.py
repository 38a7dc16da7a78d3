"""CPU backend: ``kernels.cpu`` over CPU tensors, without copies, on all cores."""

import numpy as np
import torch

from plenox.backend.base import KernelBackend
from plenox.kernels import cpu


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


class CpuBackend(KernelBackend):
    """Numba CPU kernels over CPU tensors (all cores)."""

    name = "cpu"

    def __init__(self):
        super().__init__()
        self._parts = _PartBuffers()

    def _run(self, kernel, args, like, scatter=()):
        arrays = [a.detach().numpy() if isinstance(a, torch.Tensor) else a for a in args]
        # Each scattered output gets P-1 private part buffers (see kernels.cpu).
        n_priv = cpu.scatter_parts() - 1
        priv = [self._parts.get(name, (n_priv, *t.shape), t.detach().numpy().dtype) for name, t in scatter]
        getattr(cpu, kernel)(*arrays, *priv)


