"""Write the CUDA kernels' outputs on every case of ``cuda_cases``, run on Numba's CUDA simulator.

    NUMBA_ENABLE_CUDASIM=1 python tests/cuda_sim_outputs.py OUT.npz

``test_cuda_sim.py`` runs this in a subprocess (the simulator must be on before numba is
imported) and compares the file with the CPU kernels' outputs. The simulator takes numpy
arrays for device arrays, so here the CUDA backend serves CPU tensors; only its two
device hooks (array view, stream) are replaced.
"""

import sys
from contextlib import contextmanager

import numpy as np
from numba import config

from cuda_cases import all_outputs
from plenox.backend import register_backend
from plenox.backend.cuda import CudaBackend
from plenox.kernels import cuda as cuda_kernels

# The simulator runs a block's threads concurrently as Python threads, which queue for the
# GIL and for the one lock behind every simulated atomic: on a 16-core machine full-size
# blocks made the backward pass crawl for minutes. One thread per block runs them in turn.
SIM_THREADS_PER_BLOCK = 1


class SimulatedCudaBackend(CudaBackend):
    """CudaBackend over CPU tensors for the simulator."""

    @staticmethod
    def _array(tensor):
        return tensor.detach().numpy()

    @staticmethod
    @contextmanager
    def _on_device(like):
        yield 0


def main(path: str) -> None:
    if not config.ENABLE_CUDASIM:
        sys.exit("NUMBA_ENABLE_CUDASIM=1 must be set before this script starts")
    cuda_kernels.RAY_THREADS = cuda_kernels.VOXEL_THREADS = SIM_THREADS_PER_BLOCK
    cuda_kernels.OCCUPANCY_THREADS = (SIM_THREADS_PER_BLOCK,) * 3
    register_backend("cpu", SimulatedCudaBackend())
    np.savez(path, **all_outputs("cpu"))


if __name__ == "__main__":
    main(sys.argv[1])
