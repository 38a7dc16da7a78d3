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

from plenox.io.atomic import atomic_torch_save, atomic_write_json
from plenox.io.checked import read_json, read_jsonl, read_torch, require_fields
from plenox.models.grid import SparseGrid

RERUN = "restore the file, or fit the run again (plenox fit ... --force)"
MODEL_ADVICE = "the run's model cannot be read; restore the file, or fit the run again (plenox fit ... --force)"
STATE_ADVICE = ("the run cannot be resumed (render, eval and export still work); restore the file, "
                "or fit again with --force")
METRICS_ADVICE = "run plenox eval again to rewrite it"
LOG_ADVICE = "restore the file, or delete it (only info and compare read the training log)"
from plenox.errors import DamagedFileError, GridFileError, RunError



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

    def remove_temporaries(self) -> None:
        """Delete what writes killed before their rename left behind (plenox.io.atomic's temporary names)."""
        for stale in self.path.rglob(".*.tmp*"):
            if stale.is_file():
                stale.unlink(missing_ok=True)

    def read_json(self, path: Path, advice: str = RERUN) -> dict:
        """A JSON object file of the run; DamagedFileError (one line, with ``advice``) otherwise."""
        if not path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path}: no such run folder")
        return read_json(path, advice)

    def config(self) -> dict:
        return self.read_json(self.config_file)

    def scene_info(self) -> dict:
        return require_fields(self.read_json(self.scene_file), self.scene_file,
                              {"source": str, "downscale": int}, RERUN)

    def model_kind(self) -> str:
        """The model the run holds, from config.json ("plenoxels" for runs that predate the field)."""
        kind = self.config().get("model", "plenoxels")
        if not isinstance(kind, str):
            raise DamagedFileError(self.config_file, "field 'model' is not text", RERUN)
        return kind

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
        try:
            return SparseGrid.load(self.grid_file)
        except GridFileError as err:
            raise GridFileError(f"{err}; {MODEL_ADVICE}") from None

    def save_state(self, state: dict) -> None:
        atomic_torch_save(self.state_file, state)

    def load_state(self, fields: dict) -> dict:
        """The training state (state.pt), which must hold ``fields`` (name -> type)."""
        if not self.state_file.exists():
            raise RunError(f"{self.state_file}: missing (nothing to resume)")
        state = read_torch(self.state_file, STATE_ADVICE)
        if not isinstance(state, dict):
            raise DamagedFileError(self.state_file, "is not a plenox training state", STATE_ADVICE)
        return require_fields(state, self.state_file, fields, STATE_ADVICE)

    def read_metrics(self) -> dict:
        """eval/metrics.json, checked for the fields the reports read."""
        path = self.eval_dir() / "metrics.json"
        metrics = self.read_json(path, METRICS_ADVICE)
        require_fields(metrics, path, {"results": dict, "protocol": dict, "per_image": list}, METRICS_ADVICE)
        require_fields(metrics["results"], path, {k: (int, float) for k in ("psnr", "ssim", "fps")}, METRICS_ADVICE,
                       "results: ")
        require_fields(metrics["protocol"], path, {"split": str, "views": int, "resolution": list}, METRICS_ADVICE,
                       "protocol: ")
        return metrics

    def append_log(self, record: dict) -> None:
        with open(self.log_file, "a") as f:
            f.write(json.dumps(record) + "\n")

    def read_log(self) -> list[dict]:
        """The log records (an interrupted last line is dropped): a setup record, then records with a
        numeric step and time."""
        records = read_jsonl(self.log_file, LOG_ADVICE)
        for number, record in enumerate(records, 1):
            if "setup" in record:   # the fit's first record: what was set up (box, model), no step yet
                require_fields(record, self.log_file, {"setup": dict}, LOG_ADVICE, f"record {number}: ")
                continue
            require_fields(record, self.log_file, {"step": int, "time": (int, float)}, LOG_ADVICE, f"record {number}: ")
            if "loss" in record:
                require_fields(record, self.log_file, {"psnr": (int, float), "rays_per_s": (int, float)},
                               LOG_ADVICE, f"record {number}: ")
            if "heldout_psnr" in record:
                require_fields(record, self.log_file, {"heldout_psnr": (int, float)}, LOG_ADVICE, f"record {number}: ")
        return records
