"""plenox: Plenoxels radiance fields (sparse SH voxel grids) on the CPU and NVIDIA GPUs.

The public entry points live in submodules: ``plenox.grid.SparseGrid``,
``plenox.render.render_rays``, ``plenox.fit``, ``plenox.data.load_scene``.
"""

__version__ = "0.1.0"
