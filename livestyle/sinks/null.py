"""A sink that only counts: for benchmarks and dry runs."""

from __future__ import annotations

import numpy as np

from livestyle.sinks.base import Sink


class NullSink(Sink):
    name = "null"

    def __init__(self):
        self.frames = 0

    def send(self, frame: np.ndarray) -> None:
        self.frames += 1
