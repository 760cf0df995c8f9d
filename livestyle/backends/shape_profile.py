"""Frames of any size through an engine built for a range of sizes (a TensorRT profile).

A TensorRT engine with dynamic shapes takes only frames between its optimization profile's
min and max shapes. The backend contract (backends/base.py) is any frame size, so a frame
outside the range is resized into it, keeping its aspect ratio, and the result is resized
back to the frame's own size. `run_shape` decides the size (a pure function); `ProfileFit`
does the resizing around a scheduler whose results come back late (slots.SlotScheduler).
No GPU library is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

Size = tuple[int, int]  # (height, width)


def bounds(profile: Mapping) -> tuple[Size, Size]:
    """((min_h, min_w), (max_h, max_w)) of a profile {"min"|"opt"|"max": (1, H, W, 3)}."""
    (_, h0, w0, _), (_, h1, w1, _) = profile["min"], profile["max"]
    return (h0, w0), (h1, w1)


def fits(height: int, width: int, profile: Mapping) -> bool:
    (h0, w0), (h1, w1) = bounds(profile)
    return h0 <= height <= h1 and w0 <= width <= w1


def run_shape(height: int, width: int, profile: Mapping) -> Size:
    """The size to run a height x width frame at: itself if it fits the profile, else scaled
    (aspect kept) until it does. Only a frame too thin for both bounds at once (say 4x4000
    for 16..1920) cannot keep its aspect: each side is then clamped into range.
    """
    if height < 1 or width < 1:
        raise ValueError(f"a frame has no pixels: {width}x{height}")
    if fits(height, width, profile):
        return height, width
    (h0, w0), (h1, w1) = bounds(profile)
    if height > h1 or width > w1:
        scale = min(h1 / height, w1 / width)  # the largest that fits under the max
    else:
        scale = max(h0 / height, w0 / width)  # the smallest that reaches the min
    h = min(max(round(height * scale), h0), h1)
    w = min(max(round(width * scale), w0), w1)
    return h, w


class ProfileFit:
    """Wraps a scheduler (submit/flush/drain/next_id, results late as (id, image)) so
    that frames of any size go in and each result comes back at its own frame's size.

    A result that needed no resizing is the scheduler's own buffer (valid until the next
    submit, as before); a resized one is a new array.
    """

    def __init__(self, scheduler, profile: Mapping):
        self._scheduler = scheduler
        self._profile = dict(profile)
        self._sizes: dict[int, Size] = {}  # frame id -> that frame's own size, while in flight

    @property
    def delay(self) -> int:
        return self._scheduler.delay

    def submit(self, frame: np.ndarray) -> tuple[int, np.ndarray] | None:
        size = frame.shape[:2]
        run = run_shape(*size, self._profile)
        frame_id = self._scheduler.next_id
        try:
            done = self._scheduler.submit(frame if run == size else _resize(frame, run))
        finally:
            if self._scheduler.next_id > frame_id:  # taken, even if collecting another failed
                self._sizes[frame_id] = size
        return None if done is None else self._restore(done)

    def flush(self) -> list[tuple[int, np.ndarray]]:
        return [self._restore(done) for done in self._scheduler.flush()]

    def drain(self) -> None:
        self._scheduler.drain()
        self._sizes.clear()

    def _restore(self, done: tuple[int, np.ndarray]) -> tuple[int, np.ndarray]:
        frame_id, result = done
        size = self._sizes.pop(frame_id)
        return frame_id, (result if result.shape[:2] == size else _resize(result, size))


def _resize(image: np.ndarray, size: Size) -> np.ndarray:
    from livestyle.frames import resize_to  # imports OpenCV, which nothing above needs

    return resize_to(image, (size[1], size[0]))
