"""The face loss: boxes from train.faces become a mask cut with each crop, and the content loss
inside that mask is added at --face-weight. Photos and boxes are made by the tests."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from train import faces, losses
from train.__main__ import main as train_main
from train.config import TrainConfig
from train.data import CropSampler
from train.loop import load_checkpoint, train
from tests.conftest import REPO, need

CONTENT = REPO.parent / "shared" / "data" / "content"
BOX = [40, 30, 60, 50]  # x, y, w, h in the photos' own 200x160 pixels


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Grey photos with a bright 'face' at BOX (and its boxes file); one photo has no face."""
    d = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    boxes = {}
    for i in range(6):
        img = rng.integers(0, 60, (160, 200, 3), dtype=np.uint8)
        if i:
            x, y, w, h = BOX
            img[y:y + h, x:x + w] = 240
        cv2.imwrite(str(d / f"p{i}.png"), img)
        boxes[f"p{i}.png"] = [BOX] if i else []
    (d.parent / "boxes.json").write_text(json.dumps(boxes))
    return d


def test_mask_follows_the_crop_and_the_flip(photos):
    boxes = faces.read_boxes(photos.parent / "boxes.json")
    sampler = CropSampler(photos, 32, long_side=100, jitter=1.5, faces=boxes)
    rng = np.random.default_rng(1)
    inside = outside = 0
    for _ in range(20):
        x, target, mask = sampler.sample(rng, 4)
        assert target is None and mask.shape == (4, 1, 32, 32)
        bright = x.mean(dim=1, keepdim=True) > 0.5
        sure = (mask == 0) | (mask == 1)  # away from the box's resized edges
        assert torch.equal(bright[sure], mask[sure].bool())
        inside, outside = inside + int((mask == 1).sum()), outside + int((mask == 0).sum())
    assert inside > 1000 and outside > 1000  # both kinds of crop were drawn


def test_boxes_for_another_folder_are_refused(photos):
    with pytest.raises(ValueError, match="name none of the photos"):
        CropSampler(photos, 32, faces={"elsewhere.jpg": [BOX]})


@pytest.mark.parametrize("text", ["[1, 2]", "{\"a.jpg\": [[1, 2, 3]]}", "not json"])
def test_a_file_that_is_not_boxes_is_refused(tmp_path, text):
    (tmp_path / "b.json").write_text(text)
    with pytest.raises(ValueError, match="b.json"):
        faces.read_boxes(tmp_path / "b.json")


def test_masked_content_loss_sees_only_the_mask():
    torch.manual_seed(0)
    target = [torch.randn(2, 8, 10, 10)]
    mask = torch.zeros(2, 1, 40, 40)
    mask[:, :, :20] = 1  # top half of the frame: top 5 rows of the 10x10 grid
    off = [target[0].clone()]
    off[0][:, :, 5:] += 1.0  # changed outside the mask only
    assert losses.masked_content_loss(off, target, mask).item() == 0
    on = [target[0].clone()]
    on[0][:, :, :5] += 1.0
    assert losses.masked_content_loss(on, target, mask).item() == pytest.approx(1.0, rel=1e-4)
    assert losses.masked_content_loss(on, target, torch.zeros_like(mask)).item() == 0


def _style(tmp_path):
    path = tmp_path / "painting.png"
    cv2.imwrite(str(path), np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return path


def test_face_weight_without_boxes_is_a_one_line_error(photos, tmp_path, capsys):
    argv = ["--name", "x", "--style-image", str(_style(tmp_path)), "--content-dir", str(photos),
            "--run-dir", str(tmp_path / "r"), "--out-dir", str(tmp_path / "o"),
            "--face-weight", "1"]
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert "python -m train.faces" in err and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()


def test_training_with_faces_logs_and_lowers_the_face_loss(photos, tmp_path):
    torch_threads = torch.get_num_threads()
    try:
        cfg = TrainConfig(name="f", style_image=str(_style(tmp_path)), content_dir=str(photos),
                          run_dir=str(tmp_path / "runs"), out_dir=str(tmp_path / "out"),
                          face_weight=3.0, face_boxes=str(photos.parent / "boxes.json"),
                          crop=32, batch=2, steps=40, threads=1, log_every=1,
                          sample_every=1000, checkpoint_every=1000, long_side=100)
        train(cfg, export=False)
    finally:
        torch.set_num_threads(torch_threads)
    hist = load_checkpoint(tmp_path / "runs" / "f" / "checkpoint.pt")["history"]
    face = [h["faces"] for h in hist if "faces" in h]
    assert len(face) == 40 and max(face) > 0
    assert np.mean(face[-10:]) < np.mean(face[:10])


def test_cli_refuses_to_overwrite_boxes(tmp_path, capsys):
    out = tmp_path / "boxes.json"
    out.write_text("{}")
    assert faces.main(["--content-dir", str(tmp_path), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "{}"


def test_the_bundled_boxes_cover_the_shared_photos():
    need(CONTENT)
    boxes = faces.read_boxes(REPO / "train" / "face_boxes.json")
    names = {p.name for p in CONTENT.iterdir()}
    assert set(boxes) == {n for n in names if n.lower().endswith((".jpg", ".jpeg", ".png"))}
    assert sum(1 for v in boxes.values() if v) > 300  # the face photos among them


def test_find_faces_finds_a_face_in_a_face_photo():
    if not hasattr(cv2, "CascadeClassifier"):
        pytest.skip("finding faces needs OpenCV's Haar cascades (opencv-contrib-python-headless)")
    need(CONTENT / "caltech101faces_image_0001.jpg")
    found = faces.find_faces([CONTENT / "caltech101faces_image_0001.jpg"])
    assert len(found["caltech101faces_image_0001.jpg"]) >= 1
