"""`--output-size`: what a sink is sent, resized first (the preview keeps the frame's size)."""

from __future__ import annotations

import numpy as np

from livestyle.frames import fit_size, resize_to
from livestyle.sinks.base import Sink


class Resized(Sink):
    """Sends `sink` every frame at `size` (w, h; a 0 side keeps the aspect ratio); closing
    it closes `sink`."""

    def __init__(self, sink: Sink, size: tuple[int, int]):
        self.sink, self.size = sink, size
        self.name = sink.name
        self.timed = getattr(sink, "timed", False)

    def send(self, frame: np.ndarray, *pts) -> None:
        self.sink.send(resize_to(frame, fit_size(self.size, frame.shape[1], frame.shape[0])),
                       *pts)

    def close(self) -> None:
        self.sink.close()
