"""Scene loaders (Blender, LLFF, nerfstudio / instant-ngp ``transforms.json``, COLMAP) and the built-in generated scene.

``load_scene(path)`` detects the format and returns a :class:`Scene`;
``builtin_scene()`` renders the project's own analytic scene. Bad data raises
:class:`SceneError` with one line naming the file. See docs/data-formats.md.
"""

from plenox.data.blender import write_blender_scene
from plenox.data.builtin import builtin_scene
from plenox.data.load import capture_kind, detect_format, load_scene
from plenox.data.scene import Scene, Split
from plenox.errors import SceneError

__all__ = [
    "Scene",
    "SceneError",
    "Split",
    "builtin_scene",
    "capture_kind",
    "detect_format",
    "load_scene",
    "write_blender_scene",
]
