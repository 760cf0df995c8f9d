"""Frame numbers written into pixels and read back after stylization, for honest latency.

The benchmark's synthetic camera stamps each frame's number as a row of black and white
blocks; the sink reads the blocks back from the *stylized* frame. Styles change colours but
keep dark blocks darker than bright ones, so bits are read against the midpoint of the
darkest and brightest block, and a checksum rejects frames the style garbled (counted, not
guessed).
"""

from __future__ import annotations

import numpy as np

BITS = 16  # frame number modulo 65536
CHECK_BITS = 4
COLS = 10  # blocks per row; two rows hold 16 + 4 bits


def _layout(width: int) -> tuple[int, int]:
    block = max(16, width // 26)
    return block, block // 2  # block side, margin from the corner


def _bits(number: int) -> list[int]:
    n = number % (1 << BITS)
    check = (n * 7 + 3) % 13  # a cheap check that a garbled read rarely satisfies
    value = n | (check << BITS)
    return [(value >> i) & 1 for i in range(BITS + CHECK_BITS)]


def write(frame: np.ndarray, number: int) -> None:
    """Stamp `number` into the top-left corner of a uint8 BGR frame, in place."""
    block, m = _layout(frame.shape[1])
    for i, bit in enumerate(_bits(number)):
        r, c = divmod(i, COLS)
        y, x = m + r * block, m + c * block
        frame[y:y + block, x:x + block] = 255 if bit else 0


def read(frame: np.ndarray) -> int | None:
    """The stamped number, or None when the blocks cannot be read with a valid checksum."""
    block, m = _layout(frame.shape[1])
    if frame.shape[0] < m + 2 * block or frame.shape[1] < m + COLS * block:
        return None
    region = frame[: m + 2 * block, : m + COLS * block]  # only the stamp: this runs per frame
    gray = region.mean(axis=2) if region.ndim == 3 else region
    q = block // 4  # the centre of each block: styles blur edges
    means = []
    for i in range(BITS + CHECK_BITS):
        r, c = divmod(i, COLS)
        y, x = m + r * block, m + c * block
        means.append(gray[y + q:y + block - q, x + q:x + block - q].mean())
    lo, hi = min(means), max(means)
    if hi - lo < 24:
        return None
    bits = [int(v > (lo + hi) / 2) for v in means]
    value = sum(b << i for i, b in enumerate(bits))
    n = value & ((1 << BITS) - 1)
    return n if _bits(n) == bits else None
