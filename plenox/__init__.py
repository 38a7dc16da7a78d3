"""plenox: Plenoxels radiance fields (sparse SH voxel grids) on the CPU and NVIDIA GPUs.

The public entry points live in submodules: ``plenox.models.grid.SparseGrid``,
``plenox.models.grid_autograd.render_rays``, ``plenox.training.grid_trainer``, ``plenox.data.load_scene``.
"""

__version__ = "0.1.0"
