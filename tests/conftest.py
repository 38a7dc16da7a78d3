import os
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder of real scenes: $PLENOX_DATA, else ../shared/data next to the repository."""
    return Path(os.environ.get("PLENOX_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


# A fit small enough to share: 16^3 -> 24^3, 60 steps on the built-in scene (a few seconds).
TINY_FIT = ["resolutions=[[16,16,16],[24,24,24]]", "upsample_steps=[30]", "steps=60", "batch_size=1024",
            "lr_decay_steps=60", "lr_density_delay_steps=10", "log_every=20", "eval_views=4"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A fitted run folder on the built-in scene, shared by the prune/export/info tests (read-only)."""
    from plenox.runs.fitting import fit_run

    path = tmp_path_factory.mktemp("tiny") / "run"
    fit_run(None, str(path), "tiny", TINY_FIT, progress=False)
    return path


@pytest.fixture
def one_torch_thread():
    """Tiny matrices gain nothing from a second thread, and one thread does not stall when cores are shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
