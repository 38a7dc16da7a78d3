"""Kernel backends: where the hot loops of rendering and optimisation run.

A backend takes plain arrays (``GridArrays``, rays, output buffers) and ``MarchSettings`` on
its device, hands their memory to the Numba kernels without copies and returns arrays; it
never calls back into the grid. ``plenox.backend.cpu`` runs ``kernels.cpu``;
``plenox.backend.cuda`` runs the same maths as Numba CUDA kernels. ``backend_for(tensor)``
picks the backend for a tensor's device; ``resolve_device`` turns the user's
``auto|cpu|cuda`` into a torch device.
"""

import torch

from plenox.backend.arrays import GridArrays, MarchSettings
from plenox.backend.cpu import CpuBackend
from plenox.errors import DeviceError

__all__ = ["GridArrays", "MarchSettings", "backend_for", "register_backend", "resolve_device", "cuda_usable"]

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
        import plenox.backend.cuda  # noqa: F401  (registers itself)
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
