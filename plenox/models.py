"""The model kinds a run can hold, by name: how to train one and how to load one for rendering.

Every kind fits the same interface, so workflow (fit, eval, render), info and compare treat
a Plenoxels grid and a NeRF alike:
  trainer(scene, config, run, device)          a plenox.training.TrainingLoop: train a batch,
                                               log, checkpoint, resume exactly
  load_renderer(run, config, scene, device)    a plenox.renderer.Renderer: render rays
  model_file                                   the file in the run folder that rendering needs
  default_configs                              shipped config per scene format or capture kind
                                               ("forward", "object": workflow.scene_format; "*": others)
"""

from dataclasses import dataclass
from typing import Callable

from plenox.config import ConfigError
from plenox.fit import Trainer, view_options
from plenox.nerf.fitting import NerfTrainer, load_renderer
from plenox.renderer import GridRenderer


@dataclass(frozen=True)
class ModelKind:
    """One model kind's entry points (see the module docstring)."""

    name: str
    model_file: str
    default_configs: dict
    trainer: Callable
    load_renderer: Callable

    def default_config(self, scene_format: str) -> str:
        """The shipped config this kind uses for a scene format when none is named."""
        return self.default_configs.get(scene_format, self.default_configs["*"])


def _grid_renderer(run, config, scene, device) -> GridRenderer:
    return GridRenderer(run.load_grid().to(device), view_options(scene, config))


def _nerf_renderer(run, config, scene, device):
    return load_renderer(run, scene, device)


MODELS = {
    "plenoxels": ModelKind("plenoxels", "grid.npz",
                           {"builtin": "builtin", "blender": "synthetic", "forward": "llff", "object": "custom",
                            "*": "custom"},
                           Trainer, _grid_renderer),
    "nerf": ModelKind("nerf", "nerf.pt", {"forward": "nerf_llff", "*": "nerf_synthetic"}, NerfTrainer, _nerf_renderer),
}


def model_kind(name: str) -> ModelKind:
    """The registered kind called ``name``; ConfigError listing the known ones otherwise."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r} (choose from {', '.join(MODELS)})")
    return MODELS[name]
