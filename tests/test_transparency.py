"""Images with transparency (issue 20, row 11): outputs that can hold an alpha channel keep the
source's; others get the image composited over white, and the log says so. Real RGBA files
through the real CLI, with the identity style so the colours can be compared exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO


def rgba(path: Path) -> np.ndarray:
    """Left half opaque red, right half fully transparent with green hidden under it, and a
    half-transparent band at the bottom."""
    img = np.zeros((40, 60, 4), np.uint8)
    img[..., 2] = 255  # red
    img[:, 30:, :3] = (0, 255, 0)  # the hidden colour
    img[:, :30, 3] = 255
    img[30:, :30, 3] = 128
    cv2.imwrite(str(path), img)
    return img


def run(src: Path, out: Path, style: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livestyle", "run", "--source", str(src),
                           "--style", str(style), "-o", str(out), "--backend", "onnxruntime",
                           *extra],
                          capture_output=True, text=True, timeout=180, cwd=out.parent,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_outputs_that_hold_alpha_keep_it(suffix, tmp_path, styles_dir):
    src = tmp_path / "logo.png"
    img = rgba(src)
    out = tmp_path / f"styled{suffix}"
    r = run(src, out, styles_dir / "identity.onnx")
    assert r.returncode == 0, r.stderr
    assert "logo.png: its transparency is kept" in r.stderr
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.shape == (40, 60, 4)
    np.testing.assert_allclose(got[..., 3].astype(int), img[..., 3].astype(int), atol=2)
    # the opaque pixels are the source's colours, stylized (here: unchanged)
    assert np.abs(got[:25, :25, :3].astype(int) - img[:25, :25, :3]).max() <= 8


def test_output_without_alpha_composites_over_white_and_says_so(tmp_path, styles_dir):
    src = tmp_path / "logo.png"
    rgba(src)
    out = tmp_path / "styled.jpg"
    r = run(src, out, styles_dir / "identity.onnx")
    assert r.returncode == 0, r.stderr
    assert ("logo.png has transparent pixels, which a .jpg output cannot hold: composited "
            "over white") in r.stderr
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.shape == (40, 60, 3)
    assert got[5:25, 35:55].min() >= 240  # white, not the green hidden under transparency
    assert np.abs(got[5:25, 5:25].astype(int) - (0, 0, 255)).max() <= 12  # red stays red
    assert np.abs(got[33:38, 5:25].astype(int) - (127, 127, 255)).max() <= 12  # half: pink


def test_a_folder_keeps_alpha_per_image_and_with_output_size(tmp_path, styles_dir):
    src = tmp_path / "photos"
    src.mkdir()
    img = rgba(src / "a.png")
    cv2.imwrite(str(src / "b.jpg"), np.full((40, 60, 3), 90, np.uint8))
    out = tmp_path / "out"
    r = run(src, out, styles_dir / "identity.onnx", "--output-size", "120x0")
    assert r.returncode == 0, r.stderr
    a = cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == (80, 120, 4)
    assert a[10:50, 70:110, 3].max() == 0 and a[5:50, 5:50, 3].min() == 255
    assert cv2.imread(str(out / "b.jpg"), cv2.IMREAD_UNCHANGED).shape == (80, 120, 3)
