"""The model kinds a run can hold, by name: the one list of them, and everything each kind owns.

Every kind fits the same interface, so fit, eval, render, info, compare and the viewer treat
a Plenoxels grid and a NeRF alike:
  config_class                                 its config (a plenox.config.RunSettings)
  trainer(scene, config, run, device)          a plenox.training.loop.TrainingLoop: train a batch,
                                               log, checkpoint, resume exactly
  load_renderer(run, config, scene, device)    a plenox.models.renderer.Renderer of the saved model,
                                               rendering as eval does (the "view" options)
  describe(run)                                what ``plenox info`` says of the saved model
  model_file                                   the file in the run folder that rendering needs
  default_configs                              shipped config per scene format or capture kind
                                               ("forward", "object": runs.loading.scene_format; "object" is
                                               a capture whose photos show its surroundings; "*": others)
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from plenox.config import RunSettings, build_config, config_file, read_config_file
from plenox.errors import ConfigError
from plenox.models.nerf.renderer import load_nerf, load_renderer
from plenox.models.renderer import GridRenderer
from plenox.models.sh import sh_degree
from plenox.runs.folder import RunDir
from plenox.training.grid_config import FitConfig
from plenox.training.grid_trainer import GridTrainer
from plenox.training.nerf_config import NerfFitConfig
from plenox.training.nerf_trainer import NerfTrainer


@dataclass(frozen=True)
class ModelKind:
    """One model kind's entry points (see the module docstring)."""

    name: str
    model_file: str
    default_configs: dict
    config_class: type
    trainer: Callable
    load_renderer: Callable
    describe: Callable
    describe_lines: Callable

    def default_config(self, scene_format: str) -> str:
        """The shipped config this kind uses for a scene format when none is named."""
        return self.default_configs.get(scene_format, self.default_configs["*"])


def _grid_renderer(run: RunDir, config: FitConfig, scene, device) -> GridRenderer:
    return GridRenderer(run.load_grid().to(device), config.render_options(scene, "view"))


def _nerf_renderer(run: RunDir, config: NerfFitConfig, scene, device):
    return load_renderer(run.nerf_file, scene, device)


def _describe_grid(run: RunDir) -> dict:
    """Resolution, voxels, occupancy, SH size, bytes, box and background model of a Plenoxels run's grid."""
    grid = run.load_grid()
    cells = grid.resolution[0] * grid.resolution[1] * grid.resolution[2]
    bg = grid.background
    return {"resolution": list(grid.resolution), "voxels": grid.n_voxels, "occupancy": grid.n_voxels / cells,
            "basis_dim": grid.basis_dim, "sh_degree": sh_degree(grid.basis_dim),
            "memory_bytes": grid.nbytes, "grid_file_bytes": run.grid_file.stat().st_size,
            "box_center": grid.center.tolist(), "box_radius": grid.radius.tolist(),
            "background_model": None if bg is None else {"layers": bg.layers, "map": [2 * bg.reso, bg.reso],
                                                         "pixels": bg.n_rows}}


def _describe_nerf(run: RunDir) -> dict:
    """Network shape, parameters, samples per ray and bytes of a NeRF run's networks."""
    model = load_nerf(run.nerf_file)
    cfg = model.config
    return {"network": [cfg.netdepth, cfg.netwidth], "parameters": model.num_parameters(),
            "samples_per_ray": [cfg.n_coarse, cfg.n_coarse + cfg.n_fine],
            "memory_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
            "nerf_file_bytes": run.nerf_file.stat().st_size}


MB = 1e6


def _grid_lines(d: dict) -> list[str]:
    res = "x".join(str(r) for r in d["resolution"])
    return [f"grid {res}, {d['voxels']:,} voxels ({100 * d['occupancy']:.1f}% of the box), "
            f"SH degree {d['sh_degree']} ({d['basis_dim']} coefficients per channel)",
            f"size {d['memory_bytes'] / MB:.1f} MB in memory, grid.npz {d['grid_file_bytes'] / MB:.1f} MB"]


def _nerf_lines(d: dict) -> list[str]:
    (depth, width), (coarse, fine) = d["network"], d["samples_per_ray"]
    return [f"nerf: coarse and fine MLPs of {depth}x{width}, {d['parameters']:,} parameters, "
            f"{coarse} samples per ray for the coarse one, {fine} for the fine one",
            f"size {d['memory_bytes'] / MB:.1f} MB in memory, nerf.pt {d['nerf_file_bytes'] / MB:.1f} MB"]


MODELS = {
    "plenoxels": ModelKind("plenoxels", "grid.npz",
                           {"builtin": "builtin", "blender": "synthetic", "forward": "llff", "object": "unbounded",
                            "*": "custom"},
                           FitConfig, GridTrainer, _grid_renderer, _describe_grid, _grid_lines),
    "nerf": ModelKind("nerf", "nerf.pt", {"forward": "nerf_llff", "*": "nerf_synthetic"},
                      NerfFitConfig, NerfTrainer, _nerf_renderer, _describe_nerf, _nerf_lines),
}
DEFAULT_MODEL = "plenoxels"


def model_kind(name: str, source: str = "model") -> ModelKind:
    """The registered kind called ``name``; ConfigError naming ``source`` and listing the known ones otherwise."""
    if name not in MODELS:
        raise ConfigError(f"{source}: unknown model {name!r} (choose from {', '.join(MODELS)})")
    return MODELS[name]


def config_from_dict(values: dict, source: str = "config") -> RunSettings:
    """The config object a run's saved config.json describes (its ``model`` picks the class)."""
    return build_config(model_kind(values.get("model", DEFAULT_MODEL), source).config_class, values, source)


def load_config(name_or_file: str = "synthetic", overrides=(), model: str | None = None) -> RunSettings:
    """The config of a shipped config name or a JSON file, then ``key=value`` overrides.

    The file's ``model`` key picks the class; ``model``, when given, must agree with it.
    """
    path: Path = config_file(name_or_file)
    values = read_config_file(path)
    kind = values.get("model", DEFAULT_MODEL)
    if model is not None and kind != model:
        raise ConfigError(f"{path}: is a {kind} config, not a {model} one")
    return build_config(model_kind(kind, str(path)).config_class, values, str(path), overrides)
