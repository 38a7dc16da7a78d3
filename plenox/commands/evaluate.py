"""``plenox eval``: measure a run's model on a split -> DIR/eval/metrics.json."""

from plenox.errors import RunError
from plenox.options import require_number
from plenox.runs.evaluation import evaluate_model, training_seconds
from plenox.runs.loading import open_run


def eval_run(path: str, split: str = "test", views: int = 0, device: str = "auto") -> dict:
    """PSNR/SSIM of run ``path``'s model on the first ``views`` (0: all) views of ``split``,
    rendered as fit's final evaluation renders; returns the metrics."""
    require_number("--views", views, 0, integer=True)
    run, cfg, scene, renderer = open_run(path, device)
    if split not in scene.splits:
        raise RunError(f"{run.path}: the scene has no {split!r} split (has {', '.join(sorted(scene.splits))})")
    return evaluate_model(run, scene, renderer, split, views, training_seconds(run))
