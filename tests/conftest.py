import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder of real scenes: $PLENOX_DATA, else ../shared/data next to the repository."""
    return Path(os.environ.get("PLENOX_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
