"""Fitting a model to a scene into a run folder (new or resumed), then evaluating it."""

from plenox.backend import resolve_device
from plenox.capture.source import is_capture
from plenox.errors import DamagedFileError, RunError, UserError
from plenox.memory import reset_peak_rss
from plenox.runs.evaluation import evaluate_model
from plenox.runs.folder import STATE_ADVICE, RunDir
from plenox.runs.loading import open_scene, run_config, scene_config, scene_record
from plenox.runs.registry import model_kind


def fit_run(source: str | None, out: str, config: str | None = None, overrides=(), minutes: float | None = None,
            resume: bool = False, force: bool = False, device: str = "auto", progress: bool = True,
            model: str | None = None, on_step=None) -> dict:
    """Fit ``model`` (default: the config's) to ``source`` into the run folder ``out``; evaluate
    at the end with the model as eval renders it, so ``plenox eval`` reproduces the figure.
    ``on_step``: see TrainingLoop.on_step (the live viewer renders from there). A ``source`` that
    is a capture (photos without poses, a video) is processed into ``<out>-data`` first
    (plenox.capture.pipeline.capture_for_fit) and reused by later fits.
    Returns the metrics ({"interrupted": True, "step"} after Ctrl-C). The peak memory the log
    records is this fit's: it is reset at the start (plenox.memory)."""
    run = RunDir(out)
    dev = resolve_device(device)
    reset_peak_rss()
    if resume:
        if not run.exists():
            raise RunError(f"{run.path}: no run to resume")
        cfg = run_config(run)
        run.remove_temporaries()
        if model is not None and cfg.model != model:
            raise RunError(f"{run.path}: holds a {cfg.model} run, not a {model} one")
        info = run.scene_info()
        scene = open_scene(info["source"], info["downscale"])
        trainer = model_kind(cfg.model).trainer(scene, cfg, run, dev)
        try:
            trainer.resume()
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:
            if isinstance(err, UserError):
                raise
            raise DamagedFileError(run.state_file, f"does not match the run's model ({err})", STATE_ADVICE) from None
    else:
        if run.exists() and not force:
            raise RunError(f"{run.path}: already holds a run (use --resume to continue it or --force to replace it)")
        if is_capture(source):  # photos without poses or a video: structure-from-motion first, once
            from plenox.capture.pipeline import capture_for_fit  # loads pycolmap, so only for captures
            source = capture_for_fit(source, out, progress)
        cfg, scene = scene_config(source, config, overrides, model, minutes)
        summary = cfg.schedule_summary(minutes)
        if progress and summary:
            print(summary, flush=True)
        run.create(cfg.to_dict(), scene_record(source, scene, scene.downscale), force=force)
        trainer = model_kind(cfg.model).trainer(scene, cfg, run, dev)
    trainer.on_step = on_step
    try:
        trainer.train(minutes=minutes, progress=progress)
    except KeyboardInterrupt:
        return {"interrupted": True, "step": trainer.step}
    return evaluate_model(run, scene, trainer.renderer(), cfg.eval_split, cfg.eval_views, trainer.elapsed)
