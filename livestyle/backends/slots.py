"""Double buffering for pipelined GPU backends, in plain Python (no GPU library imported).

The GPU runs frame N while Python hands back frame N-1 and fetches frame N+1. Each frame
gets a *slot* (pinned host buffers, device buffers, a CUDA stream and an event, see
cuda_buffers.CudaSlots); with two slots, frame N uses slot N % 2. For frame N the scheduler

    1. issues upload(N), compute(N), download(N) on slot N % 2's stream (all asynchronous),
    2. then waits on slot (N-1) % 2's event and returns frame N-1's result,

so new work is always queued before the CPU blocks, and results come back exactly one call
late (`delay = n_slots - 1`). `flush()` drains what is still in flight, oldest first.

Why reusing a slot is safe: frame N reuses slot N % 2, last used by frame N-2, whose event
was waited on when frame N-2's result was returned, during the call for frame N-1. So its
host input buffer is free to overwrite, and its device buffers are idle.

The returned array is the slot's host output buffer itself (no copy): it stays valid until the
next `submit`, whose download overwrites that very buffer.

The scheduler talks to a `SlotDevice`; cuda_buffers.CudaSlots is the real one, and the tests
drive this class with a recording fake to check the order of operations on the CPU.
"""

from __future__ import annotations

from collections import deque
from contextlib import suppress
from typing import Protocol

import numpy as np


class SlotDevice(Protocol):
    """The per-slot operations the scheduler orders. All but `wait` and `sync` only enqueue."""

    def upload(self, slot: int, frame: np.ndarray) -> None:
        """Copy `frame` (uint8 HxWx3) into the slot's host buffer and enqueue host->device."""

    def compute(self, slot: int) -> None:
        """Enqueue the network on the slot's stream, reading and writing the slot's buffers."""

    def download(self, slot: int) -> None:
        """Enqueue device->host into the slot's host output, then record the slot's event."""

    def wait(self, slot: int) -> np.ndarray:
        """Block until the slot's event has fired; return its host output (HxWx3 view)."""

    def sync(self, slot: int) -> None:
        """Block until everything enqueued on the slot's stream is done (error paths)."""


class SlotScheduler:
    """Issues frames round-robin over `n_slots` slots and returns results `delay` calls late.

    `submit(frame)` returns None while the pipeline fills, then `(frame_id, result)` for the
    frame submitted `delay` calls earlier; frame ids count submissions from 0.
    """

    def __init__(self, device: SlotDevice, n_slots: int = 2):
        if n_slots < 1:
            raise ValueError("n_slots must be >= 1")
        self._device = device
        self.n_slots = n_slots
        self.delay = n_slots - 1
        self._next_id = 0
        self._in_flight: deque[tuple[int, int]] = deque()  # (frame_id, slot), oldest first

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def next_id(self) -> int:
        """The id the next successfully submitted frame gets."""
        return self._next_id

    def submit(self, frame: np.ndarray) -> tuple[int, np.ndarray] | None:
        frame_id = self._next_id
        slot = frame_id % self.n_slots
        try:
            self._device.upload(slot, frame)
            self._device.compute(slot)
            self._device.download(slot)
        except BaseException:
            # The frame is dropped (its id is reused by the next submit), but part of its
            # work may be queued on the slot's stream: let it finish so that the next frame
            # in this slot does not overwrite buffers a transfer is still reading.
            with suppress(Exception):
                self._device.sync(slot)
            raise
        self._next_id += 1
        self._in_flight.append((frame_id, slot))
        if len(self._in_flight) > self.delay:
            return self._collect()
        return None

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """Wait for every frame still in flight; (frame_id, result) oldest first.

        Each result is a slot's buffer: copy it before the next `submit` if you keep it.
        """
        done = []
        while self._in_flight:
            done.append(self._collect())
        return done

    def drain(self) -> None:
        """Wait for and discard everything in flight (before freeing the buffers)."""
        while self._in_flight:
            _, slot = self._in_flight.popleft()
            with suppress(Exception):
                self._device.sync(slot)

    def _collect(self) -> tuple[int, np.ndarray]:
        frame_id, slot = self._in_flight.popleft()
        return frame_id, self._device.wait(slot)
