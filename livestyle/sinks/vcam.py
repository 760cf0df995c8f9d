"""A virtual camera (pyvirtualcam) that Zoom, Meet, Teams or OBS can pick as a webcam."""

from __future__ import annotations

import sys

import cv2
import numpy as np

from livestyle.sinks.base import Sink, SinkError


def setup_help() -> str:
    """How to get a virtual camera device on this OS."""
    if sys.platform.startswith("linux"):
        return ("install and load v4l2loopback: `sudo apt install v4l2loopback-dkms` then "
                "`sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=livestyle` "
                "(exclusive_caps=1 is what makes Chrome, Zoom and Meet list it)")
    if sys.platform == "darwin":
        return ("install OBS Studio (28 or newer), click 'Start Virtual Camera' once to "
                "register it, then stop it in OBS so livestyle can use it")
    return ("install OBS Studio (which includes OBS Virtual Camera) and start it once, or "
            "install Unity Capture")


class VirtualCameraSink(Sink):
    name = "vcam"

    def __init__(self, width: int, height: int, fps: float, device: str | None = None,
                 backend: str | None = None):
        try:
            import pyvirtualcam
        except ImportError as e:
            raise SinkError("pyvirtualcam is not installed: pip install pyvirtualcam") from e
        try:
            self._cam = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR,
                                            device=device, backend=backend,
                                            print_fps=False)
        except RuntimeError as e:
            raise SinkError(f"no virtual camera device: {e}\nTo fix: {setup_help()}") from None
        self.device = self._cam.device
        self.size = (width, height)

    def send(self, frame: np.ndarray) -> None:
        if frame.shape[1::-1] != self.size:
            # the device's size is fixed once opened: a source that changes size mid-stream
            # (a camera reconnecting at another resolution) is scaled to it, not a crash
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_LINEAR)
        # no sleep_until_next_frame(): the source already sets the pace, and a sleep here
        # would add up to a frame of latency
        self._cam.send(frame)

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None
