"""Pre/post-processing: every frame format a source can give, at odd and tiny sizes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livestyle import backends
from livestyle.frames import (MIN_SIDE, auto_scale, postprocess, preprocess, processing_size,
                              shrink, to_bgr8)


@pytest.mark.parametrize("shape,dtype", [
    ((479, 641), np.uint8), ((479, 641, 1), np.uint8), ((2, 3, 4), np.uint8),
    ((5, 7, 3), np.uint16), ((3, 2, 3), np.float32), ((1, 1, 3), np.uint8),
])
def test_to_bgr8_handles_common_formats(shape, dtype):
    rng = np.random.default_rng(1)
    top = {np.uint8: 256, np.uint16: 65536}.get(dtype)
    frame = (rng.integers(0, top, shape).astype(dtype) if top else rng.random(shape, dtype))
    out = to_bgr8(frame)
    assert out.dtype == np.uint8 and out.shape == (*shape[:2], 3)


def test_to_bgr8_keeps_values_meaningful():
    gray = np.full((2, 3), 77, np.uint8)
    assert (to_bgr8(gray) == 77).all()
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 250, 9  # blue, alpha dropped
    assert to_bgr8(bgra)[0, 0].tolist() == [250, 0, 0]
    assert to_bgr8(np.full((1, 1, 3), 0xAB00, np.uint16))[0, 0, 0] == 0xAB
    assert to_bgr8(np.full((1, 1, 3), 0.5, np.float32))[0, 0, 0] == 128


@pytest.mark.parametrize("bad", [np.zeros((0, 4, 3), np.uint8), np.zeros((4, 4, 5), np.uint8),
                                 np.zeros((4, 4, 3), np.int64)])
def test_to_bgr8_rejects_with_a_reason(bad):
    with pytest.raises(ValueError, match="frame"):
        to_bgr8(bad)


@pytest.mark.parametrize("w,h,scale", [(641, 479, 1.0), (641, 479, 0.5), (2, 3, 1.0),
                                       (1, 1, 1.0), (1280, 720, 0.5), (3840, 2160, 0.25)])
def test_round_trip_through_a_real_model_keeps_size(w, h, scale, styles_dir):
    frame = np.random.default_rng(w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    size = processing_size(w, h, scale)
    assert min(size) >= MIN_SIDE
    small = preprocess(frame, size)
    assert small.shape == (size[1], size[0], 3) and small.flags["C_CONTIGUOUS"]
    with backends.create("onnxruntime", styles_dir / "rand-a.onnx") as b:
        out = postprocess(b.infer(small), frame)
    assert out.shape == frame.shape and out.dtype == np.uint8


def test_round_trip_with_identity_model_returns_the_frame(styles_dir, frame_641x479):
    """Scale 1 through the identity style: the pixels come back exactly, in BGR order."""
    size = processing_size(641, 479, 1.0)
    with backends.create("onnxruntime", styles_dir / "identity.onnx") as b:
        out = postprocess(b.infer(preprocess(frame_641x479, size)), frame_641x479)
    np.testing.assert_array_equal(out, frame_641x479)


def test_blend_mixes_original_and_styled():
    original = np.full((4, 6, 3), 100, np.uint8)
    styled = np.full((4, 6, 3), 200, np.uint8)
    assert (postprocess(styled, original, 1.0) == 200).all()
    assert (postprocess(styled, original, 0.0) == 100).all()
    assert (postprocess(styled, original, 0.25) == 125).all()
    small = np.full((2, 3, 3), 200, np.uint8)  # a half-size result is upscaled first
    assert postprocess(small, original, 1.0).shape == original.shape


def test_postprocess_never_returns_the_backends_buffer():
    styled = np.full((4, 6, 3), 200, np.uint8)
    out = postprocess(styled, np.zeros_like(styled), 1.0)
    assert out is not styled and not np.shares_memory(out, styled)


@pytest.mark.parametrize("w, h, gpu, native, want", [
    (640, 480, False, None, 1.0),
    (640, 480, False, 512, 0.8),  # the cartoon: its teacher works at a 512-px long side
    (640, 480, False, 800, 1.0),  # never enlarged for a native side
    (1280, 720, False, 512, 0.4),  # the tighter of the CPU budget (0.5) and the native side
    (1280, 720, True, 512, 0.4),  # a GPU runs full size, but not past the native side
    (1280, 720, True, None, 1.0),
])
def test_auto_scale_stops_at_a_styles_native_side(w, h, gpu, native, want):
    assert auto_scale(w, h, gpu, native_side=native) == pytest.approx(want)


def test_nearest_upscale_enlarges_pixel_for_pixel_and_shrinking_stays_linear():
    """The cartoon's upscale: every output pixel is the stylized pixel it falls in (cv2's
    nearest: source index floor(i * 4 / 5) for 512 -> 640), as the teacher enlarges its
    flat colours; the default stays bilinear."""
    rng = np.random.default_rng(0)
    styled = rng.integers(0, 256, (8, 12, 3), np.uint8)
    original = np.zeros((10, 15, 3), np.uint8)
    near = postprocess(styled, original, upscale="nearest")
    rows, cols = np.arange(10) * 8 // 10, np.arange(15) * 12 // 15
    assert np.array_equal(near, styled[rows][:, cols])
    linear = postprocess(styled, original)
    assert linear.shape == near.shape and not np.array_equal(linear, near)
    assert np.array_equal(postprocess(styled, original, upscale="linear"), linear)
    # blending happens after the enlargement, whichever it is
    half = postprocess(styled, original, 0.5, "nearest").astype(int)
    assert np.abs(half - near.astype(int) / 2).max() <= 0.5
    big = rng.integers(0, 256, (20, 30, 3), np.uint8)  # a result larger than the frame
    assert np.array_equal(postprocess(big, original, upscale="nearest"),
                          postprocess(big, original))


@pytest.mark.parametrize("w,h,size", [(1280, 720, (384, 216)), (1920, 1080, (384, 216)),
                                      (1281, 719, (383, 215)), (640, 480, (384, 288))])
def test_shrink_matches_an_area_average(w, h, size):
    """The two-step shrink (bilinear to twice the size, then halved) stays within 42 dB of
    OpenCV's one-step area average on a picture with edges, gradients and fine grain, at the
    exact size; a plain bilinear shrink misses by 27-40 dB here."""
    rng = np.random.default_rng(w)
    frame = np.dstack([np.tile(np.linspace(0, 255, w, dtype=np.float32), (h, 1))] * 3)
    for _ in range(40):
        cv2.circle(frame, (int(rng.integers(w)), int(rng.integers(h))), int(rng.integers(5, h // 4)),
                   [int(c) for c in rng.integers(0, 256, 3)], -1)
    grain = rng.normal(0, 40, frame.shape).astype(np.float32)
    frame = np.clip(cv2.GaussianBlur(frame + grain, (0, 0), 0.8), 0, 255).astype(np.uint8)
    out = shrink(frame, size)
    assert out.shape == (size[1], size[0], 3)
    assert cv2.PSNR(out, cv2.resize(frame, size, interpolation=cv2.INTER_AREA)) > 42
