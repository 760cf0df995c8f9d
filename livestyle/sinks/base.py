"""The sink protocol: where stylized frames go.

- `send(frame)` takes a uint8 BGR HxWx3 frame; the sink must not keep a reference to it past
  the call (the pipeline may reuse the buffer) and must not modify it.
- `close()` flushes and releases the device or file; it is called exactly once by the
  pipeline, and calling it again is harmless. Sinks are context managers.
- `timed`: a sink that keeps the source's timing (a video file) sets it, and the pipeline
  then calls `send(frame, pts)`: pts is when the frame is shown, in seconds from the
  source's first frame (camera.Frame.pts), or None for a live source.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from livestyle.atomic import OutputBusy, OutputClaim


class SinkError(RuntimeError):
    """A sink that cannot open; the message says how to set it up."""


class Sink(ABC):
    name = "?"
    timed = False  # whether send() takes the frame's presentation time (see above)

    @abstractmethod
    def send(self, frame: np.ndarray) -> None: ...

    def close(self) -> None:  # noqa: B027
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def claim_output(path, what: str = "") -> OutputClaim:
    """Claim `path` for this process (OutputClaim), as a SinkError naming it when another
    run is writing it or its folder cannot be written."""
    try:
        return OutputClaim(path)
    except OutputBusy as e:
        raise SinkError(str(e)) from None
    except OSError as e:
        raise SinkError(f"cannot write {what}{path}: {e.strerror}") from None
