"""Pre- and post-processing around the backend: the only per-pixel work done in Python.

preprocess: any frame a source gives (gray, BGRA, 16-bit, float, odd sizes) -> uint8 BGR at
the processing size. postprocess: the stylized frame -> the output size (enlarged the way
the style asks, styles.Style.upscale), blended with the original. Pixel format conversion to
float and back lives inside the model graph.
"""

from __future__ import annotations

import cv2
import numpy as np

# The smallest frame side every backend runs a frame at: the generators reflect-pad at 1/8 of
# the frame's size (1/4 for those with a full-size stem and two stride-2 steps), which needs
# 2 px there. A smaller frame is run enlarged to it and the result shrunk back
# (backends.base.SyncBackend, and the TensorRT profile's minimum).
MIN_SIDE = 16
CPU_FULL_SIZE = 640 * 480  # a CPU runs frames up to VGA at full size (30 fps measured)...
CPU_PIXELS = 640 * 360  # ...and larger ones at this many pixels: 720p at 0.5, 1080p at 1/3


def to_bgr8(frame: np.ndarray) -> np.ndarray:
    """Any common image array -> uint8 BGR HxWx3, or ValueError saying what was wrong."""
    if not isinstance(frame, np.ndarray) or frame.size == 0:
        raise ValueError("empty frame: the source delivered no pixels")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.dtype == np.uint16:
        frame = (frame >> 8).astype(np.uint8)
    elif frame.dtype in (np.float32, np.float64):
        frame = np.nan_to_num(frame, nan=0.0, posinf=1.0, neginf=0.0)  # NaN would cast to noise
        frame = (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif frame.dtype != np.uint8:
        raise ValueError(f"unsupported frame dtype {frame.dtype}: expected uint8, uint16 or float")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise ValueError(f"unsupported frame shape {frame.shape}: expected HxW, HxWx3 or HxWx4")


def auto_scale(width: int, height: int, gpu: bool, native_side: int | None = None) -> float:
    """The scale `--scale auto` picks: full size on a GPU and, on a CPU, for frames up to
    640x480; larger frames on a CPU run at CPU_PIXELS pixels and are upscaled. A style with
    a `native_side` (styles.Style.native_side) never runs with a longer side than that."""
    s = 1.0 if gpu or width * height <= CPU_FULL_SIZE else (CPU_PIXELS / (width * height)) ** 0.5
    if native_side:
        s = min(s, native_side / max(width, height))
    return s


def processing_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """(w, h) the generator runs at: `scale` times the frame, at least MIN_SIDE a side."""
    return (max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale)))


def preprocess(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 BGR frame -> C-contiguous uint8 BGR at `size` (w, h); no copy when it fits."""
    # an area average when shrinking avoids aliasing that the generator would turn into texture
    return np.ascontiguousarray(resize_to(frame, size))


def shrink(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`frame` shrunk to `size` (w, h) by an area average. OpenCV's INTER_AREA is fast for
    whole-number factors and slow otherwise (1280x720 to 384x216: 6.6 ms a frame in the
    pipeline here), so a frame at least twice `size` is first brought to exactly twice it
    bilinearly, which that halving then averages (1.1 ms against 3.7 on one core, 53 dB from
    the one-step average on a photo).
    The price: stripes one pixel wide, which a webcam's optics rarely pass, alias more (a
    grey level's spread of 69 where the one-step average leaves 21)."""
    w, h = size
    fh, fw = frame.shape[:2]
    if fw > 2 * w and fh > 2 * h:
        frame = cv2.resize(frame, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


# how a style's output is enlarged to the frame (styles.Style.upscale): "linear" (bilinear), or
# "nearest", each output pixel the one it falls in, as a teacher that draws at a working size
# and enlarges its flat colours pixel for pixel (the cartoon) does; shrinking is always linear
UPSCALE_FLAGS = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}


def postprocess(styled: np.ndarray, original: np.ndarray, blend: float = 1.0,
                upscale: str = "linear") -> np.ndarray:
    """Stylized frame -> the original's size, mixed `blend` : (1 - blend) with the original.
    `upscale`: how a smaller stylized frame is enlarged (UPSCALE_FLAGS).

    Always returns a new array (the backend may reuse `styled`'s buffer)."""
    h, w = original.shape[:2]
    if styled.shape[:2] != (h, w):
        enlarge = styled.shape[0] <= h and styled.shape[1] <= w
        flag = UPSCALE_FLAGS[upscale] if enlarge else cv2.INTER_LINEAR
        styled = cv2.resize(styled, (w, h), interpolation=flag)
    elif blend >= 1.0:
        return styled.copy()
    if blend >= 1.0:
        return styled
    if blend <= 0.0:
        return original.copy()
    return cv2.addWeighted(styled, blend, original, 1.0 - blend, 0.0)


def fit_size(spec: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """The output size `spec` (w, h) asks for a `width` x `height` frame: a 0 side follows
    the other one at the frame's aspect ratio (at least 2 pixels)."""
    w, h = spec
    if w and h:
        return w, h
    if w:
        return w, max(2, round(height * w / width))
    return max(2, round(width * h / height)), h


def resize_to(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`frame` at `size` (w, h): an area average to shrink (shrink), bilinear to enlarge."""
    h, w = frame.shape[:2]
    if (w, h) == size:
        return frame
    if size[0] < w:
        return shrink(frame, size)
    return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
