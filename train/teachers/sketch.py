"""Sketch teacher: a pencil drawing with dark strokes on near-white paper.

Contract: ``sketch(image_bgr)`` takes a uint8 BGR image of shape HxWx3 (any
H, W >= 1) and returns a uint8 BGR image of the same shape whose three
channels are equal (the drawing is grayscale).  The result is a pure function
of the input pixels; the paper texture comes from a fixed-seed generator.

Method (the classic "colour dodge" pencil sketch):

1. Luminance is lightly denoised so sensor noise does not become scribbles.
2. Colour dodge of the luminance by its blurred inverse, i.e.
   ``gray / blur(gray)``: flat areas saturate to white, and pixels darker
   than their neighbourhood - edges, creases, eyes - become grey strokes.
3. The strokes are deepened with a power curve, a faint tone from the large
   scale luminance adds pencil shading to dark areas, and a light diagonal
   hatching texture (modulated by that tone) gives a paper-and-graphite feel.
"""

from __future__ import annotations

import cv2
import numpy as np

# Blur radius of the dodge, relative to the long side: sets stroke width and
# how much of a shape's interior is drawn.
DODGE_SIGMA_FRAC = 1.0 / 160
# >1 deepens the grey strokes the dodge produces (which are rather faint).
STROKE_GAMMA = 3.0
# How much shading dark areas of the photo receive (0 = pure line drawing).
SHADING = 0.2
# Strength of the hatching texture inside shaded areas.
HATCH = 0.35
TEXTURE_SEED = 2024
DODGE_EPS = 10.0


def _hatching(h: int, w: int) -> np.ndarray:
    """Deterministic diagonal pencil hatching in [0, 1] (1 = dense graphite)."""
    rng = np.random.default_rng(TEXTURE_SEED)
    noise = rng.random((h, w), dtype=np.float32)
    # Smearing noise along a 45-degree line turns it into short parallel
    # strokes, like graphite dragged across paper grain.
    length = 9
    kernel = np.eye(length, dtype=np.float32)[::-1] / length
    strokes = cv2.filter2D(noise, -1, kernel, borderType=cv2.BORDER_REFLECT)
    # Normalise to a fixed range (independent of image content) and keep
    # only the upper part so it reads as separate strokes, not fog.
    return np.clip((strokes - 0.5) * 6.0 + 0.5, 0.0, 1.0)


def sketch(image_bgr: np.ndarray) -> np.ndarray:
    """Return a pencil-sketch rendering of ``image_bgr`` (uint8 BGR HxWx3 -> same)."""
    if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3 BGR image, got {image_bgr.dtype} {image_bgr.shape}")
    # OpenCV rejects some views (e.g. negative strides); copy only if needed.
    image_bgr = np.ascontiguousarray(image_bgr)
    h, w = image_bgr.shape[:2]
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    gray = cv2.bilateralFilter(gray, d=7, sigmaColor=25, sigmaSpace=4).astype(np.float32)

    sigma = max(1.0, DODGE_SIGMA_FRAC * max(h, w))
    local = cv2.GaussianBlur(gray, (0, 0), sigma)
    # Colour dodge: gray / (1 - blurred inverse) == gray / blurred gray.
    # The small offset keeps flat dark areas white instead of 0/0, and stops
    # noise in shadows from being amplified into scribbles.
    dodge = np.clip((gray + DODGE_EPS) / (local + DODGE_EPS), 0.0, 1.0)
    lines = dodge**STROKE_GAMMA

    # Large-scale tone: 0 in bright areas, up to 1 in the darkest ones.
    tone = 1.0 - cv2.GaussianBlur(gray, (0, 0), 4.0 * sigma) / 255.0
    # The power keeps mid-tones (skin) nearly clean and shades dark areas
    # (hair, clothes) - the way an artist spends graphite.
    tone = tone**1.5
    shade = tone * SHADING * (1.0 - HATCH + HATCH * _hatching(h, w) * 2.0)

    paper = lines * (1.0 - np.clip(shade, 0.0, 1.0))
    out = np.clip(paper * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
