"""Images with transparency (issue 20, row 11): outputs that can hold an alpha channel keep the
source's; others get the image composited over white, and the log says so. Real RGBA files
through the real CLI, with the identity style so the colours can be compared exactly."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
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


# --- EXIF orientation: IMREAD_COLOR turns the colours upright, IMREAD_UNCHANGED (the alpha)
# does not; the alpha must be turned the same way, for every orientation

def _exif(orientation: int) -> bytes:
    """TIFF-structured EXIF data holding only the orientation tag (big-endian)."""
    return (b"MM\x00*" + struct.pack(">IH", 8, 1)
            + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0))


def _png_with_exif(png: bytes, orientation: int) -> bytes:
    body = b"eXIf" + _exif(orientation)
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return png[:33] + chunk + png[33:]  # after the signature (8) and IHDR (25)


def _webp_with_exif(webp: bytes, orientation: int, w: int, h: int) -> bytes:
    assert webp[12:16] == b"VP8L"  # simple lossless WebP: wrap it in an extended one
    vp8x = (b"VP8X" + struct.pack("<I", 10) + bytes([0x08 | 0x10, 0, 0, 0])  # EXIF, alpha
            + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little"))
    e = _exif(orientation)
    exif = b"EXIF" + struct.pack("<I", len(e)) + e + b"\x00" * (len(e) & 1)
    payload = b"WEBP" + vp8x + webp[12:] + exif
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def _marked(h: int = 40, w: int = 60) -> np.ndarray:
    """An image with no symmetry, whose colour says its alpha: opaque red, nearly transparent
    green (a corner block; not fully: lossless WebP drops the colour under alpha 0) and half-
    transparent blue (a band): misplaced alpha shows as a mismatch."""
    img = np.zeros((h, w, 4), np.uint8)
    img[...] = (0, 0, 255, 255)
    img[:10, :25] = (0, 255, 0, 40)
    img[h - 6:, 30:] = (255, 0, 0, 128)
    return img


def _oriented(fmt: str, orientation: int) -> bytes:
    img = _marked()
    if fmt == ".png":
        return _png_with_exif(cv2.imencode(".png", img)[1].tobytes(), orientation)
    data = cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes()  # lossless
    return _webp_with_exif(data, orientation, img.shape[1], img.shape[0])


def _assert_alpha_matches_colour(image: np.ndarray, alpha: np.ndarray, tol: int = 0) -> None:
    assert alpha.shape == image.shape[:2]
    colour = image.astype(int)
    want = np.full(alpha.shape, -1)
    want[(np.abs(colour - (0, 0, 255)).max(-1) <= tol)] = 255
    want[(np.abs(colour - (0, 255, 0)).max(-1) <= tol)] = 40
    want[(np.abs(colour - (255, 0, 0)).max(-1) <= tol)] = 128
    assert (want >= 0).all()
    assert (np.abs(alpha.astype(int) - want) <= tol).all()


@pytest.mark.parametrize("fmt", [".png", ".webp"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_alpha_is_turned_with_the_colours_for_every_exif_orientation(fmt, orientation, tmp_path):
    from livestyle.images import _read, exif_orientation

    data = _oriented(fmt, orientation)
    assert exif_orientation(data) == orientation
    path = tmp_path / f"logo{fmt}"
    path.write_bytes(data)
    image, alpha, why = _read(path)
    assert why == "" and alpha is not None
    # the colours as OpenCV (and viewers) turn them upright; the alpha lines up with them
    upright = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(image, upright)
    _assert_alpha_matches_colour(image, alpha)


def test_exif_orientation_without_a_tag_or_broken_is_upright():
    from livestyle.images import exif_orientation

    png = cv2.imencode(".png", _marked())[1].tobytes()
    assert exif_orientation(png) == 1
    assert exif_orientation(_png_with_exif(png, 6)[:45]) == 1  # cut inside the EXIF data
    assert exif_orientation(_png_with_exif(png, 9)) == 1  # not an orientation
    assert exif_orientation(b"\xff\xd8\xff") == 1


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_turned_transparent_photo_keeps_its_alpha_lined_up(orientation, tmp_path, styles_dir):
    src = tmp_path / "logo.png"
    src.write_bytes(_oriented(".png", orientation))
    out = tmp_path / "styled.png"
    r = run(src, out, styles_dir / "identity.onnx")
    assert r.returncode == 0, r.stderr
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.shape[:2] == ((40, 60) if orientation == 3 else (60, 40))
    # away from the edges between regions (the style may blur them a little)
    a, c = got[..., 3].astype(int), got[..., :3].astype(int)
    red = np.abs(c - (0, 0, 255)).max(-1) <= 20
    green = np.abs(c - (0, 255, 0)).max(-1) <= 20
    assert red.sum() > 1000 and green.sum() > 100
    assert (a[red] >= 250).all() and (np.abs(a[green] - 40) <= 5).all()
