"""Reusable gradient buffers for a grid's parameters.

A grid's gradient is as large as the grid (270 MB for 2.4 M voxels of SH degree 2), and
every training step needs a zeroed one. Allocated afresh each step, the memory is mapped
and faulted in page by page again, which on fern's 256x256x64 grid took longer than the
step's ray marching. So the optimiser hands the gradients back after its step
(``release``) and the next backward pass takes them (``zeros_like``), zeroed in place.
A gradient something else still refers to is never reused.
"""

import sys

import torch


def _take_grad(param: torch.Tensor) -> tuple[torch.Tensor | None, int]:
    """(param.grad, its reference count) after detaching it from ``param``."""
    grad = param.grad
    param.grad = None
    return grad, sys.getrefcount(grad)


def _probe_refcount() -> int:
    """The reference count _take_grad sees for a gradient nothing else refers to (it differs
    between Python versions, so it is measured rather than assumed)."""
    probe = torch.nn.Parameter(torch.zeros(1))
    probe.sum().backward()
    return _take_grad(probe)[1]


_SOLE_OWNER_REFS = _probe_refcount()


class GradBuffers:
    """At most one spare gradient tensor per parameter name."""

    def __init__(self):
        self._spare = {}

    def release(self, name: str, param: torch.Tensor) -> None:
        """Set ``param.grad`` to None, keeping the tensor as ``name``'s spare when nothing else holds it."""
        grad, refs = _take_grad(param)
        if grad is not None and refs <= _SOLE_OWNER_REFS and not grad.requires_grad:
            self._spare[name] = grad

    def zeros_like(self, name: str, param: torch.Tensor) -> torch.Tensor:
        """A zero tensor shaped like ``param``: ``name``'s spare zeroed in place when it fits, else new."""
        spare = self._spare.pop(name, None)
        if (spare is None or spare.shape != param.shape or spare.dtype != param.dtype
                or spare.device != param.device):
            return torch.zeros_like(param, memory_format=torch.contiguous_format)
        return spare.zero_()
