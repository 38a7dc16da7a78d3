"""The one way plenox replaces a file: write a temporary sibling, fsync it, rename it over.

A reader (or a crash, Ctrl-C, kill -9, a full disk) then sees the previous file or the
complete new one, never half of either. Every file plenox writes goes through
``atomic_write``; the helpers below are its common cases.
"""

import io
import json
import os
from pathlib import Path
from typing import Callable


def atomic_write(path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` to create a temporary file beside ``path`` (same suffix, so writers
    that go by the extension pick the right format), fsync it and rename it to ``path``.
    On any failure the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def atomic_torch_save(path, obj) -> None:
    """torch.save ``obj`` to ``path`` atomically (serialised in memory, then written and renamed)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def atomic_write_image(path, image) -> None:
    """An image file (PNG, JPEG, ... by the suffix) of a uint8 or uint16 array (H, W[, C])."""
    import imageio.v3 as iio

    atomic_write(path, lambda tmp: iio.imwrite(tmp, image))
