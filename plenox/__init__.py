"""plenox: Plenoxels radiance fields (sparse SH voxel grids) on the CPU and NVIDIA GPUs.

The public entry points live in submodules: ``plenox.models.grid.SparseGrid``,
``plenox.models.grid_autograd.render_rays``, ``plenox.training.grid_trainer``, ``plenox.data.load_scene``.
"""

__version__ = "0.1.0"

import os as _os

# Transparent huge pages for torch's large CPU tensors (the grid, its gradients and RMSProp
# state): the kernels reach voxel rows all over arrays of gigabytes, and 2 MB pages cut the
# TLB misses (a fern training step at 8 M voxels: about 8% faster). torch reads this once, at
# its first large allocation, so it must be set before that; a value the user set wins.
_os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
