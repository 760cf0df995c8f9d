"""train.gallery --beside-pilot writes where --out says, and leaves docs/ alone (it once
ignored --out and replaced the committed docs/beside-pilot.jpg)."""

from __future__ import annotations

import cv2

from train import gallery
from tests.conftest import REPO, need


def test_beside_pilot_writes_to_out_only(styles_dir, tmp_path):
    need(gallery.PILOT_GRID)
    committed = REPO / "docs" / "beside-pilot.jpg"
    before = committed.read_bytes() if committed.exists() else None
    out = tmp_path / "beside.jpg"
    assert gallery.main(["--beside-pilot", str(styles_dir / "identity.onnx"), "--out", str(out)]) == 0
    img = cv2.imread(str(out))
    rows = len(gallery.PILOT_CUTS) - 1
    assert img.shape == (28 + 240 * rows, 3 * 320, 3)
    # the identity style: our column is the photo column (JPEG and two resizes apart)
    photo, ours = img[28:, :320].astype(int), img[28:, 640:].astype(int)
    assert abs(photo - ours).mean() < 6
    assert (committed.read_bytes() if committed.exists() else None) == before
