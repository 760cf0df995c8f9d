"""Tests for the independent look measure (train/lookmeter.py): EfficientNet-Lite2, real weights.

The pictures are made here: a "painting" of blue and yellow strokes and a "photo" of smooth
shapes; outputs are the photo with more or less of the painting's texture. The face test uses
a real face photo from ../shared and OpenCV's Haar cascade, and skips, saying so, without them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from train import lookmeter

FACE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "content" / "kodak_kodim04.jpg"


def _painting(w: int = 600, h: int = 450) -> np.ndarray:
    """Short oriented strokes, blue on dark blue with yellow swirls."""
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), (90, 40, 20), np.uint8)  # BGR dark blue
    for _ in range(2500):
        x, y = int(rng.integers(w)), int(rng.integers(h))
        a = np.arctan2(y - h / 2, x - w / 2) + np.pi / 2  # swirl around the centre
        dx, dy = int(9 * np.cos(a)), int(9 * np.sin(a))
        colour = (40, 210, 230) if rng.random() < 0.2 else (200, 120, 40)
        cv2.line(img, (x - dx, y - dy), (x + dx, y + dy), colour, 2, cv2.LINE_AA)
    return img


def _photo(w: int = 640, h: int = 480) -> np.ndarray:
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.dstack([120 + 60 * gx / w, 150 - 40 * gy / h, 170 + 0 * gx]).astype(np.uint8)
    cv2.circle(img, (w // 3, h // 2), 90, (60, 80, 200), -1)
    cv2.rectangle(img, (w // 2, h // 4), (w - 80, h - 60), (40, 160, 60), -1)
    return img


@pytest.fixture(scope="module")
def look():
    return lookmeter.Look(lookmeter.LookMeter(), _painting())


def test_the_untouched_photo_scores_one_on_both(look):
    photo = _photo()
    assert look.style_ratio(photo, photo) == pytest.approx(1.0, abs=1e-6)
    assert look.scene(photo, photo) == pytest.approx(1.0, abs=1e-5)


def test_more_painting_lowers_the_style_ratio_and_the_scene(look):
    photo = _photo()
    texture = cv2.resize(_painting(), (640, 480))
    outs = [cv2.addWeighted(photo, 1 - a, texture, a, 0) for a in (0.3, 0.6, 0.9)]
    ratios = [look.style_ratio(photo, o) for o in outs]
    scenes = [look.scene(photo, o) for o in outs]
    assert ratios[0] < 1.0 and ratios == sorted(ratios, reverse=True), ratios
    assert ratios[-1] < 0.5, ratios
    assert scenes == sorted(scenes, reverse=True), scenes


def test_a_colour_cast_is_not_a_painting(look):
    """A tint towards the painting's mean colour moves the ratio far less than its strokes."""
    photo = _photo()
    painting = _painting()
    tint = cv2.addWeighted(photo, 0.4, np.full_like(photo, painting.mean(axis=(0, 1))), 0.6, 0)
    strokes = cv2.addWeighted(photo, 0.4, cv2.resize(painting, (640, 480)), 0.6, 0)
    assert look.style_ratio(photo, strokes) < look.style_ratio(photo, tint)


def _needs_haar_and_photos():
    if not hasattr(cv2, "CascadeClassifier"):
        pytest.skip("this OpenCV has no Haar cascades (OpenCV 5 moved them to "
                    "opencv-contrib-python-headless)")
    if not FACE.is_file():
        pytest.skip(f"shared held-out photos missing: {FACE.parent}")


def test_measure_counts_faces_kept_and_lost():
    _needs_haar_and_photos()
    photo = cv2.imread(str(FACE))
    found = lookmeter.faces(photo)
    assert found, "the detector should find the face in kodim04"
    kept, n = lookmeter.faces_kept(photo, photo)
    assert (kept, n) == (len(found), len(found))
    blurred = cv2.GaussianBlur(photo, (0, 0), 25)
    assert lookmeter.faces_kept(photo, blurred) == (0, len(found))


def test_the_labelled_faces_are_the_detectors_boxes_on_the_held_out_frames():
    """train/heldout_faces.json splits what the detector finds in the held-out photos, framed
    as train.evaluate frames them, into faces and false positives: together they must be
    exactly its boxes, or the labels are stale (another framing, another detector)."""
    _needs_haar_and_photos()
    import json

    from train.evaluate import face_photos

    labels = json.loads(lookmeter.HELDOUT_FACES.read_text())
    photos = face_photos()
    assert sum(len(b) for b in labels["faces"].values()) == 57
    for name in set(labels["faces"]) | set(labels["not_faces"]):
        frame = photos.get(name)
        if frame is None:  # only false positives in it
            from train.evaluate import camera_frame
            frame = camera_frame(FACE.parent / name)
        boxes = labels["faces"].get(name, []) + labels["not_faces"].get(name, [])
        assert sorted(map(list, lookmeter.faces(frame))) == sorted(boxes), name


def test_real_faces_kept_counts_a_face_painted_over_as_lost():
    _needs_haar_and_photos()
    from train.evaluate import face_photos

    photos = dict(list(face_photos().items())[:3])
    n = sum(len(lookmeter.labelled_faces()[k]) for k in photos)
    assert lookmeter.real_faces_kept(lambda f: f, photos) == (n, n, [])
    grey = lambda f: np.full_like(f, 128)  # noqa: E731
    assert lookmeter.real_faces_kept(grey, photos) == (0, n, list(photos))
