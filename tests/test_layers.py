"""The layers run one way: a test that parses every import of the package and fails on one
that runs up a layer, or from one command module to another (docs/architecture.md)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Bottom to top. A module may import from its own layer and those below it.
LAYERS = [
    {"errors", "kernels", "configs", "io", "memory", "metrics", "config", "options"},
    {"backend"},
    {"data", "capture"},
    {"models"},
    {"training"},
    {"runs", "viewer"},
    {"commands"},
    {"cli"},
]
SOURCES = {"plenox": ROOT / "plenox", "plenox.kernels": ROOT / "kernels", "plenox.configs": ROOT / "configs"}


def layer_of(module: str) -> int:
    """Layer index of a plenox module name ("plenox.models.grid" -> 3; the package itself: 0)."""
    if "." not in module:
        return 0
    top = module.split(".")[1]
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"{module}: its folder {top!r} has no layer in tests/test_layers.py")


def module_name(path: Path) -> str:
    """The dotted module name of a source file of the package."""
    for package, folder in sorted(SOURCES.items(), key=lambda kv: -len(kv[0])):
        if path.is_relative_to(folder):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            return ".".join([package, *parts])
    if path == ROOT / "cli.py":
        return "plenox.cli"
    raise AssertionError(f"{path} is not part of the package")


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """The plenox modules ``source`` imports anywhere (top level or inside functions)."""
    found = set()
    package = module if is_package else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names if is_module(f"{name}.{alias.name}"))
    return {name for name in found if name == "plenox" or name.startswith("plenox.")}


def is_module(name: str) -> bool:
    """Whether a dotted plenox name is a module or package of the source tree (not an attribute)."""
    for package, folder in sorted(SOURCES.items(), key=lambda kv: -len(kv[0])):
        if name == package or name.startswith(package + "."):
            rest = name[len(package):].lstrip(".").split(".") if name != package else []
            path = folder.joinpath(*rest)
            return path.is_dir() or path.with_suffix(".py").is_file()
    return False


def violations(module: str, imports: set[str]) -> list[str]:
    """What is wrong with ``module`` importing ``imports``: an import up a layer, one command
    importing another, a kernel importing anything of plenox outside the kernels."""
    problems = []
    own = layer_of(module)
    for name in sorted(imports):
        if name.count(".") == 0:
            continue
        if module.startswith("plenox.kernels") and not name.startswith("plenox.kernels"):
            problems.append(f"{module} imports {name}: kernels import nothing of plenox")
        elif layer_of(name) > own:
            problems.append(f"{module} (layer {own}) imports {name} (layer {layer_of(name)})")
        elif (module.startswith("plenox.commands.") and name.startswith("plenox.commands.")
              and name.split(".")[2] != module.split(".")[2]):
            problems.append(f"{module} imports {name}: commands do not import each other")
    return problems


def package_files() -> list[Path]:
    files = [ROOT / "cli.py"]
    for folder in SOURCES.values():
        files.extend(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts and not p.is_symlink())
    return files


def test_every_import_runs_down_a_layer():
    problems = []
    for path in package_files():
        module = module_name(path)
        problems += violations(module, imported_modules(path.read_text(), module, path.name == "__init__.py"))
    assert not problems, "\n".join(problems)


def test_errors_are_a_leaf():
    path = ROOT / "plenox" / "errors.py"
    assert imported_modules(path.read_text(), "plenox.errors", False) == set()


@pytest.mark.parametrize("module, source, words", [
    ("plenox.models.grid", "from plenox.training.optimizer import SparseRMSProp", "layer 3"),
    ("plenox.backend.base", "import plenox.models.grid", "layer 1"),
    ("plenox.data.scene", "def f():\n    from plenox.runs import folder\n", "layer 2"),
    ("plenox.commands.prune", "from plenox.commands.fit import fit", "do not import each other"),
    ("plenox.kernels.cpu", "from plenox.errors import UserError", "kernels import nothing"),
    ("plenox.training.loop", "from ..runs.folder import RunDir", "layer 4"),
])
def test_the_check_catches_a_wrong_import(module, source, words):
    problems = violations(module, imported_modules(source, module, False))
    assert problems and words in problems[0]


def test_the_check_passes_a_right_import():
    assert not violations("plenox.commands.prune", imported_modules(
        "from plenox.runs.folder import RunDir\nfrom plenox.commands import prune", "plenox.commands.prune", False))
