"""A capture (photos or a video) -> a posed scene folder DATA, written whole or not at all.

DATA holds ``images/`` (photos under their own names, video frames named by their time),
``sparse/0/`` (the COLMAP model), ``transforms.json`` (nerfstudio: what ``plenox fit`` reads),
``process.json`` (what was done, how long it took), and optionally ``images_2/``, ``images_4/``, ...
Everything is written to a hidden sibling folder first and renamed to DATA at the end, so an
interrupted or failed run leaves no DATA; nothing is ever written into the source.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import pycolmap

from plenox import __version__
from plenox.capture.dataset import transforms_json, write_downscaled, write_json
from plenox.capture.frames import extract_frames
from plenox.capture.options import DEFAULT_CAMERA_MODEL, DEFAULT_MAX_IMAGE_SIZE
from plenox.capture.sfm import SfmSettings, resolve_matcher, run_sfm
from plenox.capture.source import MIN_IMAGES, check_photos, is_capture, is_video
from plenox.errors import CaptureError

RECORD = "process.json"
SHOWN_UNREGISTERED = 5  # names listed in the error when too few images register


def min_registered(images: int) -> int:
    """The fewest registered images accepted out of ``images``: half of them, and at least MIN_IMAGES."""
    return max(MIN_IMAGES, math.ceil(images / 2))


def process_capture(src, out, frames: int | None = None, matcher: str = "auto",
                    camera_model: str = DEFAULT_CAMERA_MODEL, max_image_size: int = DEFAULT_MAX_IMAGE_SIZE,
                    downscales: int = 0, force: bool = False, progress: bool = True, verbose: bool = False) -> dict:
    """Run structure-from-motion on the capture ``src`` and write the scene folder ``out``.

    src: a folder of photos of one size (.jpg/.jpeg/.png) or a video file (.mp4, .mov, .avi, ...).
    frames: video only: frames to keep (the sharpest of each of ``frames`` equal time windows;
        default about 3 per second, 50..150).
    matcher: "auto", "exhaustive" or "sequential" (plenox.capture.sfm.resolve_matcher).
    camera_model: COLMAP camera model shared by all images (plenox.capture.sfm.CAMERA_MODELS).
    max_image_size: longest side SIFT works at, in pixels.
    downscales: also write images_2, images_4, ... images_{2^downscales}.
    force: replace an existing ``out`` that an earlier process run wrote.
    Returns the record written to ``out/process.json``. Raises CaptureError (one line, naming
    the file) for bad input or too few registered images; ``out`` is then left as it was.
    """
    src, out = Path(src), Path(out)
    video = _check_source(src, frames)
    _check_out(src, out, force)
    photos = None if video else check_photos(src)[0]  # before anything is written
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    say = print if progress else (lambda *_: None)
    try:
        start = time.perf_counter()
        images = partial / "images"
        images.mkdir()
        seconds = {}
        if video:
            kept = extract_frames(src, images, frames, progress)
            names = [f.name for f in kept]
            seconds["frames"] = time.perf_counter() - start
            say(f"kept {len(names)} sharpest frames of {src} in {seconds['frames']:.1f} s")
            if len(names) < MIN_IMAGES:
                raise CaptureError(src, f"gave {len(names)} frames; structure-from-motion needs at least {MIN_IMAGES}")
        else:
            for photo in photos:
                shutil.copy2(photo, images / photo.name)
            names = [p.name for p in photos]
        settings = SfmSettings(matcher=resolve_matcher(matcher, len(names), video), camera_model=camera_model,
                               max_image_size=max_image_size)
        say(f"structure-from-motion on {len(names)} images ({settings.matcher} matching, "
            f"{settings.camera_model} camera)")
        sfm = run_sfm(images, names, partial / "colmap", settings, progress, verbose)
        seconds.update(sfm.seconds)
        model = sfm.reconstruction
        registered = {model.image(i).name for i in model.reg_image_ids()} if model else set()
        _check_registered(src, names, registered)
        _write_scene(partial, model, names, downscales)
        seconds["total"] = time.perf_counter() - start
        record = {
            "source": str(src.resolve()),
            "kind": "video" if video else "photos",
            "images": len(names),
            "registered": len(registered),
            "unregistered": sorted(set(names) - registered),
            "models": sfm.models,
            "mapping_relaxed": sfm.relaxed,
            "points": model.num_points3D(),
            "mean_reprojection_error_px": model.compute_mean_reprojection_error(),
            "matcher": settings.matcher,
            "pairs": sfm.pairs,
            "camera_model": settings.camera_model,
            "max_image_size": max_image_size,
            "downscales": [2**k for k in range(1, downscales + 1)],
            "seconds": seconds,
            "frames": [vars(f) for f in kept] if video else None,
            "pycolmap": pycolmap.__version__,
            "plenox": __version__,
        }
        write_json(partial / RECORD, record)
        _replace(partial, out)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return record


def _write_scene(folder: Path, model, names: list[str], downscales: int) -> None:
    """The model as ``sparse/0`` and ``transforms.json``, the ``images_N`` copies; COLMAP's work files removed."""
    (folder / "sparse" / "0").mkdir(parents=True)
    model.write(folder / "sparse" / "0")
    write_json(folder / "transforms.json", transforms_json(model))
    for k in range(1, downscales + 1):
        write_downscaled(folder / "images", folder / f"images_{2**k}", names, 2**k)
    shutil.rmtree(folder / "colmap")


def _check_source(src: Path, frames: int | None) -> bool:
    """Whether ``src`` is a video (else a folder of photos); CaptureError for anything else."""
    if not src.exists():
        raise CaptureError(src, "not found")
    if src.is_file() and not is_video(src):
        raise CaptureError(src, "not a video (.mp4, .mov, .avi, ...) or a folder of photos")
    video = src.is_file()
    if frames is not None and (not video or frames < MIN_IMAGES):
        raise CaptureError(src, f"--frames takes at least {MIN_IMAGES} frames of a video" if video
                           else "is a folder of photos: --frames picks frames of a video only")
    return video


def _check_out(src: Path, out: Path, force: bool) -> None:
    """Refuse an ``out`` inside a source folder, or holding one, or existing without ``force``,
    or existing with ``force`` but not written by process (never delete what we did not write)."""
    s, o = src.resolve(), out.resolve()
    if o == s or s in o.parents or o in s.parents:
        raise CaptureError(out, f"must lie outside the source {src} (process never writes into it)")
    if out.exists():
        if not force:
            raise CaptureError(out, "already exists (use --force to replace it, or choose another --out)")
        if not (out / RECORD).is_file():
            raise CaptureError(out, f"exists and holds no {RECORD}: not a folder plenox process wrote; "
                                    "not replacing it")


def _check_registered(src: Path, names: list[str], registered: set[str]) -> None:
    need = min_registered(len(names))
    if len(registered) >= need:
        return
    missing = [n for n in names if n not in registered]
    shown = ", ".join(missing[:SHOWN_UNREGISTERED]) + (f" and {len(missing) - SHOWN_UNREGISTERED} more"
                                                       if len(missing) > SHOWN_UNREGISTERED else "")
    raise CaptureError(src, f"structure-from-motion registered {len(registered)} of {len(names)} images "
                            f"(needs at least {need}): the views overlap too little or show too little texture; "
                            f"not registered: {shown}")


def _replace(partial: Path, out: Path) -> None:
    """Rename the finished ``partial`` folder to ``out``, moving an older ``out`` aside first."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    partial.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def capture_for_fit(source: str, out: str, progress: bool = True) -> str:
    """The scene folder ``plenox fit`` reads for ``source``: ``source`` itself unless it is a
    capture (photos without poses, or a video), which is processed once into ``<out>-data``
    beside the run folder and reused when fitting again; one line says which. ``progress``:
    progress bars while processing."""
    if not is_capture(source):
        return source
    data = Path(f"{str(out).rstrip('/')}-data")
    record = data / RECORD
    if record.is_file():
        processed_from = json.loads(record.read_text()).get("source")
        if processed_from != str(Path(source).resolve()):
            raise CaptureError(data, f"holds a capture processed from {processed_from}, not {source}; "
                                     "remove it or fit into another --out")
        print(f"reusing the processed capture {data} (delete it to run structure-from-motion again)")
        return str(data)
    print(f"processing the capture {source} into {data}")  # said even without progress bars: a new folder
    process_capture(source, data, progress=progress)
    return str(data)
