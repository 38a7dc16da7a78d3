"""NeRF training and rendering: coarse and fine MLPs, hierarchical sampling, Adam, checkpoints.

Follows the reference code (nerf-pytorch's run_nerf.py) rather than the paper text; see
NerfConfig for its defaults. All tensors are float32; rays are (R, 3) origins and
directions in world space (or in NDC for forward-facing scenes, converted by the data layer).
"""

import dataclasses

import numpy as np
import torch

from plenox.io.atomic import atomic_torch_save
from plenox.metrics import psnr_from_mse

from .encoding import PositionalEncoding
from .network import NerfMLP
from .sampling import hierarchical_samples, stratified_samples
from .volume import volume_render


@dataclasses.dataclass
class NerfConfig:
    """Hyper-parameters; defaults are the reference's Blender (NeRF-synthetic) settings.

    Attributes:
        n_coarse: stratified samples per ray for the coarse network.
        n_fine: importance samples per ray; the fine network sees n_coarse + n_fine.
        netdepth, netwidth: MLP trunk layers and width (both networks).
        multires, multires_views: positional-encoding octaves for points and directions.
        use_viewdirs: condition colour on the view direction.
        lr: initial Adam learning rate.
        lr_decay_steps: steps over which the rate falls tenfold: lr * 0.1 ** (step / lr_decay_steps).
        batch_rays: rays per training step.
        chunk: rays per forward/backward pass, in training and rendering (the reference's
            ``chunk``). It bounds memory and does not change results: a training batch is
            processed chunk by chunk with gradients accumulated before the one Adam step.
            Small chunks keep each activation under glibc's 32 MB mmap threshold so buffers
            are reused rather than page-faulted in afresh: 128 trains 20-30% faster than
            1024 on the CPU.
        raw_noise_std: density noise while training (1.0 for LLFF, 0 for Blender).
        perturb: jitter coarse samples and draw fine samples randomly while training.
        white_bkgd: composite onto white (Blender) rather than black.
        near, far: sampling range along the ray, in units of the direction's length
            (Blender 2 and 6; NDC rays 0 and 1).
        lindisp: sample linearly in inverse depth.
        precrop_iters, precrop_frac: for the first precrop_iters steps, draw rays only from
            the centre crop covering precrop_frac of each image side (Blender's start-up aid).
        batching: "image" draws each batch from one random training image (the reference's
            no_batching, used for Blender; ``sample_batch``); "all" walks through a shuffled
            list of every training ray (its default, used for LLFF; ``ShuffledRays``).
        seed: seeds network initialisation and the training random stream.
    """

    n_coarse: int = 64
    n_fine: int = 128
    netdepth: int = 8
    netwidth: int = 256
    multires: int = 10
    multires_views: int = 4
    use_viewdirs: bool = True
    lr: float = 5e-4
    lr_decay_steps: int = 500_000
    batch_rays: int = 1024
    chunk: int = 128
    raw_noise_std: float = 0.0
    perturb: bool = True
    white_bkgd: bool = True
    near: float = 2.0
    far: float = 6.0
    lindisp: bool = False
    precrop_iters: int = 500
    precrop_frac: float = 0.5
    batching: str = "image"
    seed: int = 0

    @classmethod
    def llff(cls, **overrides) -> "NerfConfig":
        """The reference's LLFF (fern) settings: NDC rays, 64 + 64 samples, density noise 1.0, decay over 250k,
        batches drawn across all images."""
        base = dict(n_fine=64, lr_decay_steps=250_000, raw_noise_std=1.0, white_bkgd=False, near=0.0, far=1.0,
                    precrop_iters=0, batching="all")
        return cls(**{**base, **overrides})


class NerfModel:
    """Coarse and fine NeRF MLPs with their optimiser and training step counter.

    Args:
        config: hyper-parameters (defaults: reference Blender settings).
        device: torch device for networks, rays and random streams.
    """

    def __init__(self, config: NerfConfig | None = None, device="cpu"):
        self.config = config or NerfConfig()
        self.device = torch.device(device)
        cfg = self.config
        self.embed_xyz = PositionalEncoding(cfg.multires).to(self.device)
        self.embed_dir = PositionalEncoding(cfg.multires_views).to(self.device)
        # Seed initialisation without disturbing the caller's global random state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.coarse = self._make_network().to(self.device)
            self.fine = self._make_network().to(self.device)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.background = torch.ones(3, device=self.device) if cfg.white_bkgd else None
        self.step = 0

    def _make_network(self) -> NerfMLP:
        cfg = self.config
        return NerfMLP(cfg.netdepth, cfg.netwidth, (4,), self.embed_xyz.out_dim, self.embed_dir.out_dim,
                       cfg.use_viewdirs)

    def parameters(self) -> list:
        """Trainable tensors of both networks, coarse first."""
        return list(self.coarse.parameters()) + list(self.fine.parameters())

    def num_parameters(self) -> int:
        """Scalars in both networks (2 x 595,844 at the reference size)."""
        return sum(p.numel() for p in self.parameters())

    def learning_rate(self, step: int | None = None) -> float:
        """Learning rate used for the update that follows ``step`` completed steps (default: now).

        The reference resets the rate after each update, so its update i uses the rate of
        step i - 1; a one-step shift that is immaterial over a 500k-step decay.
        """
        step = self.step if step is None else step
        return self.config.lr * 0.1 ** (step / self.config.lr_decay_steps)

    def _as_rays(self, x) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    def _prepare_rays(self, origins, dirs, viewdirs):
        """Rays as float32 tensors on the device, view directions defaulting to normalised dirs."""
        origins, dirs = self._as_rays(origins), self._as_rays(dirs)
        if viewdirs is None:
            return origins, dirs, dirs / torch.linalg.vector_norm(dirs, dim=-1, keepdim=True)
        return origins, dirs, self._as_rays(viewdirs)

    def _chunks(self, n_rays: int):
        """Slices covering range(n_rays) in config.chunk steps."""
        return [slice(start, start + self.config.chunk) for start in range(0, n_rays, self.config.chunk)]

    def _shade(self, network: NerfMLP, origins, dirs, d_enc, t, noise_std: float) -> dict:
        """Evaluate ``network`` at every sample of every ray in one batch and composite."""
        points = origins[:, None, :] + dirs[:, None, :] * t[..., None]  # (R, S, 3)
        raw_rgb, raw_sigma = network(self.embed_xyz(points), d_enc)
        return volume_render(raw_rgb, raw_sigma, t, dirs, self.background, noise_std, self.generator)

    def _render(self, origins, dirs, viewdirs, training: bool):
        """Coarse and fine renders of a batch of rays (reference render_rays).

        Training draws jittered coarse and random fine samples and adds density noise;
        otherwise sample placement is deterministic and noise-free.
        """
        cfg = self.config
        random = training and cfg.perturb
        d_enc = self.embed_dir(viewdirs)[:, None, :]  # encoded once per ray, broadcast over samples
        noise_std = cfg.raw_noise_std if training else 0.0
        t = stratified_samples(cfg.near, cfg.far, cfg.n_coarse, origins.shape[0], random, self.generator,
                               cfg.lindisp, device=self.device)
        coarse = self._shade(self.coarse, origins, dirs, d_enc, t, noise_std)
        t_all = hierarchical_samples(t, coarse["weights"], cfg.n_fine, not random, self.generator)
        fine = self._shade(self.fine, origins, dirs, d_enc, t_all, noise_std)
        return coarse, fine

    def train_step(self, origins, dirs, target_rgb, viewdirs=None) -> dict:
        """One Adam update on a batch of rays; loss = MSE(coarse) + MSE(fine).

        Args:
            origins, dirs: (R, 3) rays.
            target_rgb: (R, 3) colours in [0, 1].
            viewdirs: (R, 3) unit directions fed to the colour branch; default dirs normalised.
                NDC rays should pass their world-space directions here, as the reference does.

        Returns:
            dict(loss=float, mse=float, psnr=float): the summed loss, the fine render's MSE and
            its PSNR (dB).
        """
        origins, dirs, viewdirs = self._prepare_rays(origins, dirs, viewdirs)
        target_rgb = self._as_rays(target_rgb)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        self.optimizer.zero_grad(set_to_none=True)
        sq_coarse = sq_fine = torch.zeros((), device=self.device)
        for part in self._chunks(origins.shape[0]):
            coarse, fine = self._render(origins[part], dirs[part], viewdirs[part], training=True)
            err_coarse = (coarse["rgb"] - target_rgb[part]).square().sum()
            err_fine = (fine["rgb"] - target_rgb[part]).square().sum()
            # Each chunk's share of the batch means; the accumulated gradient is the batch gradient.
            ((err_coarse + err_fine) / target_rgb.numel()).backward()
            sq_coarse, sq_fine = sq_coarse + err_coarse.detach(), sq_fine + err_fine.detach()
        self.optimizer.step()
        self.step += 1
        mse_coarse, mse_fine = sq_coarse.item() / target_rgb.numel(), sq_fine.item() / target_rgb.numel()
        return {"loss": mse_coarse + mse_fine, "mse": mse_fine, "psnr": psnr_from_mse(mse_fine)}

    @torch.no_grad()
    def render_rays(self, origins, dirs, viewdirs=None) -> dict:
        """Deterministic fine render, config.chunk rays at a time.

        Args:
            origins, dirs: (R, 3) rays; viewdirs as in train_step.

        Returns:
            dict with rgb (R, 3) in [0, 1], depth (R,) in units of t, acc (R,) opacity.
        """
        origins, dirs, viewdirs = self._prepare_rays(origins, dirs, viewdirs)
        parts = [self._render(origins[part], dirs[part], viewdirs[part], training=False)[1]
                 for part in self._chunks(origins.shape[0])]
        return {key: torch.cat([p[key] for p in parts]) for key in ("rgb", "depth", "acc")}

    def sample_batch(self, images, rays_o, rays_d, step: int, generator: torch.Generator | None = None):
        """Draw batch_rays distinct pixels of one random training image (reference no_batching path).

        For step < precrop_iters only the centre crop (precrop_frac of each side) is used, as
        the reference does to keep Blender training from collapsing to the white background.

        Args:
            images: (N, H, W, 3) colours in [0, 1]; numpy array or tensor.
            rays_o, rays_d: (N, H, W, 3) per-pixel rays, same type as images.
            step: the training step the batch is for.
            generator: CPU random source for the image and pixel choice (global stream if None).

        Returns:
            origins (B, 3), dirs (B, 3), target_rgb (B, 3) float32 tensors on the model's device;
            pixels repeat only when the (cropped) image has fewer than batch_rays of them.
        """
        n_images, height, width = images.shape[:3]
        image = int(torch.randint(n_images, (1,), generator=generator))
        if step < self.config.precrop_iters:
            half_h, half_w = int(height // 2 * self.config.precrop_frac), int(width // 2 * self.config.precrop_frac)
            row0, col0, crop_h, crop_w = height // 2 - half_h, width // 2 - half_w, 2 * half_h, 2 * half_w
        else:
            row0, col0, crop_h, crop_w = 0, 0, height, width
        n_pixels, n_rays = crop_h * crop_w, self.config.batch_rays
        if n_rays <= n_pixels:
            flat = torch.randperm(n_pixels, generator=generator)[:n_rays]
        else:
            flat = torch.randint(n_pixels, (n_rays,), generator=generator)
        rows, cols = row0 + flat // crop_w, col0 + flat % crop_w
        return tuple(self._as_rays(_pixels(a, image, rows, cols)) for a in (rays_o, rays_d, images))

    def network_state(self) -> dict:
        """What rendering needs: config, both networks' weights and the step they are at."""
        return {"config": dataclasses.asdict(self.config), "coarse": self.coarse.state_dict(),
                "fine": self.fine.state_dict(), "step": self.step}

    def training_state(self) -> dict:
        """What resuming needs on top of network_state: optimiser moments and the random stream."""
        return {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}

    def state_dict(self) -> dict:
        """Everything needed to resume bit-for-bit: network_state() and training_state() together."""
        return {**self.network_state(), **self.training_state()}

    def load_network_state(self, state: dict) -> None:
        """Restore weights and step from network_state() output; the architecture must match the config."""
        self.coarse.load_state_dict(state["coarse"])
        self.fine.load_state_dict(state["fine"])
        self.step = int(state["step"])

    def load_state_dict(self, state: dict) -> None:
        """Restore from state_dict() output; the architecture must match this model's config."""
        self.load_network_state(state)
        self.optimizer.load_state_dict(state["optimizer"])
        # Generator states are CPU byte tensors whatever the device they were mapped to.
        self.generator.set_state(state["generator"].cpu())

    def save(self, path) -> None:
        """Write a checkpoint atomically: a reader sees the old file or the complete new one."""
        atomic_torch_save(path, self.state_dict())

    @classmethod
    def load(cls, path, device="cpu") -> "NerfModel":
        """Rebuild a model, with its stored config, from a checkpoint written by save()."""
        state = torch.load(path, map_location=device, weights_only=True)
        model = cls(NerfConfig(**state["config"]), device=device)
        model.load_state_dict(state)
        return model


def _pixels(array, image: int, rows: torch.Tensor, cols: torch.Tensor):
    """array[image, rows, cols] for a numpy array or tensor, without copying the whole array."""
    if isinstance(array, np.ndarray):
        return np.ascontiguousarray(array[image, rows.numpy(), cols.numpy()])
    return array[image, rows.to(array.device), cols.to(array.device)]
