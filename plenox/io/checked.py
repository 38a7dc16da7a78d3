"""Reading the files plenox reads, checked: whatever is wrong with one becomes a one-line
DamagedFileError naming the file, what is wrong and (from the caller) what to do.

A file may be missing, empty, cut short by an interrupted copy or a full disk, have bytes
flipped, or be a file of another kind under the expected name. The parsers below would
raise a dozen exception types for these (zipfile.BadZipFile, zlib.error, EOFError,
pickle errors, torch's "PytorchStreamReader failed", UnicodeDecodeError, ...); every one of
them means the same thing to the user, so each reader turns any of them into one error.
"""

import json
import math
import zipfile
from pathlib import Path

import numpy as np

from plenox.errors import DamagedFileError


def _require_file(path: Path, kind: str, advice: str) -> None:
    if not path.exists():
        raise DamagedFileError(path, "file not found", advice)
    if path.is_dir():
        raise DamagedFileError(path, f"is a folder, not {kind}", advice)
    if path.stat().st_size == 0:
        raise DamagedFileError(path, f"is empty (0 bytes), not {kind}", advice)


def _reason(err: Exception) -> str:
    """A short description of a parser's error, for the one-line message."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:120]


def read_npz(path, keys, advice: str = "") -> dict:
    """The arrays ``keys`` (all required) of a numpy .npz file, read completely (so a damaged
    member is found now, not later). Object arrays are refused (no pickles)."""
    path = Path(path)
    _require_file(path, "a .npz archive", advice)
    if not zipfile.is_zipfile(path):   # cut short (no central directory) or another kind of file
        raise DamagedFileError(path, "is damaged or not a .npz archive (no complete zip directory)", advice)
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in keys if k not in f.files]
            if missing:
                raise DamagedFileError(path, f"is not the expected archive: no {', '.join(missing)}", advice)
            return {k: f[k] for k in f.files}
    except DamagedFileError:
        raise
    except Exception as err:  # any parser failure means a damaged or foreign file
        raise DamagedFileError(path, f"is damaged or not a .npz archive ({_reason(err)})", advice) from None


def read_torch(path, advice: str = ""):
    """The object of a torch.save file, with torch's safe loader (tensors, numbers, strings,
    lists, dicts only)."""
    import torch

    path = Path(path)
    _require_file(path, "a torch checkpoint", advice)
    if not zipfile.is_zipfile(path):   # torch.save writes a zip archive
        raise DamagedFileError(path, "is damaged or not a torch checkpoint (no complete zip directory)", advice)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any parser failure means a damaged or foreign file
        raise DamagedFileError(path, f"is damaged or not a torch checkpoint ({_reason(err)})", advice) from None


def read_json(path, advice: str = "", kind: type = dict):
    """The JSON value of a file, which must be a ``kind`` (a JSON object by default)."""
    path = Path(path)
    _require_file(path, "a JSON file", advice)
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except Exception as err:  # undecodable bytes or malformed JSON
        raise DamagedFileError(path, f"is damaged or not JSON ({_reason(err)})", advice) from None
    if not isinstance(value, kind):
        raise DamagedFileError(path, f"holds a JSON {type(value).__name__}, not a JSON "
                                     f"{'object' if kind is dict else kind.__name__}", advice)
    return value


def read_text(path, advice: str = "") -> str:
    """The UTF-8 text of a file (which may be empty)."""
    path = Path(path)
    if not path.exists():
        raise DamagedFileError(path, "missing", advice)
    if path.is_dir():
        raise DamagedFileError(path, "is a folder, not a text file", advice)
    try:
        return path.read_bytes().decode("utf-8")
    except Exception as err:  # unreadable or undecodable bytes
        raise DamagedFileError(path, f"is damaged or not text ({_reason(err)})", advice) from None


def read_jsonl(path, advice: str = "") -> list[dict]:
    """The JSON objects of a file of one object per line. A last line without its newline that
    does not parse is dropped: it is a record whose writing was interrupted."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        text = path.read_bytes().decode("utf-8")
    except Exception as err:
        raise DamagedFileError(path, f"is damaged or not text ({_reason(err)})", advice) from None
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):   # the unfinished last line of an interrupted append
                break
            raise DamagedFileError(path, f"line {number} is not JSON", advice) from None
        if not isinstance(record, dict):
            raise DamagedFileError(path, f"line {number} is not a JSON object", advice)
        records.append(record)
    return records


def require_fields(value: dict, path, fields: dict, advice: str = "", where: str = "") -> dict:
    """Check that ``value`` has every field of ``fields`` (name -> type or tuple of types, numbers
    finite); returns ``value``."""
    for name, types in fields.items():
        types = types if isinstance(types, tuple) else (types,)
        item = value.get(name)
        ok = isinstance(item, types) and not (isinstance(item, bool) and bool not in types)
        if not ok or isinstance(item, float) and not math.isfinite(item):
            raise DamagedFileError(path, f"{where}field {name!r} is missing or not {_type_words(types)}", advice)
    return value


def _type_words(types) -> str:
    names = {int: "an integer", float: "a number", str: "text", list: "a list", dict: "an object"}
    return " or ".join(names.get(t, t.__name__) for t in types)
