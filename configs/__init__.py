"""Named configurations shipped with plenox (one JSON file per name)."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent


def config_path(name: str) -> Path:
    """Path of the shipped config called ``name`` (without the .json suffix)."""
    return CONFIG_DIR / f"{name}.json"


def config_names() -> list[str]:
    """Names of all shipped configs, sorted."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
