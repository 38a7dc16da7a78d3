"""A NeRF fitted to a Scene in a run folder: training through the shared loop, rendering, checkpoints.

``NerfTrainer`` draws the reference's batches (one image per step for Blender, a shuffled
walk over every training ray for LLFF), takes NerfModel's Adam step, and checkpoints to
DIR/nerf.pt (config and network weights: what rendering needs) and DIR/state.pt (optimiser
moments, random streams, training seconds: what an exact resume needs). ``NerfRenderer``
renders a Scene's rays with a NerfModel, giving it world-space view directions for NDC
scenes as the reference does.
"""

import torch

from plenox.cameras import ndc_view_dirs
from plenox.config import NerfFitConfig
from plenox.data import Scene
from plenox.renderer import Renderer
from plenox.runs import RunDir, RunError, atomic_torch_save
from plenox.training import TrainingLoop

from .batching import ShuffledRays
from .model import NerfConfig, NerfModel


class NerfRenderer(Renderer):
    """A NerfModel rendering rays of one scene (NDC rays get their world view directions back).

    Args:
        model: the networks.
        scene: the scene whose rays are rendered; for an NDC scene, the NDC warp's image size
            and focal (those of its training cameras, which every split shares).
    """

    def __init__(self, model: NerfModel, scene: Scene):
        self.model = model
        cams = scene.splits["train"].cameras
        self.ndc = (cams.width, cams.height, scene.ndc_focal) if scene.ndc else None

    def view_dirs(self, origins: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor | None:
        """(R, 3) unit world directions for NDC rays; None (dirs normalised by the model) otherwise."""
        return None if self.ndc is None else ndc_view_dirs(origins, dirs, *self.ndc)

    def render_rays(self, origins, dirs) -> dict:
        device = self.model.device
        origins, dirs = origins.to(device, torch.float32), dirs.to(device, torch.float32)
        return self.model.render_rays(origins, dirs, self.view_dirs(origins, dirs))

    def protocol(self) -> dict:
        cfg = self.model.config
        return {"model": "nerf", "background": [1.0, 1.0, 1.0] if cfg.white_bkgd else [0.0, 0.0, 0.0],
                "parameters": self.model.num_parameters(), "network": [cfg.netdepth, cfg.netwidth],
                "samples_per_ray": [cfg.n_coarse, cfg.n_coarse + cfg.n_fine], "step": self.model.step,
                "device": str(self.model.device)}


def load_nerf(run: RunDir, device="cpu") -> NerfModel:
    """The networks of a NeRF run folder (weights and step; no optimiser state)."""
    if not run.nerf_file.exists():
        raise RunError(f"{run.nerf_file}: missing (the run has no checkpoint yet)")
    state = torch.load(run.nerf_file, map_location=device, weights_only=True)
    model = NerfModel(NerfConfig(**state["config"]), device=device)
    model.load_network_state(state)
    return model


def load_renderer(run: RunDir, scene: Scene, device="cpu") -> NerfRenderer:
    """A NeRF run folder's model as a renderer of ``scene``."""
    return NerfRenderer(load_nerf(run, device), scene)


class NerfTrainer(TrainingLoop):
    """Fits a NerfModel to a scene's training split under a NerfFitConfig (resolved ``for_scene``)."""

    def __init__(self, scene: Scene, config: NerfFitConfig, run: RunDir, device: torch.device = torch.device("cpu")):
        super().__init__(scene, config, run, device)
        self.model = NerfModel(config.nerf_config(), device)
        self.view = NerfRenderer(self.model, scene)
        origins, dirs, rgb = scene.split_rays("train")
        cams = scene.splits["train"].cameras
        shape = (len(cams), cams.height, cams.width, 3)
        if config.batching == "image":   # per-image arrays; sample_batch picks pixels of one image
            self.origins, self.dirs, self.rgb = (t.reshape(shape) for t in (origins, dirs, rgb))
            self.shuffled = None
        else:
            self.origins, self.dirs, self.rgb = origins, dirs, rgb
            self.shuffled = ShuffledRays(origins.shape[0], config.batch_rays, config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)   # image and pixel choice

    @property
    def step(self) -> int:
        return self.model.step

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """origins, dirs, target colours (B, 3) of this step's batch, on the model's device."""
        if self.shuffled is None:
            return self.model.sample_batch(self.rgb, self.origins, self.dirs, self.step, self.generator)
        idx = self.shuffled.indices(self.step)
        return tuple(t[idx].to(self.device) for t in (self.origins, self.dirs, self.rgb))

    def train_step(self) -> float:
        origins, dirs, rgb = self.batch()
        return self.model.train_step(origins, dirs, rgb, self.view.view_dirs(origins, dirs))["mse"]

    def log_fields(self) -> dict:
        return {"lr": self.model.learning_rate()}

    def renderer(self) -> NerfRenderer:
        return self.view

    def save_checkpoint(self) -> None:
        """Networks to nerf.pt and the rest of the training state to state.pt, each atomically."""
        atomic_torch_save(self.run.nerf_file, self.model.network_state())
        self.run.save_state({"step": self.step, "elapsed": self.elapsed,
                             "batch_generator": self.generator.get_state(), **self.model.training_state()})

    def resume(self) -> None:
        """Continue from the run folder's checkpoint (weights, Adam moments, step, random streams, time)."""
        state = self.run.load_state()
        saved = load_nerf(self.run, self.device)
        if int(state["step"]) != saved.step:
            raise RunError(f"{self.run.path}: nerf.pt (step {saved.step}) and state.pt (step {state['step']}) "
                           "disagree; the checkpoint is incomplete")
        self.model.load_state_dict({**saved.network_state(), **state})
        self.generator.set_state(state["batch_generator"])
        self.elapsed = float(state["elapsed"])
