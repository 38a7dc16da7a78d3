"""Training a NeRF on a Scene through the shared loop, with checkpoints in a run folder.

``NerfTrainer`` draws the reference's batches (one image per step for Blender, a shuffled
walk over every training ray for LLFF), takes NerfModel's Adam step, and checkpoints to
DIR/nerf.pt (config and network weights: what rendering needs) and DIR/state.pt (optimiser
moments, random streams, training seconds: what an exact resume needs).
"""

import torch

from plenox.data import Scene
from plenox.errors import RunError
from plenox.io.atomic import atomic_torch_save
from plenox.models.nerf.batching import ShuffledRays
from plenox.models.nerf.model import NerfModel
from plenox.models.nerf.renderer import NerfRenderer, load_nerf
from plenox.training.nerf_config import NerfFitConfig
from plenox.training.loop import RunFolder, TrainingLoop


class NerfTrainer(TrainingLoop):
    """Fits a NerfModel to a scene's training split under a NerfFitConfig (resolved ``for_scene``)."""

    def __init__(self, scene: Scene, config: NerfFitConfig, run: RunFolder, device: torch.device = torch.device("cpu")):
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
        state = self.run.load_state({"step": int, "elapsed": (int, float), "batch_generator": torch.Tensor,
                                     "generator": torch.Tensor, "optimizer": dict})
        saved = load_nerf(self.run.nerf_file, self.device)
        if int(state["step"]) != saved.step:
            raise RunError(f"{self.run.path}: nerf.pt (step {saved.step}) and state.pt (step {state['step']}) "
                           "disagree; the checkpoint is incomplete")
        self.model.load_state_dict({**saved.network_state(), **state})
        self.generator.set_state(state["batch_generator"])
        self.elapsed = float(state["elapsed"])
