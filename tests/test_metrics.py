"""The project's one PSNR: the number every parity check and quality floor is judged by."""

import math

import numpy as np
import pytest

from livestyle.metrics import psnr


def test_psnr_values():
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 1) == pytest.approx(48.13, abs=0.01)  # MSE 1
    b = a.copy()
    b[0, 0, 0] = 255  # one channel of one pixel off by full scale: MSE 255^2 / 48
    assert psnr(a, b) == pytest.approx(10 * math.log10(48), abs=1e-9)
    assert psnr(b, a) == psnr(a, b)


def test_psnr_does_not_wrap_uint8():
    a, b = np.full((2, 2, 3), 10, np.uint8), np.full((2, 2, 3), 250, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 240**2))


def test_psnr_refuses_different_shapes():
    with pytest.raises(ValueError, match="different shapes"):
        psnr(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 3, 3), np.uint8))
