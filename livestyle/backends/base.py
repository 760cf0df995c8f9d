"""The backend protocol: one frame in, one stylized frame out.

Contract every backend keeps:
- `infer(frame)` takes a uint8 BGR HxWx3 C-contiguous array of any size and returns a uint8
  BGR array of the same size. The returned array may be a buffer the backend reuses: it is
  valid until the next `infer` call; copy it to keep it.
- `delay` is how many calls late results come back. 0: `infer` returns its own input's
  result. 1 (pipelined GPU backends): it returns the previous call's result, None on the first
  call, and `flush()` returns what is still in flight. The StyleSwitcher (switching.py) pairs
  results with their source frames by this number.
- `close()` releases everything; calling it twice is harmless. Backends are context managers.
- Construction does the loading (session build, engine deserialization); `infer` only runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from livestyle.frames import MIN_SIDE, resize_to


class BackendUnavailable(RuntimeError):
    """This backend cannot run here (missing package or device); the message says how to fix."""


class Backend(ABC):
    name: str = "?"
    delay: int = 0

    @abstractmethod
    def infer(self, frame: np.ndarray) -> np.ndarray | None: ...

    def flush(self) -> list[np.ndarray]:
        """Results still in flight, oldest first (always empty when delay == 0)."""
        return []

    def close(self) -> None:  # noqa: B027 - a no-op is the right default
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def check_frame(frame: np.ndarray) -> np.ndarray:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"backends take uint8 HxWx3 BGR frames, got {frame.dtype} "
                             f"{frame.shape}; convert it with livestyle.frames.to_bgr8")
        if frame.shape[0] < 1 or frame.shape[1] < 1:
            raise ValueError(f"a frame has no pixels: {frame.shape[1]}x{frame.shape[0]}")
        return np.ascontiguousarray(frame)


class SyncBackend(Backend):
    """A backend whose `infer` returns its own frame's result (delay 0): subclasses write
    `run(frame)`, and frames smaller than the generator can take are handled here.
    `min_side` is set per model by backends.create (min_frame_side): frames.MIN_SIDE covers
    every generator, a model with a full-size stem takes down to half of it."""

    min_side: int = MIN_SIDE

    @abstractmethod
    def run(self, frame: np.ndarray) -> np.ndarray:
        """The styled frame for a checked, C-contiguous frame of at least `min_side`."""

    def infer(self, frame: np.ndarray) -> np.ndarray:
        frame = self.check_frame(frame)
        h, w = frame.shape[:2]
        m = self.min_side
        if min(h, w) >= m:
            return self.run(frame)
        # a tiny frame (a thumbnail, a stripe): run it enlarged, aspect kept, and shrink the
        # result back
        s = m / min(h, w)
        big = (max(m, round(w * s)), max(m, round(h * s)))
        return resize_to(self.run(resize_to(frame, big)), (w, h))
