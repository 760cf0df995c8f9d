"""Temporal steadying: still parts of the picture keep their strokes from frame to frame.

A feed-forward painting redraws its strokes on every frame, and a camera's noise or a slight
change of light moves them: on a still wall or a face that barely moves the strokes shimmer
(3-14x the input's own frame-to-frame change on a talking head, docs/paintings.md). The
Steadier blends each stylized frame with the previous result where the camera image has not
changed: the blend weight is `strength` where the input is unchanged and falls to 0 where it
changed by STILL_LEVELS grey levels or more (averaged over 5x5 pixels), so whatever moves
shows the new result at once and a cut or a new scene is never mixed with the last one. It
runs at the generator's size, before the result is enlarged: about 1.4 ms at 384x288.
"""

from __future__ import annotations

import cv2
import numpy as np

STILL_LEVELS = 12  # an input change (0-255, mean of 5x5 pixels) at or above this is motion
DEFAULT_STRENGTH = 0.8
MAX_STRENGTH = 0.95  # above this a still region would take seconds to follow a slow change


class Steadier:
    """`steadier(frame, styled)` -> styled, steadied; `frame` is what the generator made
    `styled` from (frames.preprocess's output; another size is compared at `styled`'s size).
    strength 0 turns it off."""

    def __init__(self, strength: float = DEFAULT_STRENGTH):
        if not 0.0 <= strength <= MAX_STRENGTH:
            raise ValueError(f"steadying strength {strength} is out of range: use 0 (off) to "
                             f"{MAX_STRENGTH:g}")
        self.strength = strength
        change = np.arange(256, dtype=np.float32)
        self._weight = (strength * np.clip(1.0 - change / STILL_LEVELS, 0.0, 1.0)).astype(np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame: the next result is shown as it is (a new style, a new
        source)."""
        self._last_in: np.ndarray | None = None
        self._last_out: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, styled: np.ndarray) -> np.ndarray:
        if self.strength == 0.0:
            return styled
        h, w = styled.shape[:2]
        if frame.shape[:2] != (h, w):
            frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        out = styled.astype(np.float32)
        if self._last_in is None or self._last_in.shape != frame.shape:
            self._last_in, self._last_out = frame.copy(), out
            return styled
        change = cv2.blur(cv2.cvtColor(cv2.absdiff(frame, self._last_in), cv2.COLOR_BGR2GRAY), (5, 5))
        keep = self._weight[change]
        out = cv2.blendLinear(self._last_out, out, keep, 1.0 - keep)
        self._last_in[...] = frame
        self._last_out = out
        return (out + 0.5).astype(np.uint8)
