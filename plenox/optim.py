"""Sparse RMSProp on a grid's density and SH (svox2's optimiser).

Only voxels touched by backward passes since the last step are updated; the first visit
of an entry sets its running mean to g^2. The update itself runs in the backend's kernel.
"""

import torch

from plenox.backend import backend_for
from plenox.grid import SparseGrid


class SparseRMSProp:
    """RMSProp state (running mean of squared gradients) for one grid's density and SH."""

    def __init__(self, grid: SparseGrid, beta: float = 0.95, eps: float = 1e-8):
        self.grid = grid
        self.beta = beta
        self.eps = eps
        self.avg_density = torch.zeros_like(grid.density.detach()).view(-1, 1)
        self.avg_sh = torch.zeros_like(grid.sh.detach())

    @torch.no_grad()
    def step(self, lr_density: float, lr_sh: float) -> int:
        """Apply one update from grid.density.grad and grid.sh.grad to the touched voxels,
        then clear the gradients (handing their buffers back to the grid for the next
        backward pass). Returns the number of voxels updated."""
        grid = self.grid
        rows = grid.take_touched().nonzero().view(-1)
        backend = backend_for(grid.density)
        for name, avg, lr in (("density", self.avg_density, lr_density), ("sh", self.avg_sh, lr_sh)):
            param = getattr(grid, name)
            if param.grad is None:
                continue
            backend.rmsprop_update(param.data.view(avg.shape), param.grad.view(avg.shape), avg, rows,
                                   lr, self.beta, self.eps)
            grid.grad_buffers.release(name, param)
        grid.mark_density_changed()
        return int(rows.numel())

    def state_dict(self) -> dict:
        return {"avg_density": self.avg_density.clone(), "avg_sh": self.avg_sh.clone(),
                "beta": self.beta, "eps": self.eps}

    def load_state_dict(self, state: dict) -> None:
        if state["avg_sh"].shape != self.avg_sh.shape:
            raise ValueError(f"optimiser state is for {state['avg_sh'].shape[0]} voxels, "
                             f"the grid has {self.avg_sh.shape[0]}")
        self.avg_density.copy_(state["avg_density"].view(-1, 1))
        self.avg_sh.copy_(state["avg_sh"])
        self.beta, self.eps = float(state["beta"]), float(state["eps"])


def rmsprop_reference(data, grad, avg, rows, lr, beta, eps):
    """Plain-torch RMSProp on data[rows] (data, grad, avg: (N, C)), in place: the test oracle."""
    g = grad[rows]
    a = avg[rows]
    a = torch.where(a == 0, g * g, beta * a + (1 - beta) * g * g)
    avg[rows] = a
    data[rows] -= lr * g / (a.sqrt() + eps)
