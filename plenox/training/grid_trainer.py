"""Training a Plenoxels grid: random ray batches, sparse RMSProp, TV, coarse-to-fine with pruning.

``GridTrainer(scene, config, run)`` owns the grid, its optimiser and the training state;
``GridTrainer.train(minutes)`` (the shared ``plenox.training.loop.TrainingLoop``) runs until
the step budget or the wall-clock budget is spent, writing a JSONL log and atomic checkpoints
to the run folder; ``GridTrainer.resume`` continues from the last checkpoint exactly (the ray
sampler's RNG state is part of it).
"""

import math

import numpy as np
import torch
from tqdm import tqdm

from plenox.data import Scene
from plenox.memory import available_bytes
from plenox.models.background import Background
from plenox.models.grid import SparseGrid
from plenox.models.grid_autograd import fit_rays, max_weights, render_rays
from plenox.models.renderer import GridRenderer
from plenox.training.grid_config import FitConfig
from plenox.training.grid_schedule import gib, grid_bytes
from plenox.training.loop import RunFolder, TrainingLoop
from plenox.training.optimizer import SparseRMSProp
from plenox.training.pruning import keep_mask
from plenox.training.regularizers import add_tv_grad, random_cell_range


MEMORY_SHARE = 0.9   # a new grid may take this share of the memory available (the rest: images, rays, the OS)
MAX_PARTS = 8        # the CPU backward's gradient copies: one per thread, at most this many (kernels.cpu)


def log_linear_lr(step: int, lr_init: float, lr_final: float, decay_steps: int,
                  delay_steps: int = 0, delay_mult: float = 1.0) -> float:
    """svox2's schedule: log-linear from lr_init to lr_final over decay_steps, scaled during
    the first delay_steps by a factor rising from delay_mult to 1 along a quarter sine."""
    if delay_steps > 0:
        ramp = math.sin(0.5 * math.pi * min(max(step / delay_steps, 0.0), 1.0))
        delay = delay_mult + (1.0 - delay_mult) * ramp
    else:
        delay = 1.0
    t = min(max(step / decay_steps, 0.0), 1.0)
    return delay * math.exp(math.log(lr_init) * (1.0 - t) + math.log(lr_final) * t)


def initial_grid(scene: Scene, config: FitConfig, device: torch.device) -> SparseGrid:
    """Dense grid at the first resolution over the config's foreground box (the scene's unless
    it says otherwise), svox2's initial values (density 0 when the grid starts learning late,
    as svox2's lr_fg_begin_step); with the background model when the config has one."""
    center, radius = config.foreground_box(scene)
    grid = SparseGrid.create(config.resolutions[0], center=center, radius=radius,
                             basis_dim=config.basis_dim,
                             density_init=0.0 if config.fg_begin_step > 0 else config.init_density,
                             sh_init=config.init_sh)
    if config.background_layers:
        grid.background = Background.create(config.background_reso, config.background_layers, config.init_bg_density)
    return grid.to(device)


class GridTrainer(TrainingLoop):
    """Fits a SparseGrid to a scene's training split under a FitConfig."""

    def __init__(self, scene: Scene, config: FitConfig, run: RunFolder, device: torch.device = torch.device("cpu")):
        super().__init__(scene, config, run, device)
        self.options = config.render_options(scene, "train")
        self.view_options = config.render_options(scene, "view")
        origins, dirs, rgb = scene.split_rays("train")
        self.origins, self.dirs, self.rgb = (t.to(device).contiguous() for t in (origins, dirs, rgb))
        self.generator = torch.Generator().manual_seed(config.seed)
        self.grid = initial_grid(scene, config, device)
        self.optimizer = SparseRMSProp(self.grid, config.rms_beta, config.rms_eps)
        self.step = 0
        self.upsamples = 0   # upsamples done so far (index into config.resolutions)
        self.upsample_refused = False   # the next level did not fit in memory: stay at this one
        self.fg_started = config.fg_begin_step == 0   # whether the grid learns yet (svox2's lr_fg_begin_step)

    # ----- one step -----------------------------------------------------------------
    def schedule_step(self) -> float:
        """Where the schedules stand, in steps of config.steps.

        With a time budget the schedules (learning rates, upsamples) are laid out over the
        budget instead: training time spent / budget stands for step / steps, so any budget
        runs the whole schedule, neither cut off nor finished early."""
        if self.budget:
            return min(self.elapsed / self.budget, 1.0) * self.config.steps
        return float(self.step)

    def lr(self) -> tuple[float, float]:
        c = self.config
        at = self.schedule_step()
        if not self.fg_started:   # the background learns the far scene first (svox2's lr_fg_begin_step)
            return 0.0, 0.0
        lr_d = log_linear_lr(at, c.lr_density, c.lr_density_final, c.lr_decay_steps,
                             c.lr_density_delay_steps, c.lr_density_delay_mult)
        lr_s = log_linear_lr(at, c.lr_sh, c.lr_sh_final, c.lr_decay_steps)
        return lr_d, lr_s

    def lr_background(self) -> tuple[float, float]:
        """(density, colour) learning rates of the background model, on the same schedule."""
        c, at = self.config, self.schedule_step()
        return (log_linear_lr(at, c.lr_bg_density, c.lr_bg_density_final, c.lr_decay_steps),
                log_linear_lr(at, c.lr_bg_color, c.lr_bg_color_final, c.lr_decay_steps))

    def tv_active(self) -> bool:
        return self.config.tv_after_upsample or self.upsamples == 0

    def upsample_due(self) -> bool:
        steps = self.config.upsample_steps
        return (not self.upsample_refused and self.upsamples < len(steps)
                and self.schedule_step() >= steps[self.upsamples])

    def memory_refusal(self, resolution: tuple, voxels: int) -> str | None:
        """Why a grid of ``voxels`` voxels at ``resolution`` would not fit next to what this
        process holds (parameters, RMSProp averages, gradients and the CPU backward's private
        copies; MEMORY_SHARE of what the system has available once the current grid is freed),
        or None when it fits or the available memory is unknown."""
        parts = 1 if self.device.type == "cuda" else min(torch.get_num_threads(), MAX_PARTS)
        basis = self.config.basis_dim
        needed = grid_bytes(math.prod(resolution), voxels, basis, parts)
        current = grid_bytes(self.grid.links.numel(), self.grid.n_voxels, basis, parts)
        free = (torch.cuda.mem_get_info(self.device)[0] if self.device.type == "cuda" else available_bytes())
        if free is None or needed <= MEMORY_SHARE * (free + current):
            return None
        where = "GPU memory" if self.device.type == "cuda" else "memory"
        size = "x".join(map(str, resolution))
        return (f"the {size} grid ({voxels:,} voxels) needs about {gib(needed)} and {gib(free + current)} of "
                f"{where} is available; training goes on at {'x'.join(map(str, self.grid.resolution))} "
                "(use fewer voxels: lower resolutions= or voxels_per_pixel=, or a stricter weight_thresh=)")

    def train_step(self) -> float:
        """One batch: render, MSE, backward, regularisers, RMSProp. Returns the batch MSE."""
        c = self.config
        if not self.fg_started and self.schedule_step() >= c.fg_begin_step:
            self.start_foreground()
        idx = torch.randint(0, self.origins.shape[0], (c.batch_size,), generator=self.generator).to(self.device)
        grads = self.optimizer.grads
        target = self.rgb[idx]
        rgb = fit_rays(self.grid, self.origins[idx], self.dirs[idx], target, self.options, grads)
        mse = torch.mean((rgb - target) ** 2)
        if self.tv_active() and (c.lambda_tv > 0 or c.lambda_tv_sh > 0):
            cells = random_cell_range(self.grid, c.tv_fraction, self.generator)
            add_tv_grad(self.grid, grads, cells, c.lambda_tv, c.lambda_tv_sh)
        if self.grid.background is not None and (c.lambda_tv_bg_density > 0 or c.lambda_tv_bg_color > 0):
            voxels = self.optimizer.background.grid
            add_tv_grad(voxels, grads.background, random_cell_range(voxels, c.tv_bg_fraction, self.generator),
                        c.lambda_tv_bg_density, c.lambda_tv_bg_color)
        self.optimizer.step(*self.lr(), *self.lr_background(), sparsity=c.lambda_sparsity)
        self.step += 1
        if self.upsample_due():
            self.upsample()
        return mse.item()

    @torch.no_grad()
    def start_foreground(self) -> None:
        """The grid, empty while the background learned the far scene, starts at init_density
        (as svox2 at lr_fg_begin_step: a grid of zero density gets no gradient)."""
        self.grid.density.fill_(self.config.init_density)
        self.grid.mark_density_changed()
        self.fg_started = True

    # ----- coarse to fine -------------------------------------------------------------
    @torch.no_grad()
    def upsample(self) -> None:
        """Resample to the next resolution, allocating only voxels inside the kept region; when
        the new grid would not fit in the memory available, keep the current one (and say so)."""
        keep = keep_mask(self.grid, self.scene, self.options, self.config.prune_rule())
        new_res = tuple(self.config.resolutions[self.upsamples + 1])
        # A new voxel is kept when the old voxel containing its centre was.
        axes = [np.minimum(((np.arange(n) + 0.5) * o / n).astype(int), o - 1)
                for n, o in zip(new_res, keep.shape)]
        new_keep = keep[np.ix_(*axes)]
        refusal = self.memory_refusal(new_res, int(new_keep.sum()))
        if refusal is not None:
            self.upsample_refused = True
            self.run.append_log({"step": self.step, "time": self.elapsed, "upsample_refused": refusal})
            tqdm.write(f"not upsampling: {refusal}")
            return
        self.upsamples += 1
        # Module.to moves in place: the old grid is dropped right after.
        self.grid = self.grid.to("cpu").resample(new_res, keep=new_keep).to(self.device)
        # The background does not change: its optimiser (and RMSProp state) carries over.
        self.optimizer = SparseRMSProp(self.grid, self.config.rms_beta, self.config.rms_eps,
                                       background=self.optimizer.background)

    # ----- what the shared loop asks of a model ------------------------------------------
    def warm_up(self) -> None:
        """Compile the kernels (training batch, forward, max weight, TV, RMSProp) before the training
        clock starts, so a time budget is not spent on JIT compilation. Runs on a throwaway
        2^3 grid of the same dtype and basis (compilation depends on types, not sizes), so the
        real grid, optimiser and RNG are untouched and resume stays exact."""
        grid = SparseGrid.create(2, basis_dim=self.config.basis_dim, dtype=self.grid.density.dtype).to(self.device)
        origins, dirs = self.origins[:2], self.dirs[:2]
        optimizer = SparseRMSProp(grid)
        fit_rays(grid, origins, dirs, self.rgb[:2], self.options, optimizer.grads)
        render_rays(grid, origins, dirs, self.view_options)   # the held-out curve's and evaluation's forward
        add_tv_grad(grid, optimizer.grads, (0, 1), 1.0, 1.0)
        optimizer.step(0.0, 0.0)
        max_weights(grid, origins, dirs, self.options)

    def log_fields(self) -> dict:
        lr_d, lr_s = self.lr()
        fields = {"voxels": self.grid.n_voxels, "resolution": list(self.grid.resolution),
                  "lr_density": lr_d, "lr_sh": lr_s}
        if self.grid.background is not None:
            fields["lr_bg_density"], fields["lr_bg_color"] = self.lr_background()
        return fields

    def setup_record(self) -> dict:
        """The model chosen: foreground box, background model (plenox.training.grid_config)."""
        return {"model": "plenoxels", **self.config.model_record(self.scene)}

    def renderer(self) -> GridRenderer:
        """The grid as eval renders it (the "view" options), for the held-out curve and fit's final metrics."""
        return GridRenderer(self.grid, self.view_options)

    # ----- checkpoints -------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Grid (float32 SH, exact) and training state, each written atomically."""
        self.run.save_grid(self.grid, exact=True)
        self.run.save_state({"step": self.step, "elapsed": self.elapsed, "upsamples": self.upsamples,
                             "fg_started": self.fg_started,
                             "generator": self.generator.get_state(),
                             "optimizer": self.optimizer.state_dict()})

    def resume(self) -> None:
        """Continue from the run folder's checkpoint (grid, optimiser, step, RNG, time)."""
        state = self.run.load_state({"step": int, "elapsed": (int, float), "upsamples": int,
                                     "generator": torch.Tensor, "optimizer": dict})
        self.grid = self.run.load_grid().to(self.device)
        self.optimizer = SparseRMSProp(self.grid, self.config.rms_beta, self.config.rms_eps)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.step = int(state["step"])
        self.upsamples = int(state["upsamples"])
        self.fg_started = bool(state.get("fg_started", True))
        self.elapsed = float(state["elapsed"])
