"""A video file. Opened at the first frame's size; always released, so the file plays.

A file has one frame size: frames of another size (a camera that reconnects at another
resolution, a source whose size changes) are resized to it rather than dropped by the encoder.
A file that never got a frame is not left behind.
"""

from __future__ import annotations

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
        self._size: tuple[int, int] | None = None  # (w, h) the file was opened at
        self.frames = 0

    def send(self, frame: np.ndarray) -> None:
        if self._writer is None:
            h, w = frame.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC.get(self.path.suffix.lower(), "mp4v"))
            writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not writer.isOpened():
                if self.path.is_file() and self.path.stat().st_size == 0:
                    self.path.unlink()  # a failed open can leave an empty file behind
                raise SinkError(f"cannot write video {self.path} ({w}x{h} at {self.fps:g} fps); "
                                "check the folder is writable and the extension is .mp4 or .avi")
            self._writer, self._size = writer, (w, h)
        if frame.shape[1::-1] != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_LINEAR)
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()  # writes the index: without it the file does not play
            self._writer = None
            if self.frames == 0:  # only a header, which no player opens: leave nothing
                self.path.unlink(missing_ok=True)
