"""The errors a user can fix, one class per kind, all under :class:`UserError`.

The CLI catches ``UserError`` once, prints its one-line message (which names the file or
option and what is wrong) and exits with code 2. This module is a leaf: it imports nothing
of plenox, so every layer can raise these errors.
"""


class UserError(ValueError):
    """Bad input the user can fix: a scene, config, run folder, file, option or device."""


class SceneError(UserError):
    """A scene on disk cannot be read. The message is one line: ``<file>: <what is wrong>``."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(UserError):
    """A config name, file or override is invalid (the message says which and why)."""


class RunError(UserError):
    """A run folder is missing, incomplete or of the wrong kind (the message names it)."""


class GridFileError(UserError):
    """A grid file is missing, unreadable or malformed (the message names the file)."""


class DeviceError(UserError):
    """The requested device cannot be used (e.g. CUDA asked for but not available)."""


class PruneError(UserError):
    """A pruning option is out of range (the message names it)."""


class ExportError(UserError):
    """An export option or format is invalid (the message names it)."""


class CompareError(UserError):
    """A comparison cannot be made (runs of different scenes, missing files, bad options)."""


class DamagedFileError(UserError):
    """A file plenox reads is missing, empty, truncated, corrupted or of another kind.

    The message is one line: ``<file>: <what is wrong>; <what the user can do>``.
    """

    def __init__(self, path, problem: str, advice: str = ""):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" + (f"; {advice}" if advice else ""))


class OptionError(UserError):
    """A number or choice given on the command line or in a call is out of range (the message names it)."""


class CameraPathError(UserError):
    """A camera path file cannot be used. The message is one line: ``<file>: <what is wrong>``."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ViewerError(UserError):
    """The viewer cannot start (busy port, bad host); the message is one line."""


class CaptureError(UserError):
    """Photos or a video cannot be processed. The message is one line: ``<path>: <what is wrong>``."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ClusterError(UserError):
    """A Ray cluster cannot be used as asked: it cannot be joined, no node is big enough for a
    scene, or a folder is not shared by its nodes (the message says which)."""
