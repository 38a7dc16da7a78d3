"""``plenox fit-many``: fit many scenes, each into OUT/<name>/ as ``plenox fit`` would, on Ray
(one task per scene) when it is installed, else one after another in this process; finished
scenes are skipped and interrupted ones resumed on a re-run; OUT/summary.md and summary.json."""

from dataclasses import replace
from pathlib import Path

from plenox.backend import resolve_device
from plenox.errors import OptionError
from plenox.options import require_number
from plenox.runs.cluster import RayPool, ray_installed, ray_session
from plenox.runs.many import FitOptions, SequentialPool, expand_scenes, fit_scenes, name_scenes, prepare_out
from plenox.runs.registry import DEFAULT_MODEL, load_config, model_kind

INSTALL = "pip install 'plenox[cluster]'"


def fit_many(scenes, out: str, config: str | None = None, overrides=(), minutes: float | None = None,
             model: str | None = None, device: str = "auto", retries: int = 2, cpus_per_scene: int | None = None,
             gpus_per_scene: float = 0.0, address: str | None = None, local_cpus: int | None = None,
             force: bool = False, progress: bool = True, notify=None) -> dict:
    """Fit every scene ``scenes`` names (see plenox.runs.many.expand_scenes) into ``out``; the
    config, overrides, budget, model and device apply to all. Returns the summary
    (plenox.runs.many.summary). ``notify(line)`` hears how the scenes will run when Ray is
    missing. One-line UserErrors for bad options, a config that does not load, an --out
    that this machine or a worker cannot write, a cluster that cannot be joined."""
    require_number("--minutes", minutes, 0, low_open=True)
    require_number("--retries", retries, 0, integer=True)
    require_number("--cpus-per-scene", cpus_per_scene, 1, integer=True)
    require_number("--gpus-per-scene", gpus_per_scene, 0)
    require_number("--local-cpus", local_cpus, 1, integer=True)
    if address is not None and local_cpus is not None:
        raise OptionError("--local-cpus sizes a local cluster; it does not go with --address")
    out = Path(out).expanduser().resolve()   # the workers need absolute paths
    jobs = name_scenes(expand_scenes(scenes), out)
    # Each scene's default config depends on its format; any config of the model checks the overrides.
    for scene_overrides in dict.fromkeys(job.overrides for job in jobs):
        load_config(config or model_kind(model or DEFAULT_MODEL).default_config("*"),
                    (*overrides, *scene_overrides), model)
    prepare_out(out)
    options = FitOptions(config, tuple(overrides), minutes, model, device, force)
    settings = {"out": str(out), "config": config, "overrides": list(overrides), "minutes": minutes, "model": model,
                "device": device, "retries": retries}
    if not ray_installed():
        if address is not None or gpus_per_scene:
            raise OptionError(f"--address and --gpus-per-scene need Ray: {INSTALL}")
        resolve_device(device)
        if notify:
            notify(f"Ray is not installed ({INSTALL}): fitting the {len(jobs)} scenes one after another here")
        settings.update(runner="one after another in this process (Ray not installed)", cpus_per_scene=cpus_per_scene)
        return fit_scenes(jobs, replace(options, threads=cpus_per_scene), SequentialPool(progress), retries, out,
                          settings, progress)
    if device == "cuda" and not gpus_per_scene:
        raise OptionError("--device cuda needs --gpus-per-scene > 0 (a Ray task sees only the GPUs it asks for)")
    with ray_session(address, local_cpus) as where:
        pool = RayPool(cpus_per_scene, gpus_per_scene)
        pool.check_shared(out)
        settings.update(runner=where, cpus_per_scene=pool.cpus, gpus_per_scene=gpus_per_scene)
        return fit_scenes(jobs, options, pool, retries, out, settings, progress)
