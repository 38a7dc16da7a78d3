"""The grid's coarse-to-fine resolutions chosen from the training images and the time budget.

A config's ``resolutions`` give the schedule's shape (how many levels, their proportions). With
``grid_from_images`` the whole list is scaled, axis by axis, so that its last level is what the
images call for, capped by the budget:

- From the images: ``voxels_per_pixel`` voxels per pixel footprint. For a scene in world space
  the footprint is the width one pixel covers at the cameras' typical distance (median over the
  training cameras of distance to the box centre / focal length); each axis gets
  voxels_per_pixel x (box width / footprint). For a forward-facing scene in NDC the box spans
  the reference camera's image, so x and y get voxels_per_pixel x the image width and height,
  and z keeps the config's last-level proportion to x.
- Depth in NDC: z (disparity levels) is then held at the config's last-level z at most. A
  ray's samples, so a training step's cost, grow with z while the detail a larger image adds
  is across x and y: on fern at 1008x756 the last level trains 1.2x the rays per second with
  64 disparity levels as with the 80 the budget allows (docs/benchmarks.md; measured together
  with llff's earlier upsamples, not apart).
- From the budget: at most CELLS_PER_MINUTE cells per minute of ``--minutes`` (all axes scaled
  alike to fit). The rate is what the shipped configs were tuned to on 2 CPU cores: lego_200's
  160^3 in 10 minutes and fern's 512x384x64 (images_8) in 30 both hold about 0.41-0.42 M cells
  per minute. Without a time budget only the images decide.

Levels are rounded to multiples of ROUND voxels (at least ROUND). The stage lengths follow the
budget already: with ``--minutes`` the upsample steps are laid out over the time
(``GridTrainer.schedule_step``).
"""

from __future__ import annotations

import numpy as np

CELLS_PER_MINUTE = 450_000
ROUND = 16


def pixel_footprint(scene, center) -> float:
    """World units one pixel covers at the training cameras' median distance from ``center`` (3,)."""
    cams = scene.splits["train"].cameras
    positions = cams.c2w[:, :3, 3].double().numpy()
    distance = np.linalg.norm(positions - np.asarray(center, dtype=np.float64), axis=1)
    return float(np.median(distance / cams.fx.double().numpy()))


def image_resolution(scene, radius, last_level, voxels_per_pixel: float) -> np.ndarray:
    """(3,) float voxels per axis the training images call for (see the module docstring);
    ``radius`` (3,) is the grid box's half-size, ``last_level`` the config's last resolution."""
    cams = scene.splits["train"].cameras
    if scene.ndc:
        x, y = voxels_per_pixel * cams.width, voxels_per_pixel * cams.height
        return np.array([x, y, x * last_level[2] / last_level[0]], dtype=np.float64)
    footprint = pixel_footprint(scene, scene.center)
    return voxels_per_pixel * 2.0 * np.asarray(radius, dtype=np.float64) / footprint


def budget_cap(final: np.ndarray, minutes: float | None) -> np.ndarray:
    """``final`` (3,) scaled down alike on all axes to at most CELLS_PER_MINUTE * minutes cells."""
    if minutes is None:
        return final
    most = CELLS_PER_MINUTE * minutes
    cells = float(np.prod(final))
    return final * min(1.0, (most / cells) ** (1.0 / 3.0))


def round_level(values) -> list[int]:
    """Each value to the nearest multiple of ROUND, at least ROUND."""
    return [max(ROUND, ROUND * int(round(v / ROUND))) for v in values]


def scaled_levels(resolutions: list, final) -> list[list[int]]:
    """The levels of ``resolutions`` scaled per axis so the last becomes ``final`` (3,), rounded."""
    last = np.asarray(resolutions[-1], dtype=np.float64)
    scale = np.asarray(final, dtype=np.float64) / last
    levels = [round_level(np.asarray(level) * scale) for level in resolutions]
    for i in range(1, len(levels)):   # rounding must not make a level coarser than the one before
        levels[i] = [max(a, b) for a, b in zip(levels[i], levels[i - 1])]
    return levels


def plan_resolutions(scene, radius, resolutions: list, voxels_per_pixel: float, minutes: float | None
                     ) -> tuple[list[list[int]], str]:
    """(levels, why): the coarse-to-fine resolutions for ``scene`` and the budget, and one line
    saying where the last level comes from."""
    wanted = image_resolution(scene, radius, resolutions[-1], voxels_per_pixel)
    capped = budget_cap(wanted, minutes)
    final = capped.copy()
    if scene.ndc:
        final[2] = min(final[2], resolutions[-1][2])
    levels = scaled_levels(resolutions, final)
    images = "x".join(str(int(round(v))) for v in wanted)
    unit = "image pixel (NDC)" if scene.ndc else "pixel footprint of the training images"
    why = f"{voxels_per_pixel:g} voxels per {unit} gives {images}"
    if not np.allclose(capped, wanted):
        why += f", capped to {CELLS_PER_MINUTE * minutes / 1e6:.1f} M cells by the {minutes:g}-minute budget"
    if final[2] < capped[2]:
        why += f", at most {resolutions[-1][2]} disparity levels"
    return levels, why


def describe(levels: list[list[int]], upsample_steps: list, steps: int, minutes: float | None) -> str:
    """One line: each level and when it starts (a step, or a time with a budget)."""
    parts = ["x".join(map(str, levels[0])) + " from the start"]
    for level, at in zip(levels[1:], upsample_steps):
        when = f"{at / steps * minutes:.1f} min" if minutes else f"step {at}"
        parts.append("x".join(map(str, level)) + f" at {when}")
    return ", ".join(parts)


def grid_bytes(cells: int, voxels: int, basis_dim: int, parts: int, itemsize: int = 4) -> int:
    """Bytes a grid of ``voxels`` voxels over ``cells`` cells takes while training: the links
    (int32 per cell) and per voxel 1 + 3 * basis_dim values in the parameters, the RMSProp
    averages, the gradients and ``parts - 1`` private gradient copies of the CPU backward pass."""
    per_voxel = (1 + 3 * basis_dim) * itemsize * (3 + max(parts - 1, 0)) + 1   # + the touched byte
    return 4 * cells + per_voxel * voxels


def gib(n: int) -> str:
    """``n`` bytes in GiB, one decimal."""
    return f"{n / 2 ** 30:.1f} GiB"
