"""A video file. Opened at the first frame's size; always released, so the file plays."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from livestyle.sinks.base import Sink, SinkError

# mp4v is the MPEG-4 encoder every opencv-python wheel carries (no H.264 licence needed)
_FOURCC = {".mp4": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


class VideoFileSink(Sink):
    name = "video"

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0

    def send(self, frame: np.ndarray) -> None:
        if self._writer is None:
            h, w = frame.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC.get(self.path.suffix.lower(), "mp4v"))
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                raise SinkError(f"cannot write video {self.path} ({w}x{h} at {self.fps:g} fps); "
                                "check the folder is writable and the extension is .mp4 or .avi")
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()  # writes the index: without it the file does not play
            self._writer = None
        elif self.frames == 0 and self.path.exists() and os.path.getsize(self.path) == 0:
            self.path.unlink()
