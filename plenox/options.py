"""Range checks for the numbers a user gives (command-line options, function arguments).

Each check raises OptionError naming the option and what it must be, so nonsense such as a
negative budget or view count stops with one line and exit code 2 instead of being taken.
"""

import math

from plenox.errors import OptionError


def require_number(name: str, value, low: float | None = None, high: float | None = None,
                   low_open: bool = False, integer: bool = False) -> None:
    """``value`` must be a finite number (an integer if ``integer``) within [low, high]
    (or (low, high] with ``low_open``); None passes (an option left at its default)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OptionError(f"{name} must be a finite number, got {value!r}")
    if integer and int(value) != value:
        raise OptionError(f"{name} must be a whole number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise OptionError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and value > high:
        raise OptionError(f"{name} must be <= {high:g}, got {value!r}")
