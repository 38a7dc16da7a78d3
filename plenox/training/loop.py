"""The training loop every model shares: budgets, progress bar, JSONL log, held-out PSNR, checkpoints.

A model's trainer subclasses :class:`TrainingLoop` and supplies one batch step, what its log
records add, a renderer for the held-out views, and checkpoint save/resume; ``train`` then
runs it under a step and wall-clock budget the same way for a Plenoxels grid and a NeRF.

Log records (one JSON object per line of DIR/log.jsonl):
  setup     the first record of a fit, {"setup": ...}: what the trainer's ``setup_record``
            says of the model chosen (grid: its box and background model), if anything
  training  step, time (training seconds so far), loss, psnr (of the batch MSE), rays_per_s
            (over the steps since the last record, training time only), peak_rss_mb, plus
            the trainer's ``log_fields`` (grid: voxels, resolution, learning rates; NeRF: lr)
  held-out  step, time, heldout_psnr (mean over views), heldout_views, heldout_stride,
            peak_rss_mb, plus ``log_fields``; written at step 0 and every eval_every_s
            training seconds when eval_every_s > 0 (on every eval_every_stride-th pixel per
            axis of the first eval_every_views views of the eval split: a cheap estimate of
            their PSNR; stride 0 picks one that leaves about 24 pixels across)
"""

import math
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from plenox.config import RunSettings
from plenox.data import Scene
from plenox.memory import peak_rss_bytes
from plenox.metrics import psnr, psnr_from_mse

MB = 1e6
AUTO_STRIDE_PIXELS = 24   # eval_every_stride 0: a held-out view is subsampled to about this many pixels across


MSE_FLOOR = 1e-12          # a perfect batch logs 120 dB: JSON has no infinity


class RunFolder(Protocol):
    """What training needs of a run folder (plenox.runs.folder.RunDir is one): checkpoints and the log."""

    path: Path
    nerf_file: Path

    def append_log(self, record: dict) -> None: ...
    def save_state(self, state: dict) -> None: ...
    def load_state(self) -> dict: ...
    def save_grid(self, grid, exact: bool = True) -> None: ...
    def load_grid(self): ...


class TrainingLoop:
    """Budgeted training of one model on a scene's training split, logged into a run folder.

    Subclasses implement ``train_step``, ``log_fields``, ``renderer``, ``save_checkpoint``
    and ``resume`` (and may ``warm_up``), and keep ``step`` (completed steps).
    """

    def __init__(self, scene: Scene, config: RunSettings, run: RunFolder, device: torch.device):
        self.scene = scene
        self.config = config
        self.run = run
        self.device = device
        self.elapsed = 0.0   # training seconds, summed over resumed sessions
        self.budget = None   # training-seconds budget of the current train() call, if any
        self._heldout = None  # (origins, dirs, images) of the held-out views, built on first use
        # Optional callable(loop, mse, seconds) run after every step, outside the training clock: the
        # live viewer renders the model from there, between steps, so it never sees a half-updated grid.
        self.on_step = None

    # ----- what a model provides ----------------------------------------------------
    def warm_up(self) -> None:
        """One-off work before the training clock starts (the grid compiles its kernels); none by default."""

    def train_step(self) -> float:
        """One batch update; returns the batch's colour MSE (the PSNR that is logged)."""
        raise NotImplementedError

    def log_fields(self) -> dict:
        """Model-specific fields added to every log record."""
        raise NotImplementedError

    def setup_record(self) -> dict | None:
        """What the log's first record says of the model chosen (None: nothing)."""
        return None

    def renderer(self):
        """The current model as a renderer (``render_image(origins, dirs) -> dict(rgb, depth, acc)``)."""
        raise NotImplementedError

    def save_checkpoint(self) -> None:
        raise NotImplementedError

    def resume(self) -> None:
        raise NotImplementedError

    # ----- the loop -------------------------------------------------------------------
    def train(self, minutes: float | None = None, progress: bool = True) -> dict:
        """Train for ``minutes`` of (total) training time if given, else config.steps; checkpoint at the end.

        A record is logged every log_every steps or log_every_s training seconds, whichever
        comes first, and for the last steps when training stops; with eval_every_s > 0 the
        held-out PSNR is logged before the first step, every eval_every_s training seconds
        (from eval_first_s at doubling spacing, if set) and at the end. Ctrl-C stops after the
        current step and still writes the checkpoint.
        Returns the last training log record.
        """
        c = self.config
        self.budget = None if minutes is None else minutes * 60.0
        self.warm_up()
        bar = tqdm(total=c.steps, initial=self.step, disable=not progress, unit="step", dynamic_ncols=True,
                   desc=c.model, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
        record, window = {}, []   # window: (mse, seconds) of each step since the last record
        last_ckpt = time.perf_counter()
        heldout_step = None
        setup = self.setup_record() if self.step == 0 else None
        if setup is not None:
            self.run.append_log({"setup": setup})
        if c.eval_every_s > 0 and self.step == 0:
            heldout_step = self.log_heldout()
        next_eval = self.next_heldout_time()
        try:
            while self.keep_going():
                start = time.perf_counter()
                mse = self.train_step()
                took = time.perf_counter() - start
                self.elapsed += took
                window.append((mse, took))
                bar.update(1)
                if self.on_step is not None:
                    self.on_step(self, mse, took)
                if self.step % c.log_every == 0 or self.step == c.steps or sum(t for _, t in window) >= c.log_every_s:
                    record, window = self.log_window(window, bar), []
                if c.eval_every_s > 0 and self.elapsed >= next_eval:
                    heldout_step = self.log_heldout()
                    next_eval = self.next_heldout_time()
                if time.perf_counter() - last_ckpt > c.checkpoint_every_s:
                    self.save_checkpoint()
                    last_ckpt = time.perf_counter()
            if window:
                record, window = self.log_window(window, bar), []
            if c.eval_every_s > 0 and heldout_step != self.step:
                self.log_heldout()
        finally:
            if window:   # interrupted mid-window
                record = self.log_window(window, bar)
            bar.close()
            self.save_checkpoint()
        return record

    def keep_going(self) -> bool:
        """With a time budget, train until it is spent (the schedules are laid out over it);
        otherwise until config.steps."""
        if self.budget is not None:
            return self.elapsed < self.budget
        return self.step < self.config.steps

    def log_window(self, window: list[tuple[float, float]], bar: tqdm) -> dict:
        """Log the record of the steps in ``window`` ((mse, seconds) each), show it on the bar, return it."""
        mses, seconds = zip(*window)
        record = self.log_record(list(mses), len(window) * self.config.rays_per_step / max(sum(seconds), 1e-9))
        self.run.append_log(record)
        bar.set_postfix(psnr=f"{record['psnr']:.2f}", rays_s=f"{record['rays_per_s']:.0f}",
                        eta=self.eta(sum(seconds) / len(window)), refresh=False)
        return record

    def next_heldout_time(self) -> float:
        """Training seconds of the next held-out record: eval_every_s after now, or with
        eval_first_s > 0 first at eval_first_s and then at doubling times until the spacing
        reaches eval_every_s (dense early points where fast models change the most)."""
        c = self.config
        if c.eval_first_s <= 0:
            return self.elapsed + c.eval_every_s
        if self.elapsed < c.eval_first_s:
            return c.eval_first_s
        return self.elapsed + min(c.eval_every_s, self.elapsed)

    def log_heldout(self) -> int:
        """Log a held-out record; return the step it was taken at."""
        self.run.append_log(self.heldout_record())
        return self.step

    def eta(self, seconds_per_step: float) -> str:
        """Training time left, as M:SS: what is left of the time budget, else the steps left at
        the recent pace."""
        if self.budget is not None:
            left = max(self.budget - self.elapsed, 0.0)
        else:
            left = (self.config.steps - self.step) * seconds_per_step
        minutes, seconds = divmod(int(left + 0.5), 60)
        return f"{minutes}:{seconds:02d}"

    def log_record(self, mses: list, rays_per_s: float) -> dict:
        mse = float(np.mean(mses)) if mses else float("nan")
        return {"step": self.step, "time": round(self.elapsed, 3), "loss": mse, "psnr": psnr_from_mse(max(mse, MSE_FLOOR)),
                "rays_per_s": rays_per_s, "peak_rss_mb": peak_rss_bytes() / MB, **self.log_fields()}

    # ----- held-out PSNR -------------------------------------------------------------------
    def heldout_stride(self) -> int:
        """Pixels per axis between held-out samples: eval_every_stride, or automatic for 0."""
        if self.config.eval_every_stride > 0:
            return self.config.eval_every_stride
        cams = self.scene.splits[self.config.eval_split].cameras
        return max(1, math.ceil(max(cams.width, cams.height) / AUTO_STRIDE_PIXELS))

    def heldout_views(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(origins, dirs, image) of the first eval_every_views views of the eval split, every
        heldout_stride()-th pixel per axis: (h, w, 3) each."""
        if self._heldout is None:
            split, stride = self.config.eval_split, self.heldout_stride()
            views = min(self.config.eval_every_views, len(self.scene.splits[split]))
            pick = (slice(stride // 2, None, stride), slice(stride // 2, None, stride))
            self._heldout = [(*(r[pick].contiguous() for r in self.scene.view_rays(split, i)),
                              self.scene.splits[split].images[i][pick]) for i in range(views)]
        return self._heldout

    @torch.no_grad()
    def heldout_record(self) -> dict:
        """Mean PSNR over the held-out views (rendering time is not training time)."""
        render = self.renderer().render_image
        values = [psnr(render(origins, dirs)["rgb"].cpu(), image) for origins, dirs, image in self.heldout_views()]
        return {"step": self.step, "time": round(self.elapsed, 3), "heldout_psnr": float(np.mean(values)),
                "heldout_views": len(values), "heldout_stride": self.heldout_stride(),
                "peak_rss_mb": peak_rss_bytes() / MB, **self.log_fields()}
