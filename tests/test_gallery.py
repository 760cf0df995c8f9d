"""The pilot's grid beside ours: train.gallery --beside-pilot writes where --out says and leaves
docs/ alone (it once ignored --out and replaced the committed docs/beside-pilot.jpg), and
train.evaluate --beside-pilot measures both looks on the pilot's photos."""

from __future__ import annotations

import cv2
import pytest

from train import evaluate, gallery
from tests.conftest import REPO, need


def test_beside_pilot_writes_to_out_only(styles_dir, tmp_path):
    need(evaluate.PILOT_GRID)
    committed = REPO / "docs" / "beside-pilot.jpg"
    before = committed.read_bytes() if committed.exists() else None
    out = tmp_path / "beside.jpg"
    assert gallery.main(["--beside-pilot", str(styles_dir / "identity.onnx"), "--out", str(out)]) == 0
    img = cv2.imread(str(out))
    rows = len(evaluate.PILOT_CUTS) - 1
    assert img.shape == (28 + 240 * rows, 3 * 320, 3)
    # the identity style: our column is the photo column (JPEG and two resizes apart)
    photo, ours = img[28:, :320].astype(int), img[28:, 640:].astype(int)
    assert abs(photo - ours).mean() < 6
    assert (committed.read_bytes() if committed.exists() else None) == before


def test_beside_pilot_figures_tell_the_pilot_from_no_style(styles_dir):
    need(evaluate.PILOT_GRID)
    if not hasattr(cv2, "CascadeClassifier"):
        pytest.skip("the meter's face count needs OpenCV's Haar cascades (OpenCV 5 moved them "
                    "to opencv-contrib-python-headless)")
    lines = evaluate.beside_pilot_figures(styles_dir / "identity.onnx").splitlines()
    pilot, ours = (float(line.split("style ratio ")[1].split(",")[0]) for line in lines)
    assert pilot < 0.5 < 0.9 < ours  # the pilot paints; the identity style is the photo


def test_evaluate_names_an_unknown_style_in_one_line(capsys):
    assert evaluate.main(["--beside-pilot", "starry-nite"]) == 2
    err = capsys.readouterr().err
    assert "unknown style 'starry-nite'" in err and "starry-night" in err and err.count("\n") == 1
