"""Teacher filters: slow, high-quality, non-neural styles the network imitates.

Contract shared by every teacher ``f`` in ``TEACHERS``:

* input: a uint8 BGR image of shape HxWx3 (OpenCV convention), any H, W >= 1;
* output: a uint8 BGR image of the same HxW (HxWx3);
* deterministic: the same input always gives the identical output, and no
  global random state is read or modified;
* may be slow - a teacher only runs offline to make training targets, never
  in the real-time path.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .cartoon import cartoon, cartoon_parts
from .sketch import sketch

Teacher = Callable[[np.ndarray], np.ndarray]

# teachers whose output keeps the photo's colours: their students add their output to the
# input (GeneratorConfig.residual), which they learn far faster; a sketch discards colour
KEEPS_COLOUR = {"cartoon"}

# a teacher may expose its layers as `parts(image) -> (flat BGR, ink coverage)`: students with
# the toon head learn each layer on its own
cartoon.parts = cartoon_parts
# a teacher may say how its students' output is enlarged from their native side to the frame
# (livestyle.frames.UPSCALE_FLAGS): the cartoon works at 512 px and enlarges its flat colours
# pixel for pixel, so its student's region borders and lines land where the teacher's do only
# when enlarged the same way (measured: +0.5 dB against the teacher at 640x480, train/ink.py)
cartoon.upscale = "nearest"

TEACHERS: dict[str, Teacher] = {
    "cartoon": cartoon,
    "sketch": sketch,
}


def upscale_of(teacher: Teacher | None) -> str:
    """How the students of `teacher` are enlarged to the frame (linear unless it says)."""
    return getattr(teacher, "upscale", "linear")


def get_teacher(name: str) -> Teacher:
    """Return the teacher called ``name``; ValueError lists the known names."""
    try:
        return TEACHERS[name]
    except KeyError:
        known = ", ".join(sorted(TEACHERS))
        raise ValueError(f"unknown teacher {name!r}; known teachers: {known}") from None


__all__ = ["TEACHERS", "Teacher", "cartoon", "get_teacher", "sketch", "upscale_of"]
