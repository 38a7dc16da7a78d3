"""What a capture is: a folder of photos from one camera, or a video file; and the error bad input raises."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from plenox.data.load import detect_format
from plenox.errors import CaptureError, SceneError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm")
MIN_IMAGES = 3  # the fewest views structure-from-motion can pose (two make only one relative pose)



def is_video(path: Path) -> bool:
    """Whether ``path`` names a video file by its suffix (.mp4, .mov, .avi, ...)."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def list_images(folder: Path) -> list[Path]:
    """The photos directly inside ``folder`` (.jpg, .jpeg, .png in any case; hidden files skipped), sorted by name."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def is_capture(path) -> bool:
    """Whether ``path`` is input for ``plenox process``: a video file, or a folder holding photos
    but no scene file (transforms json, poses_bounds.npy) that would make it a posed scene.
    None (the built-in scene) is not."""
    if path is None:
        return False
    p = Path(path)
    if p.is_file():
        return is_video(p)
    if not p.is_dir():
        return False
    try:
        detect_format(p)
    except SceneError:
        return bool(list_images(p))
    return False


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, from its header."""
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError) as exc:
        raise CaptureError(path, f"unreadable image ({type(exc).__name__})") from None


def check_photos(folder: Path) -> tuple[list[Path], tuple[int, int]]:
    """The photos of a capture folder and their shared (width, height).

    Raises CaptureError for a folder with fewer than MIN_IMAGES photos, an unreadable
    photo, or photos of different sizes (different cameras, or a turned phone), naming
    the odd ones out.
    """
    if not folder.is_dir():
        raise CaptureError(folder, "not a folder of photos or a video file (.mp4, .mov, .avi)")
    photos = list_images(folder)
    if len(photos) < MIN_IMAGES:
        raise CaptureError(folder, f"found {len(photos)} photos (.jpg, .jpeg, .png); "
                                   f"structure-from-motion needs at least {MIN_IMAGES}")
    sizes = {p: image_size(p) for p in photos}
    counts = Counter(sizes.values())
    if len(counts) > 1:
        (main, n_main), *others = counts.most_common()
        odd = [p for p in photos if sizes[p] != main]
        w, h = sizes[odd[0]]
        raise CaptureError(odd[0], f"is {w}x{h} but {n_main} of the {len(photos)} photos in {folder} are "
                                   f"{main[0]}x{main[1]} ({len(odd)} differ): a capture must come from one camera "
                                   f"at one size; move the others out")
    return photos, next(iter(counts))
