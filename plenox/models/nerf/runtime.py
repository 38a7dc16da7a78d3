"""Process-level settings for entry points (CLI, benchmarks); never applied at import."""

import os

import torch


def configure_threads(n_threads: int | None = None) -> int:
    """Let torch's intra-op pool use every core this process may run on; returns the count used.

    Library code leaves the pool alone so that importing plenox does not change the
    behaviour of a host program; the CLI and benchmarks call this once at start-up.
    """
    if n_threads is None:
        # The affinity mask is what a container or taskset actually grants, which
        # os.cpu_count() (the host's count) can overstate.
        n_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(n_threads)
    return n_threads
