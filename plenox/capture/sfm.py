"""Structure-from-motion with pycolmap on the CPU: SIFT features, matching of chosen image pairs, incremental mapping.

The three stages run in chunks (images, then image pairs) so that each gets a progress bar;
COLMAP's own log is silenced unless asked for.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import pycolmap
from tqdm import tqdm

from plenox.capture.options import (CAMERA_MODELS, DEFAULT_CAMERA_MODEL, DEFAULT_MAX_IMAGE_SIZE,
                                    EXHAUSTIVE_MAX_IMAGES, MATCHERS)
from plenox.capture.source import MIN_IMAGES

# The second mapping attempt's thresholds, half COLMAP's (100 inliers to start a model, 30 to add an
# image): those suit thousands of features per image; small or compressed images (a 256-pixel video
# in the tests) have hundreds, and the first attempt split them into two models in half the runs.
RELAXED_MAPPER = {"init_min_num_inliers": 50, "abs_pose_min_num_inliers": 15}
EXTRACT_CHUNK = 8     # images per extraction call (one progress step)
MATCH_CHUNK = 64      # image pairs per matching call


@dataclass
class SfmSettings:
    """How to run structure-from-motion.

    matcher: "exhaustive" (every pair) or "sequential" (each image with the next ``overlap``
        images in name order: frames of a video, or photos taken walking round).
    camera_model: one of CAMERA_MODELS, shared by all images.
    max_image_size: longest side, in pixels, features are detected at (larger images are
        downscaled for SIFT only; keypoints are scaled back).
    max_features: SIFT features kept per image.
    seed: COLMAP's random seed (RANSAC, mapping), for repeatable results.
    """

    matcher: str = "exhaustive"
    camera_model: str = DEFAULT_CAMERA_MODEL
    max_image_size: int = DEFAULT_MAX_IMAGE_SIZE
    max_features: int = 8192
    overlap: int = 10
    seed: int = 0


@dataclass
class SfmResult:
    """The largest model found, how many models its mapping made, the image pairs matched, whether
    mapping had to relax its thresholds, and seconds per stage (features, matching, mapping)."""

    reconstruction: pycolmap.Reconstruction | None
    models: int
    pairs: int
    relaxed: bool
    seconds: dict[str, float]


def resolve_matcher(matcher: str, images: int, video: bool) -> str:
    """The matcher "auto" stands for: sequential for video frames and for more than
    EXHAUSTIVE_MAX_IMAGES photos, exhaustive otherwise; any other name is returned as is."""
    if matcher not in MATCHERS:
        raise ValueError(f"matcher must be one of {MATCHERS}, got {matcher!r}")
    if matcher != "auto":
        return matcher
    return "sequential" if video or images > EXHAUSTIVE_MAX_IMAGES else "exhaustive"


def image_pairs(names: list[str], matcher: str, overlap: int = 10) -> list[tuple[str, str]]:
    """The image pairs to match: all of them ("exhaustive"), or for "sequential" each image with
    the next ``overlap`` ones.

    Unlike COLMAP's sequential matcher, no pairs further apart (its quadratic overlap) are added:
    with them, beer_360's video gave a model in pieces joined at wrong poses (three jumps of about
    165 degrees between frames 1/3 s apart), without them a continuous one (docs/capture.md); far
    pairs of a floor of repeating tiles are the likely culprits.
    """
    n = len(names)
    if matcher == "exhaustive":
        return [(names[i], names[j]) for i in range(n) for j in range(i + 1, n)]
    if matcher != "sequential":
        raise ValueError(f"matcher must be 'exhaustive' or 'sequential', got {matcher!r}")
    return [(names[i], names[j]) for i in range(n) for j in range(i + 1, min(n, i + 1 + overlap))]


@contextlib.contextmanager
def colmap_log(verbose: bool):
    """COLMAP's log at INFO level when ``verbose``, else errors only."""
    previous = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 0 if verbose else 2
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = previous


def run_sfm(image_dir: Path, names: list[str], work: Path, settings: SfmSettings, progress: bool = True,
            verbose: bool = False) -> SfmResult:
    """Pose the images ``names`` of ``image_dir``; COLMAP's database and models go to ``work``.

    All images share one camera of ``settings.camera_model``, its focal length initialised
    from EXIF where present (else 1.2 x the longest side) and refined by bundle adjustment.
    Returns the model with the most registered images (None when mapping found none). When
    COLMAP's default thresholds leave images out, mapping runs once more with RELAXED_MAPPER
    thresholds and the larger model of the two attempts is kept.
    """
    if settings.camera_model not in CAMERA_MODELS:
        raise ValueError(f"camera_model must be one of {CAMERA_MODELS}, got {settings.camera_model!r}")
    work.mkdir(parents=True, exist_ok=True)
    database = work / "database.db"
    pycolmap.set_random_seed(settings.seed)
    seconds = {}
    with colmap_log(verbose):
        start = time.perf_counter()
        _extract(database, image_dir, names, settings, progress)
        seconds["features"] = time.perf_counter() - start

        start = time.perf_counter()
        pairs = image_pairs(names, settings.matcher, settings.overlap)
        _match(database, pairs, work / "pairs.txt", progress)
        seconds["matching"] = time.perf_counter() - start

        start = time.perf_counter()
        models, relaxed = _map_twice(database, image_dir, work, len(names), settings.seed, progress)
        seconds["mapping"] = time.perf_counter() - start
    largest = max(models, key=lambda r: r.num_reg_images(), default=None)
    return SfmResult(largest, len(models), len(pairs), relaxed, seconds)


def registered(models: list[pycolmap.Reconstruction]) -> int:
    """Registered images of the largest of ``models`` (0 for none)."""
    return max((r.num_reg_images() for r in models), default=0)


def _extract(database: Path, image_dir: Path, names: list[str], settings: SfmSettings, progress: bool) -> None:
    """SIFT features of every image into the database; one camera for all of them."""
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = settings.camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = settings.max_image_size
    extraction.sift.max_num_features = settings.max_features
    pycolmap.Database.open(database).close()  # import_images needs the file to exist
    # Importing every image first gives them one camera; extraction then fills in features chunk by chunk.
    pycolmap.import_images(database, image_dir, pycolmap.CameraMode.SINGLE, names, reader)
    with tqdm(total=len(names), desc="SIFT features", unit="image", disable=not progress, leave=False) as bar:
        for k in range(0, len(names), EXTRACT_CHUNK):
            chunk = names[k:k + EXTRACT_CHUNK]
            pycolmap.extract_features(database, image_dir, image_names=chunk, camera_mode=pycolmap.CameraMode.SINGLE,
                                      reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu)
            bar.update(len(chunk))


def _match(database: Path, pairs: list[tuple[str, str]], pairs_file: Path, progress: bool) -> None:
    """Match and geometrically verify the image pairs (a fundamental, essential or homography model each)."""
    options = pycolmap.ImportedPairingOptions()
    options.match_list_path = str(pairs_file)
    with tqdm(total=len(pairs), desc="matching", unit="pair", disable=not progress, leave=False) as bar:
        for k in range(0, len(pairs), MATCH_CHUNK):
            chunk = pairs[k:k + MATCH_CHUNK]
            pairs_file.write_text("".join(f"{a} {b}\n" for a, b in chunk))
            pycolmap.match_image_pairs(database, pairing_options=options, device=pycolmap.Device.cpu)
            bar.update(len(chunk))


def _map_twice(database: Path, image_dir: Path, work: Path, images: int, seed: int, progress: bool
               ) -> tuple[list[pycolmap.Reconstruction], bool]:
    """Map with COLMAP's thresholds, and again with RELAXED_MAPPER ones if images were left out;
    the models of the attempt that registered more, and whether that was the relaxed one."""
    models = _map(database, image_dir, work / "models", images, seed, progress)
    if registered(models) == images:
        return models, False
    if progress:
        print(f"mapping registered {registered(models)} of {images} images; mapping again with relaxed thresholds")
    retry = _map(database, image_dir, work / "models_relaxed", images, seed, progress, RELAXED_MAPPER)
    return (retry, True) if registered(retry) > registered(models) else (models, False)


def _map(database: Path, image_dir: Path, out: Path, images: int, seed: int, progress: bool,
         mapper: dict | None = None) -> list[pycolmap.Reconstruction]:
    """Incremental mapping; every model of at least MIN_IMAGES images (COLMAP's default keeps only 10+).
    ``mapper``: IncrementalMapperOptions fields to override."""
    out.mkdir(parents=True, exist_ok=True)
    options = pycolmap.IncrementalPipelineOptions()
    options.min_model_size = MIN_IMAGES
    options.random_seed = seed
    for key, value in (mapper or {}).items():
        setattr(options.mapper, key, value)
    with tqdm(total=images, desc="mapping", unit="image", disable=not progress, leave=False) as bar:
        models = pycolmap.incremental_mapping(database, image_dir, out, options,
                                              initial_image_pair_callback=lambda: bar.update(2),
                                              next_image_callback=lambda: bar.update(1))
    return list(models.values())
