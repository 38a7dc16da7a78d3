"""A fitted NeRF as a Renderer, and reading one from its checkpoint file (nerf.pt).

``NerfRenderer`` renders a Scene's rays with a NerfModel, giving it world-space view
directions for NDC scenes as the reference does; ``load_nerf`` reads the networks that
rendering needs from a checkpoint file.
"""

from pathlib import Path

import torch

from plenox.data import Scene
from plenox.data.cameras import ndc_view_dirs
from plenox.errors import DamagedFileError, RunError
from plenox.io.checked import read_torch
from plenox.models.nerf.model import NerfConfig, NerfModel
from plenox.models.renderer import Renderer

ADVICE = "the run's model cannot be read; restore the file, or fit the run again (plenox fit ... --force)"


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


def load_nerf(path: Path, device="cpu") -> NerfModel:
    """The networks of a NeRF checkpoint file (weights and step; no optimiser state)."""
    if not Path(path).exists():
        raise RunError(f"{path}: missing (the run has no checkpoint yet)")
    state = read_torch(path, ADVICE)
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        raise DamagedFileError(path, "is not a plenox NeRF checkpoint", ADVICE)
    try:
        model = NerfModel(NerfConfig(**state["config"]), device=device)
        model.load_network_state(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise DamagedFileError(path, f"does not hold the networks it describes ({err})", ADVICE) from None
    return model


def load_renderer(path: Path, scene: Scene, device="cpu") -> NerfRenderer:
    """A NeRF checkpoint file's model as a renderer of ``scene``."""
    return NerfRenderer(load_nerf(path, device), scene)
