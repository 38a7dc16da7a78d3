"""Frames from a video: decode once (imageio-ffmpeg), keep the sharpest frame of each of N even time windows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
from tqdm import tqdm

from plenox.errors import CaptureError

JPEG_QUALITY = 95
# Default frame count: about 3 per second of video (23.5 s of Beer.mp4 give 71), within 50..150.
FRAMES_PER_SECOND, MIN_DEFAULT_FRAMES, MAX_DEFAULT_FRAMES = 3.0, 50, 150


@dataclass
class VideoFrame:
    """One frame kept from a video: its file name, time in seconds, decoded index and sharpness."""

    name: str
    time: float
    index: int
    sharpness: float


def frame_name(seconds: float) -> str:
    """The file name of the frame shown at ``seconds``: ``frame_00012.340s.jpg`` (sorts in time order)."""
    return f"frame_{seconds:09.3f}s.jpg"


def laplacian_variance(rgb: np.ndarray) -> float:
    """Sharpness of an (H, W, 3) uint8 image: the variance of the 4-neighbour Laplacian of its luma
    (in 8-bit grey levels squared). Blur removes high frequencies, so it lowers this figure."""
    grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    lap = 4.0 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(lap.var())


def default_frame_count(duration: float) -> int:
    """About FRAMES_PER_SECOND frames per second of video, clamped to [MIN_DEFAULT_FRAMES, MAX_DEFAULT_FRAMES]."""
    return int(np.clip(round(FRAMES_PER_SECOND * duration), MIN_DEFAULT_FRAMES, MAX_DEFAULT_FRAMES))


def _ffmpeg_reason(exc: Exception) -> str:
    """The last line of ffmpeg's error output, without its prefixes (imageio-ffmpeg appends the whole log)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1].rsplit(": ", 1)[-1] if lines else type(exc).__name__


def open_video(path: Path):
    """(metadata, frame generator) of a video; metadata has ``size`` (W, H), ``fps`` and ``duration`` (seconds).

    Raises CaptureError when ffmpeg cannot read the file.
    """
    if not path.is_file():
        raise CaptureError(path, "video file not found")
    frames = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(frames)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise CaptureError(path, f"cannot read the video (ffmpeg: {_ffmpeg_reason(exc)})") from None
    if not meta.get("fps") or not meta.get("size"):
        frames.close()
        raise CaptureError(path, "holds no video stream")
    if not meta.get("duration"):  # some containers omit it; count by decoding instead
        _, meta["duration"] = imageio_ffmpeg.count_frames_and_secs(str(path))
    return meta, frames


def extract_frames(video: Path, out_dir: Path, count: int | None = None, progress: bool = True) -> list[VideoFrame]:
    """Decode ``video`` and write the sharpest frame of each of ``count`` equal time windows to ``out_dir``.

    count: frames to keep (default: default_frame_count of the duration); a video with
        fewer frames gives all of them.
    Frames are written as JPEG (quality 95) named by their time (frame_name); windows are
    placed on the frame count the container announces (fps x duration), frames past it
    join the last window. Streams the video: one frame per window is held in memory.
    Raises CaptureError for an unreadable video or one without frames.
    """
    meta, frames = open_video(video)
    fps, duration = float(meta["fps"]), float(meta["duration"])
    width, height = meta["size"]
    count = count or default_frame_count(duration)
    expected = max(1, round(fps * duration))
    kept: list[VideoFrame] = []
    best, best_frame, window = None, None, -1

    def flush():
        if best is not None:
            iio.imwrite(out_dir / best.name, best_frame, quality=JPEG_QUALITY)
            kept.append(best)

    try:
        for index, raw in enumerate(tqdm(frames, total=expected, desc="video frames", unit="frame",
                                         disable=not progress, leave=False)):
            rgb = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
            w = min(index * count // expected, count - 1)
            if w != window:
                flush()
                best, window = None, w
            sharpness = laplacian_variance(rgb)
            if best is None or sharpness > best.sharpness:
                best = VideoFrame(frame_name(index / fps), index / fps, index, sharpness)
                best_frame = rgb  # a view of this frame's own bytes, not reused by the decoder
        flush()
    except (OSError, RuntimeError) as exc:
        raise CaptureError(video, f"video decoding failed at frame {len(kept)} "
                                  f"(ffmpeg: {_ffmpeg_reason(exc)})") from None
    finally:
        frames.close()
    if not kept:
        raise CaptureError(video, "holds no frames")
    return kept
