"""Ink calibration of a toon generator: the folded gain and bias are what the graph runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
import torch

from livestyle.generator import SIZES, Generator
from tests.conftest import SHARED, need
from train import ink


def _toon() -> Generator:
    torch.manual_seed(0)
    g = Generator(dataclasses.replace(SIZES["toon"], residual=True)).eval()
    with torch.no_grad():  # a logit with a real spread, like a trained head
        g.out[-1][-1].weight[3] *= 20
    return g


def test_calibration_recovers_the_teachers_ink_and_folds_it_into_the_graph():
    content = need(SHARED / "content")
    student, student_copy = _toon(), _toon()
    # a teacher that inks the student's own lines with gain 2 and bias -1: the grid must
    # find exactly those, and the folded network must then draw what the teacher draws
    teacher = lambda bgr: ink._inked(*ink._parts(student_copy, bgr), 2.0, -1.0)  # noqa: E731
    result = ink.calibrate(student, teacher, content, n_photos=2, log=lambda m: None)
    assert (result["ink_gain"], result["ink_bias"]) == (2.0, -1.0)
    assert result["psnr_after"] > 45 > result["psnr_before"]
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    x = torch.from_numpy(frame[..., ::-1].transpose(2, 0, 1).copy()).float()[None] / 255
    with torch.no_grad():
        folded = student(x)[0].numpy()
    want = ink._inked(*ink._parts(student_copy, frame), 2.0, -1.0)
    got = np.clip(folded[::-1].transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_calibration_runs_at_the_native_side_like_the_product():
    """A style with a 320-px native side runs a 640x480 frame at 320x240 and enlarges the
    result: the calibration must score that, not the network run at 640x480."""
    from livestyle.frames import postprocess, preprocess

    content = need(SHARED / "content")
    student, student_copy = _toon(), _toon()

    def teacher(bgr):
        small = preprocess(bgr, (320, 240))
        return postprocess(ink._inked(*ink._parts(student_copy, small), 2.0, -1.0), bgr)

    result = ink.calibrate(student, teacher, content, n_photos=2, native_side=320,
                           log=lambda m: None)
    assert (result["ink_gain"], result["ink_bias"]) == (2.0, -1.0)
    assert result["psnr_after"] > 45 > result["psnr_before"]


def test_calibration_keeps_the_ink_when_nothing_beats_it():
    content = need(SHARED / "content")
    student, reference = _toon(), _toon()
    teacher = lambda bgr: ink._inked(*ink._parts(reference, bgr), 1.0, 0.0)  # noqa: E731
    result = ink.calibrate(student, teacher, content, n_photos=1, log=lambda m: None)
    assert (result["ink_gain"], result["ink_bias"]) == (1.0, 0.0)
    for a, b in zip(student.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)


def test_calibration_refuses_an_rgb_head():
    with pytest.raises(ValueError, match="toon head"):
        ink.calibrate(Generator(SIZES["fast"]), lambda b: b, SHARED / "content")


def test_recalibrating_an_exported_style_writes_it_enlarged_its_teachers_way(tmp_path):
    """`python -m train.ink`: an old cartoon student (no upscale recorded) comes back
    calibrated and enlarged pixel for pixel like the cartoon teacher; nothing is replaced
    unasked, and a painting is refused."""
    import shutil

    from livestyle.styles import read_style
    from tests.conftest import random_generator
    from train.data import find_images
    from train.export import export_onnx

    photos = tmp_path / "photos"
    photos.mkdir()
    for p in find_images(need(SHARED / "content"))[:2]:
        shutil.copy(p, photos)
    old = export_onnx(_toon(), tmp_path / "old.onnx", style="toon",
                      training={"teacher": "cartoon", "long_side": 320})
    out = tmp_path / "new.onnx"
    assert ink.main([str(old), "--out", str(out), "--content-dir", str(photos)]) == 0
    new = read_style(out)
    assert (read_style(old).upscale, new.upscale) == ("linear", "nearest")
    assert new.training["recalibrated"]["photos"] == 2
    assert new.training["long_side"] == 320
    meta = {m.key: m.value for m in onnx.load(str(out)).metadata_props}
    assert meta["livestyle.style"] == "toon"  # the trained name is kept (logs use the file's)
    before = out.read_bytes()
    assert ink.main([str(old), "--out", str(out), "--content-dir", str(photos)]) == 2
    assert out.read_bytes() == before
    painting = export_onnx(random_generator(), tmp_path / "p.onnx", style="p",
                           training={"style_image": "x.jpg"})
    with pytest.raises(ValueError, match="not learned from a teacher"):
        ink.recalibrate(painting, tmp_path / "p2.onnx", photos)
