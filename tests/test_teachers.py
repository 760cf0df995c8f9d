"""Tests for the teacher filters in train/teachers.

Real-photo tests read the shared content images and are skipped when that
folder is absent; the synthetic tests build their own images and always run.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from train.teachers import TEACHERS, cartoon, get_teacher, sketch

CONTENT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "content"
FACE = "caltech101faces_image_0193.jpg"
SCENE = "kodak_kodim01.jpg"


def load_photo(name: str) -> np.ndarray:
    path = CONTENT_DIR / name
    if not path.is_file():
        pytest.skip(f"shared content image not available: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"could not decode {path}"
    return image


def noise_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def disc_image(size: int = 128, radius: int = 30, bg: int = 128, fg: int = 230) -> np.ndarray:
    """A bright grey disc centred on a mid-grey background."""
    image = np.full((size, size, 3), bg, np.uint8)
    cv2.circle(image, (size // 2, size // 2), radius, (fg, fg, fg), thickness=-1)
    return image


def luminance(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)


def distinct_colours(image: np.ndarray) -> int:
    return len(np.unique(image.reshape(-1, 3), axis=0))


# --- shape / dtype contract -------------------------------------------------

@pytest.mark.parametrize("name", sorted(TEACHERS))
@pytest.mark.parametrize("hw", [(101, 67), (67, 101), (1, 1), (2, 3), (3, 2), (1, 40), (9, 9)])
def test_shape_and_dtype_synthetic(name, hw):
    image = noise_image(*hw)
    out = TEACHERS[name](image)
    assert out.dtype == np.uint8
    assert out.shape == image.shape


@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_shape_and_dtype_real_photo(name):
    image = load_photo(FACE)
    out = TEACHERS[name](image)
    assert out.dtype == np.uint8
    assert out.shape == image.shape


@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_does_not_modify_input(name):
    image = noise_image(40, 30, seed=3)
    before = image.copy()
    TEACHERS[name](image)
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_rejects_non_bgr_input(name):
    with pytest.raises(ValueError):
        TEACHERS[name](np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError):
        TEACHERS[name](np.zeros((8, 8, 3), np.float32))


# --- determinism -------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_deterministic_synthetic(name):
    image = cv2.GaussianBlur(noise_image(96, 80, seed=7), (0, 0), 2.0)
    np.testing.assert_array_equal(TEACHERS[name](image), TEACHERS[name](image.copy()))


@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_deterministic_real_photo(name):
    image = load_photo(FACE)
    first = TEACHERS[name](image)
    # Disturb OpenCV's global RNG in between: a teacher must not depend on it.
    cv2.setRNGSeed(987)
    cv2.randu(np.empty((4, 4), np.float32), 0, 1)
    np.testing.assert_array_equal(first, TEACHERS[name](image))


# --- cartoon -----------------------------------------------------------------

@pytest.mark.parametrize("photo", [FACE, SCENE])
def test_cartoon_flattens_colours(photo):
    image = load_photo(photo)
    before = distinct_colours(image)
    after = distinct_colours(cartoon(image))
    assert after < before / 10, f"{photo}: {after} colours out of {before}"


def test_cartoon_keeps_colours_of_photo():
    """Flattening must not wash the photo out: region colours stay close."""
    image = load_photo(FACE)
    out = cartoon(image)
    lab_in = cv2.cvtColor(cv2.GaussianBlur(image, (0, 0), 3), cv2.COLOR_BGR2LAB).astype(np.float32)
    lab_out = cv2.cvtColor(out, cv2.COLOR_BGR2LAB).astype(np.float32)
    # Median over pixels so the ink lines (which are meant to differ) don't count.
    assert np.median(np.linalg.norm(lab_in - lab_out, axis=2)) < 12


@pytest.mark.parametrize("bg, fg", [(128, 230), (200, 60)])
def test_cartoon_outlines_disc(bg, fg):
    size, radius = 128, 30
    out = luminance(cartoon(disc_image(size, radius, bg, fg)))
    centre = size / 2
    # Every ray crossing the boundary must meet ink: a pixel within a few px
    # of the circle that is much darker than both disc and background.
    darkest = []
    for angle in np.linspace(0, 2 * np.pi, 90, endpoint=False):
        r = np.arange(radius - 4, radius + 5)
        ys = np.rint(centre + r * np.sin(angle)).astype(int)
        xs = np.rint(centre + r * np.cos(angle)).astype(int)
        darkest.append(out[ys, xs].min())
    assert max(darkest) < 0.5 * min(bg, fg), f"boundary not outlined: {max(darkest)}"

    # Flat regions far from the edge keep their colour and carry no ink.
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - centre, xx - centre)
    inside, outside = out[r < radius - 8], out[(r > radius + 8)]
    assert np.abs(inside - fg).max() <= 6
    assert np.abs(outside - bg).max() <= 6


def test_cartoon_cleans_noise():
    """Sensor noise must neither speckle the flat regions nor spawn ink."""
    size, radius, bg, fg = 128, 30, 128, 230
    noisy = disc_image(size, radius, bg, fg).astype(np.float32)
    noisy += np.random.default_rng(1).normal(0.0, 12.0, noisy.shape)
    out = luminance(cartoon(np.clip(noisy, 0, 255).astype(np.uint8)))
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    far = np.abs(r - radius) > 8
    expected = np.where(r < radius, fg, bg)
    error = np.abs(out - expected)[far]
    assert np.percentile(error, 99) <= 5, "flat regions should be flat again"
    assert error.max() < 40, "no ink specks away from the real edge"


def test_cartoon_flat_image_stays_flat():
    """A flat colour stays one flat colour: same lightness and hue, no ink.

    (Chroma may be boosted - cartoons are more saturated - but not reduced.)
    """
    image = np.full((50, 70, 3), (40, 120, 200), np.uint8)
    out = cartoon(image)
    assert distinct_colours(out) == 1
    lab_in = cv2.cvtColor(image[:1, :1], cv2.COLOR_BGR2LAB).astype(np.float32)[0, 0] - [0, 128, 128]
    lab_out = cv2.cvtColor(out[:1, :1], cv2.COLOR_BGR2LAB).astype(np.float32)[0, 0] - [0, 128, 128]
    assert abs(lab_out[0] - lab_in[0]) <= 3
    hue_in, hue_out = np.arctan2(lab_in[2], lab_in[1]), np.arctan2(lab_out[2], lab_out[1])
    assert abs(np.degrees(hue_out - hue_in)) <= 5
    assert np.hypot(*lab_out[1:]) >= np.hypot(*lab_in[1:]) - 2


# --- sketch ------------------------------------------------------------------

def test_sketch_is_light_grayscale_drawing():
    out = sketch(load_photo(FACE))
    lum = luminance(out)
    assert np.median(lum) > 200, "a drawing is mostly paper"
    spread = out.max(axis=2).astype(int) - out.min(axis=2).astype(int)
    assert spread.max() <= 2, "pencil drawing must be grayscale"
    assert lum.min() < 80, "there must be some dark strokes"


@pytest.mark.parametrize("photo", [FACE, SCENE])
def test_sketch_strokes_follow_photo_edges(photo):
    image = load_photo(photo)
    darkness = 255.0 - luminance(sketch(image))
    # Significant edges of the photo (pre-blur ignores texture and noise);
    # dilated because the dodge draws the stroke on the dark side of an edge.
    gray = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (0, 0), 2.0)
    edges = cv2.dilate(cv2.Canny(gray, 100, 200), np.ones((3, 3), np.uint8)) > 0
    assert edges.sum() > 100, "test photo should have edges"
    on, off = darkness[edges].mean(), darkness[~edges].mean()
    assert on > 1.5 * off, f"edge darkness {on:.1f} vs elsewhere {off:.1f}"


def test_sketch_synthetic_edge_drawn_flat_areas_white():
    out = luminance(sketch(disc_image(128, 30, bg=200, fg=60)))
    yy, xx = np.mgrid[:128, :128]
    r = np.hypot(yy - 64, xx - 64)
    ring = out[(r > 26) & (r < 31)]  # dark (disc) side of the boundary
    far_bg = out[r > 50]
    assert ring.mean() < far_bg.mean() - 40
    assert np.median(far_bg) > 200


# --- registry ----------------------------------------------------------------

def test_registry_contents():
    assert set(TEACHERS) == {"cartoon", "sketch"}
    assert get_teacher("cartoon") is cartoon
    assert get_teacher("sketch") is sketch


def test_get_teacher_unknown_lists_names():
    with pytest.raises(ValueError) as excinfo:
        get_teacher("nope")
    message = str(excinfo.value)
    assert "cartoon" in message and "sketch" in message and "nope" in message
