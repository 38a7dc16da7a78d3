"""The run folder that ``plenox fit`` writes and render/eval/export read.

Layout of DIR:
  config.json        the resolved config; its "model" says what the run holds ("plenoxels", "nerf")
  scene.json         how to reload the scene (path, format, downscale, background)
  grid.npz           plenoxels: the checkpointed grid (svox2 keys; float32 SH so resume is exact)
  nerf.pt            nerf: config, coarse and fine network weights, step (what rendering needs)
  state.pt           training state: step, training seconds, RNG, optimiser
  log.jsonl          one JSON record per log interval
  renders/<split>/   rendered images; eval/metrics.json  evaluation
  prune.json         written by ``plenox prune``: rule, sizes and PSNR before/after
                     (with eval_unpruned/metrics.json, the source grid on the same views)
  import.json        written by ``plenox import``: the svox2 checkpoint the grid came from
Every file is written through plenox.io.atomic (temporary name, fsync, rename), so a crash
leaves the previous version intact. A folder counts as a run when it holds config.json.
"""

import json
from pathlib import Path

import numpy as np
import torch

from plenox.io.atomic import atomic_torch_save, atomic_write_json
from plenox.models.grid import SparseGrid
from plenox.errors import RunError



class RunDir:
    """Paths and atomic readers/writers of one run folder."""

    def __init__(self, path):
        self.path = Path(path)

    config_file = property(lambda self: self.path / "config.json")
    scene_file = property(lambda self: self.path / "scene.json")
    grid_file = property(lambda self: self.path / "grid.npz")
    nerf_file = property(lambda self: self.path / "nerf.pt")
    state_file = property(lambda self: self.path / "state.pt")
    log_file = property(lambda self: self.path / "log.jsonl")
    prune_file = property(lambda self: self.path / "prune.json")
    import_file = property(lambda self: self.path / "import.json")

    def renders(self, split: str) -> Path:
        return self.path / "renders" / split

    def eval_dir(self) -> Path:
        return self.path / "eval"

    def exists(self) -> bool:
        return self.config_file.exists()

    def require(self) -> "RunDir":
        """Return self if the folder holds a run, else raise RunError naming what is missing."""
        if not self.path.is_dir():
            raise RunError(f"{self.path}: no such run folder")
        if not self.exists():
            raise RunError(f"{self.config_file}: missing (is {self.path} a plenox run folder?)")
        return self

    def create(self, config: dict, scene_info: dict, force: bool = False) -> None:
        """Start a new run: refuse to clobber an existing one unless ``force``."""
        if self.exists() and not force:
            raise RunError(f"{self.path}: already holds a run (use --resume to continue it or --force to replace it)")
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path}: exists and is not a folder")
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in (self.grid_file, self.nerf_file, self.state_file, self.log_file):
            stale.unlink(missing_ok=True)
        atomic_write_json(self.config_file, config)
        atomic_write_json(self.scene_file, scene_info)

    def read_json(self, path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise RunError(f"{path}: missing (is {self.path} a plenox run folder?)") from None
        except json.JSONDecodeError as err:
            raise RunError(f"{path}: malformed JSON ({err.msg})") from None

    def config(self) -> dict:
        return self.read_json(self.config_file)

    def scene_info(self) -> dict:
        return self.read_json(self.scene_file)

    def model_kind(self) -> str:
        """The model the run holds, from config.json ("plenoxels" for runs that predate the field)."""
        return self.config().get("model", "plenoxels")

    def save_grid(self, grid: SparseGrid, exact: bool = True) -> None:
        grid.save(self.grid_file, sh_dtype=np.float32 if exact else np.float16)

    def load_grid(self) -> SparseGrid:
        """The run's grid; RunError for a run of another model or one without a checkpoint yet."""
        kind = self.model_kind()
        if kind != "plenoxels":
            raise RunError(f"{self.path}: holds a {kind} model, not a plenoxels grid (render, eval, info and "
                           "export --format video/depth work on it; prune and grid exports do not)")
        if not self.grid_file.exists():
            raise RunError(f"{self.grid_file}: missing (the run has no checkpoint yet)")
        return SparseGrid.load(self.grid_file)

    def save_state(self, state: dict) -> None:
        atomic_torch_save(self.state_file, state)

    def load_state(self) -> dict:
        if not self.state_file.exists():
            raise RunError(f"{self.state_file}: missing (nothing to resume)")
        return torch.load(self.state_file, weights_only=False)

    def append_log(self, record: dict) -> None:
        with open(self.log_file, "a") as f:
            f.write(json.dumps(record) + "\n")

    def read_log(self) -> list[dict]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]
