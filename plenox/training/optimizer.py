"""Sparse RMSProp on a grid's density and SH (svox2's optimiser), owning the gradient buffers.

The optimiser owns the grid's gradients (``grads``, a GridGrads): the backward pass and the
regularisers add into them and record the voxels they touch; ``step`` updates only those
voxels, as svox2 does (the first visit of an entry sets its running mean to g^2), and
leaves the buffers clear for the next step: the kernel zeroes each gradient it consumes and
unmarks its voxel, so a step costs what the batch touched, not the grid (plus one pass over
the marks, a byte per voxel). The Cauchy sparsity gradient on densities is added in the same
pass (svox2 applies it to the voxels a step updates). Running
means of untouched voxels are not decayed (svox2's approximation of a dense RMSProp; see
docs/fit.md). The update itself runs in the backend's kernel.
A grid's background gets an optimiser of its own over its voxel view (``Background.voxels``:
one row per pixel and layer, as svox2 updates it), with its own learning rates; the grid's
optimiser holds it, hands it over at upsampling (the background does not change there) and
attaches its buffers to ``grads.background``.
"""

import torch

from plenox.backend import backend_for
from plenox.models.grid import SparseGrid
from plenox.models.grid_autograd import GridGrads


class SparseRMSProp:
    """RMSProp state (running mean of squared gradients) and gradient buffers for one grid."""

    def __init__(self, grid: SparseGrid, beta: float = 0.95, eps: float = 1e-8,
                 background: "SparseRMSProp | None" = None):
        """``grid``: a SparseGrid (or a background's voxel view). ``background``: the optimiser
        of the grid's background to keep (its state survives a new grid of the same
        background), else one is made when the grid has a background."""
        self.grid = grid
        self.beta = beta
        self.eps = eps
        self.avg_density = torch.zeros_like(grid.density.detach()).view(-1, 1)
        self.avg_sh = torch.zeros_like(grid.sh.detach())
        self.grads = GridGrads(grid.density.detach(), grid.sh.detach())
        if background is None and isinstance(grid, SparseGrid) and grid.background is not None:
            background = SparseRMSProp(grid.background.voxels(), beta, eps)
        self.background = background
        if background is not None:
            self.grads.background = background.grads

    @torch.no_grad()
    def step(self, lr_density: float, lr_sh: float, lr_bg_density: float = 0.0, lr_bg_color: float = 0.0,
             sparsity: float = 0.0) -> None:
        """Apply one update from ``grads`` to the touched voxels, adding first the gradient of
        svox2's Cauchy sparsity loss of weight ``sparsity`` (``kernels.voxel.cauchy_grad``) to
        their densities, then clear ``grads`` (and likewise the background's, at its own rates,
        without sparsity)."""
        if self.background is not None:
            self.background.step(lr_bg_density, lr_bg_color)
        grid, grads = self.grid, self.grads
        backend_for(grid.density).rmsprop_step(
            grid.density.data.view(-1, 1), grads.density.view(-1, 1), self.avg_density,
            grid.sh.data, grads.sh, self.avg_sh, grads.touched_bytes(), lr_density, lr_sh, self.beta, self.eps,
            sparsity)
        grid.mark_density_changed()

    def state_dict(self) -> dict:
        state = {"avg_density": self.avg_density.clone(), "avg_sh": self.avg_sh.clone(),
                 "beta": self.beta, "eps": self.eps}
        if self.background is not None:
            state["background"] = self.background.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        if state["avg_sh"].shape != self.avg_sh.shape:
            raise ValueError(f"optimiser state is for {state['avg_sh'].shape[0]} voxels, "
                             f"the grid has {self.avg_sh.shape[0]}")
        if ("background" in state) != (self.background is not None):
            raise ValueError("optimiser state and grid disagree on whether there is a background")
        self.avg_density.copy_(state["avg_density"].view(-1, 1))
        self.avg_sh.copy_(state["avg_sh"])
        self.beta, self.eps = float(state["beta"]), float(state["eps"])
        if self.background is not None:
            self.background.load_state_dict(state["background"])


def rmsprop_reference(data, grad, avg, rows, lr, beta, eps):
    """Plain-torch RMSProp on data[rows] (data, grad, avg: (N, C)), in place, consuming grad[rows]:
    the test oracle (the sparsity gradient is the tests' to add, from autograd)."""
    g = grad[rows].clone()
    grad[rows] = 0
    a = avg[rows]
    a = torch.where(a == 0, g * g, beta * a + (1 - beta) * g * g)
    avg[rows] = a
    data[rows] -= lr * g / (a.sqrt() + eps)
