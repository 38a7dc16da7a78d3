"""Numba kernels for plenox (no torch here).

``raymarch``  per-ray maths shared by the CPU and CUDA targets (plain Python, compiled twice)
``cpu``       numba.njit(parallel=True) kernels over batches of rays
"""
