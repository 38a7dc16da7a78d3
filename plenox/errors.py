"""The errors a user can fix: the CLI prints their one-line message and exits with code 2."""

from plenox.backend import DeviceError
from plenox.capture.source import CaptureError
from plenox.compare import CompareError
from plenox.config import ConfigError
from plenox.data import SceneError
from plenox.export import ExportError
from plenox.grid import GridFileError
from plenox.prune import PruneError
from plenox.runs import RunError

USER_ERRORS = (SceneError, ConfigError, RunError, GridFileError, DeviceError, PruneError, ExportError, CompareError,
               CaptureError)
