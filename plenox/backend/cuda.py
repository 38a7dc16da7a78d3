"""CUDA backend: ``kernels.cuda`` over torch CUDA tensors, without copies.

Imported by ``plenox.backend.backend_for`` the first time a CUDA tensor meets the kernels;
importing it registers ``CudaBackend`` for the device type "cuda". Tensors reach Numba
through ``__cuda_array_interface__`` (``cuda.as_cuda_array``) and every kernel is launched
on torch's current stream of the tensors' device, so it is ordered with the torch work
around it and nothing waits on the host.
"""

from contextlib import contextmanager

import torch
from numba import cuda

from plenox.backend import register_backend
from plenox.backend.base import KernelBackend
from plenox.kernels import cuda as kernels


class CudaBackend(KernelBackend):
    """Numba CUDA kernels over CUDA tensors (one thread per ray or per voxel element)."""

    name = "cuda"

    def _run(self, kernel, args, like, scatter=()):
        # Atomics make scattering race-free, so ``scatter`` needs no buffers here.
        with self._on_device(like) as stream:
            arrays = [self._array(a) if isinstance(a, torch.Tensor) else a for a in args]
            getattr(kernels, kernel)(*arrays, stream=stream)

    @staticmethod
    def _array(tensor):
        # sync=False: the kernel runs on the tensor's stream, so no host-side wait is needed.
        return cuda.as_cuda_array(tensor.detach(), sync=False)

    @staticmethod
    @contextmanager
    def _on_device(like):
        """Make Numba's current device ``like``'s and yield torch's current stream on it."""
        with cuda.gpus[like.device.index]:
            yield cuda.external_stream(torch.cuda.current_stream(like.device).cuda_stream)


register_backend("cuda", CudaBackend())
