"""Peak resident memory of this process, resettable so that one fit can be measured in a longer
process; and the memory the system has available.

Linux keeps the peak resident set size of a process as VmHWM in /proc/self/status, and
writing "5" to /proc/self/clear_refs resets it to the current size. Elsewhere the fallback
is getrusage's ru_maxrss, the peak since the process started, which cannot be reset; where
there is no ``resource`` module either (Windows), the peak is reported as 0 (unknown).
"""

import sys

try:
    import resource
except ImportError:   # Windows: importing plenox must still work
    resource = None

STATUS = "/proc/self/status"
CLEAR_REFS = "/proc/self/clear_refs"
MEMINFO = "/proc/meminfo"


def reset_peak_rss() -> bool:
    """Restart peak tracking from the current resident size; False where the system cannot."""
    try:
        with open(CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak resident set size in bytes since the last reset (or since the process started)."""
    peak = _proc_kib_field(STATUS, "VmHWM:")
    if peak is not None:
        return peak
    if resource is None:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024   # macOS reports bytes, Linux KiB


def available_bytes() -> int | None:
    """Memory the system can give without swapping (Linux's MemAvailable), in bytes; None where unknown."""
    return _proc_kib_field(MEMINFO, "MemAvailable:")


def _proc_kib_field(path: str, key: str) -> int | None:
    """The "key: N kB" line of a /proc file, in bytes; None where the file or line is missing."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
