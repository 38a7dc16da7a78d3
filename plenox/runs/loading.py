"""Opening scenes and run folders: a source to a scene and its config, a run folder to its model.

open_scene          the built-in scene or a scene folder
scene_config        the config for a source (named, else the model's default for its format) and the scene
scene_record        what a run's scene.json holds to reload its scene
open_run            any run folder as (run, config, scene, renderer) on a device
load_grid_run       a Plenoxels run folder as (run, config, scene, grid)
"""

from pathlib import Path

from plenox.backend import resolve_device
from plenox.config import RunSettings
from plenox.data import Scene, builtin_scene, capture_kind, detect_format, load_scene
from plenox.data.builtin_unbounded import NAME as BUILTIN_UNBOUNDED, unbounded_scene
from plenox.models.grid import SparseGrid
from plenox.models.renderer import Renderer
from plenox.runs.folder import RunDir
from plenox.runs.registry import DEFAULT_MODEL, config_from_dict, load_config, model_kind

BUILTIN = "builtin"
# Generated scenes by name, and the scene format their configs are chosen by: the unbounded
# one stands for an object-centric capture whose photos show the room round the object.
GENERATED = {BUILTIN: (builtin_scene, BUILTIN), BUILTIN_UNBOUNDED: (unbounded_scene, "object")}


def open_scene(source: str | None, downscale: int | None = None) -> Scene:
    """A generated scene for None/'builtin'/'builtin_unbounded', else the scene folder at ``source``
    (downscale 0 or None: the format's default, the pixel budget for captures)."""
    if source is None or source in GENERATED:
        return GENERATED[source or BUILTIN][0]()
    return load_scene(source, downscale=downscale or None)


def scene_format(source: str | None) -> str:
    """What configs are chosen by, without loading images: "builtin", "object" for the generated
    unbounded scene, "forward" or "object" for a capture framed by its camera directions
    (plenox.data.capture_kind), else the format."""
    return default_config_reason(source)[0]


def default_config_reason(source: str | None) -> tuple[str, str]:
    """(scene_format, why): the key configs are chosen by and one line saying why."""
    if source is None or source in GENERATED:
        fmt = GENERATED[source or BUILTIN][1]
        return fmt, "the built-in scene" if fmt == BUILTIN else f"the generated scene {source}"
    capture = capture_kind(source)
    if capture is None:
        fmt = detect_format(source)
        return fmt, f"a {fmt} scene with a fixed box"
    return capture.kind, capture.reason


def default_config_name(source: str | None, model: str | None = None) -> str:
    """The shipped config ``model`` (default plenoxels) uses for the scene at ``source`` when none is named."""
    return default_config_choice(source, model)[0]


def default_config_choice(source: str | None, model: str | None = None) -> tuple[str, str]:
    """(config name, why) for the scene at ``source`` when none is named, for the CLI to print."""
    key, why = default_config_reason(source)
    return model_kind(model or DEFAULT_MODEL).default_config(key), why


def scene_config(source: str | None, config: str | None, overrides=(), model: str | None = None,
                 minutes: float | None = None) -> tuple[RunSettings, Scene]:
    """The config (``config``, else the model's default for the scene's format, plus
    ``overrides``), resolved for the scene and a budget of ``minutes``, and the scene.
    ``model`` (default: the config's, else plenoxels) must agree with the config's."""
    cfg = load_config(config or default_config_name(source, model or DEFAULT_MODEL), overrides, model)
    scene = open_scene(source, cfg.downscale)
    return cfg.for_scene(scene, minutes), scene


def scene_record(source: str | None, scene: Scene, downscale: int) -> dict:
    """What a run's scene.json holds: enough to reload the scene (``open_scene``)."""
    source_text = (source or BUILTIN) if source is None or source in GENERATED else str(Path(source).resolve())
    return {"source": source_text, "format": scene.format, "name": scene.name, "downscale": downscale}


def run_config(run: RunDir) -> RunSettings:
    """The config a run folder was fitted with."""
    return config_from_dict(run.config(), str(run.config_file))


def run_scene(run: RunDir) -> Scene:
    """The scene a run folder was fitted to, reloaded from its scene.json."""
    info = run.scene_info()
    return open_scene(info["source"], info["downscale"])


def open_run(path: str, device: str = "auto") -> tuple[RunDir, RunSettings, Scene, Renderer]:
    """(run, config, scene, renderer) of an existing run folder of any model; the model is
    loaded on ``device`` (auto, cpu or cuda) and renders as eval does."""
    run = RunDir(path).require()
    cfg = run_config(run)
    scene = run_scene(run)
    return run, cfg, scene, model_kind(cfg.model).load_renderer(run, cfg, scene, resolve_device(device))


def load_grid_run(path: str, device: str = "auto") -> tuple[RunDir, RunSettings, Scene, SparseGrid]:
    """(run, config, scene, grid on ``device``) of a Plenoxels run folder; RunError for a run of another model."""
    run = RunDir(path).require()
    grid = run.load_grid().to(resolve_device(device))
    return run, run_config(run), run_scene(run), grid
