"""``plenox eval``: measure a run's model on a split -> DIR/eval/metrics.json."""

from plenox.errors import RunError
from plenox.runs.evaluation import evaluate_model, training_seconds
from plenox.runs.loading import open_run


def eval_run(path: str, split: str = "test", views: int = 0, device: str = "auto") -> dict:
    """PSNR/SSIM of run ``path``'s model on the first ``views`` (0: all) views of ``split``,
    rendered as fit's final evaluation renders; returns the metrics."""
    if views < 0:
        raise RunError(f"--views must be >= 0 (0: all), got {views}")
    run, cfg, scene, renderer = open_run(path, device)
    if split not in scene.splits:
        raise RunError(f"{run.path}: the scene has no {split!r} split (has {', '.join(sorted(scene.splits))})")
    return evaluate_model(run, scene, renderer, split, views, training_seconds(run))
