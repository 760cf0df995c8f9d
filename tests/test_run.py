"""End to end through the real CLI and pipeline: video files, the virtual camera, errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import pyvirtualcam
from pyvirtualcam.camera import register_backend

from livestyle.config import RunConfig, SourceConfig
from livestyle.pipeline import run
from livestyle.styles import resolve
from livestyle.switching import StyleSwitcher
from tests.conftest import CLIP, need, read_all


def livestyle(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "livestyle", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def file_to_file(style, out, *more) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`livestyle run` from the shared clip into `out`: (source frames, written frames)."""
    clip = need(CLIP)
    r = livestyle("run", "--source", str(clip), "--style", str(style), "--output", str(out),
                  "--no-preview", *more)
    assert r.returncode == 0, r.stderr
    return read_all(clip), read_all(out)


def test_file_to_file_keeps_every_frame_and_stylizes(tmp_path, styles_dir):
    src, got = file_to_file(styles_dir / "rand-a.onnx", tmp_path / "styled.mp4")
    assert len(got) == len(src) == 62
    assert got[0].shape == src[0].shape == (270, 480, 3)
    change = np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(src, got)])
    assert change > 20, f"output barely differs from the input (mean change {change:.1f})"


def test_output_frames_stay_in_order(tmp_path, styles_dir):
    """Identity style: output frame i is source frame i (up to the codec), not a neighbour.
    Without steadying, which on this near-still clip keeps a little of the frames before."""
    src, got = file_to_file(styles_dir / "identity.onnx", tmp_path / "same.mp4", "--steady", "0")
    assert len(got) == len(src)
    for i in (5, 30, 55):
        same = np.abs(got[i].astype(int) - src[i].astype(int)).mean()
        other = np.abs(got[i].astype(int) - src[i - 4].astype(int)).mean()
        assert same < 4 and same < other, (i, same, other)


class RecordingCamera:
    """A pyvirtualcam backend (its own extension point) that keeps what it is sent."""

    sent: list[np.ndarray] = []
    opened: list[dict] = []
    closed = 0

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.shape = (height, width, 3)
        RecordingCamera.opened.append({"size": (width, height), "fourcc": fourcc})

    def send(self, frame):
        RecordingCamera.sent.append(frame.reshape(self.shape).copy())

    def device(self):
        return "recording"

    def close(self):
        RecordingCamera.closed += 1


register_backend("livestyle-test", RecordingCamera)


def test_virtual_camera_gets_every_frame_in_bgr(styles_dir):
    clip = need(CLIP)
    RecordingCamera.sent.clear(), RecordingCamera.opened.clear()
    RecordingCamera.closed = 0
    cfg = RunConfig(styles=(str(styles_dir / "identity.onnx"),),
                    source=SourceConfig(str(clip), realtime=False), preview=False, vcam=True,
                    vcam_backend="livestyle-test", steady=0.0)  # frames exactly as sent
    stats = run(cfg, log=lambda m: None)
    src = read_all(clip)
    assert stats.frames == len(src) == len(RecordingCamera.sent)
    assert RecordingCamera.opened == [{"size": (480, 270), "fourcc": pyvirtualcam.camera.encode_fourcc(
        pyvirtualcam.PixelFormat.BGR.value)}]
    assert RecordingCamera.closed == 1
    # identity style: what reaches the camera is the source frame itself, channels in order
    for a, b in zip(src[::10], RecordingCamera.sent[::10]):
        np.testing.assert_array_equal(a, b)


def test_virtual_camera_released_when_the_run_fails(styles_dir, monkeypatch):
    clip = need(CLIP)
    RecordingCamera.closed = 0
    cfg = RunConfig(styles=(str(styles_dir / "rand-a.onnx"),),
                    source=SourceConfig(str(clip), realtime=False), preview=False, vcam=True,
                    vcam_backend="livestyle-test")

    def boom(*a, **k):
        raise KeyboardInterrupt  # as Ctrl-C would, mid-stream

    monkeypatch.setattr(RecordingCamera, "send", boom)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, log=lambda m: None)
    assert RecordingCamera.closed == 1


def test_style_switch_loads_in_the_background(styles_dir):
    styles = [resolve(str(styles_dir / n)) for n in ("rand-a.onnx", "rand-b.onnx")]
    switcher = StyleSwitcher(styles, "onnxruntime")
    try:
        frame = np.zeros((16, 16, 3), np.uint8)
        switcher.request(1)
        assert switcher.index == 0  # still the old style while the new one loads
        assert len(switcher.infer(frame, frame)) == 1
        switcher._loading[1].join(timeout=30)
        assert len(switcher.infer(frame, frame)) == 1  # the switch happens here
        assert switcher.index == 1 and switcher.style.name == "rand-b"
    finally:
        switcher.close()


@pytest.mark.parametrize("args,message", [
    (["--style", "nope"], "unknown style"),
    (["--style", "identity", "--source", "7", "--no-preview", "--max-frames", "1"],
     "no camera at index 7"),
    (["--style", "identity", "--source", "missing.mp4"], "not a camera index"),
    (["--style", "identity", "--scale", "9"], "--scale"),
    (["--style", "identity", "--size", "0x480", "--no-preview", "--output", "o.mp4"], "impossible size"),
    (["--style", "identity", "--output", "/nonexistent/dir/o.mp4"], "not writable"),
    (["--style", "identity", "--vcam", "--no-preview", "--source", str(CLIP)], "v4l2loopback"),
])
def test_bad_input_gives_a_clear_error_and_no_traceback(args, message, styles_dir):
    if str(CLIP) in args:
        need(CLIP)
    r = livestyle("run", *args, env={"LIVESTYLE_STYLES": str(styles_dir), "DISPLAY": ""})
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_unknown_style_suggests_near_names(styles_dir):
    r = livestyle("run", "--style", "rnd-a", env={"LIVESTYLE_STYLES": str(styles_dir)})
    assert r.returncode == 2 and "Did you mean rand-a" in r.stderr, r.stderr


def test_styles_command_lists_installed_styles(styles_dir):
    r = livestyle("styles", env={"LIVESTYLE_STYLES": str(styles_dir)})
    assert r.returncode == 0
    assert "rand-a" in r.stdout and "identity" in r.stdout and "no change" in r.stdout


def test_stroke_scale_runs_the_generator_smaller_and_keeps_the_frame_size(tmp_path, styles_dir):
    """--stroke 2: the generator runs at half the processing size; output at the frame's size."""
    clip = need(CLIP)
    stats = run(RunConfig(styles=(str(styles_dir / "rand-a.onnx"),),
                          source=SourceConfig(str(clip)), preview=False, stroke=2.0,
                          output=str(tmp_path / "big-strokes.mp4"), max_frames=5))
    assert stats.processing_size == (240, 135)  # the clip is 480x270, auto scale is 1 here
    assert read_all(tmp_path / "big-strokes.mp4")[0].shape == (270, 480, 3)


def test_a_teacher_style_runs_at_its_native_side_and_the_frame_keeps_its_size(tmp_path):
    """A teacher's student trained at a 320-px long side: auto scale runs the 480x270 clip at
    320x180 (the look it learned) and scales the result back; an explicit --scale wins."""
    from tests.conftest import random_generator
    from train.export import export_onnx

    clip = need(CLIP)
    model = export_onnx(random_generator(seed=3), tmp_path / "toon.onnx", style="toon",
                        training={"teacher": "cartoon", "long_side": 320})
    stats = run(RunConfig(styles=(str(model),), source=SourceConfig(str(clip)), preview=False,
                          output=str(tmp_path / "native.mp4"), max_frames=3))
    assert stats.processing_size == (320, 180)
    assert read_all(tmp_path / "native.mp4")[0].shape == (270, 480, 3)
    stats = run(RunConfig(styles=(str(model),), source=SourceConfig(str(clip)), preview=False,
                          output=str(tmp_path / "full.mp4"), max_frames=3, scale=1.0))
    assert stats.processing_size == (480, 270)


def test_stroke_keys_step_through_the_scales():
    from livestyle.keys import STROKES, Controls, apply_action

    controls = Controls()
    apply_action("bigger", controls, switcher=None)
    assert controls.stroke == 1.25
    for _ in range(20):
        apply_action("bigger", controls, switcher=None)
    assert controls.stroke == STROKES[-1]
    for _ in range(20):
        apply_action("finer", controls, switcher=None)
    assert controls.stroke == STROKES[0]


@pytest.mark.parametrize("upscale", ["nearest", "linear"])
def test_the_pipeline_enlarges_a_style_the_way_the_style_says(upscale, tmp_path):
    """A student with a 32-px native side runs a 64x48 frame at 32x24; what reaches the sinks
    is ONNX Runtime's 32x24 result enlarged the style's way, exactly."""
    import cv2
    import onnxruntime as ort

    from livestyle.frames import UPSCALE_FLAGS, preprocess
    from livestyle.keys import Controls
    from livestyle.pipeline import run_loop
    from tests.conftest import ListSource, RecordingSink, random_generator
    from train.export import export_onnx

    model = export_onnx(random_generator(seed=4), tmp_path / "toon.onnx", style="toon",
                        training={"teacher": "cartoon", "long_side": 32}, upscale=upscale)
    frame = np.random.default_rng(1).integers(0, 256, (48, 64, 3), np.uint8)
    sink = RecordingSink()
    switcher = StyleSwitcher([resolve(str(model))], "onnxruntime", log=lambda m: None)
    try:
        stats = run_loop(ListSource([frame]), switcher, [sink], None, Controls(),
                         log=lambda m: None)
    finally:
        switcher.close()
    assert stats.processing_size == (32, 24)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    small = session.run(None, {"frame": preprocess(frame, (32, 24))[None]})[0][0]
    want = cv2.resize(small, (64, 48), interpolation=UPSCALE_FLAGS[upscale])
    other = cv2.resize(small, (64, 48), interpolation=UPSCALE_FLAGS[
        "linear" if upscale == "nearest" else "nearest"])
    assert np.array_equal(sink.frames[0], want) and not np.array_equal(want, other)
    # --upscale overrides the style's way
    switcher = StyleSwitcher([resolve(str(model))], "onnxruntime", log=lambda m: None)
    try:
        run_loop(ListSource([frame]), switcher, [sink], None, Controls(), log=lambda m: None,
                 upscale="linear" if upscale == "nearest" else "nearest")
    finally:
        switcher.close()
    assert np.array_equal(sink.frames[1], other)


def test_the_log_says_why_a_large_photo_runs_smaller(styles_dir, tmp_path):
    import cv2

    photo = tmp_path / "big.png"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 255, (1200, 1600, 3), np.uint8))
    r = livestyle("run", "--style", str(styles_dir / "identity.onnx"), "--source", str(photo),
                  "--output", str(tmp_path / "out.png"), "--backend", "onnxruntime",
                  env={"LIVESTYLE_STYLES": str(styles_dir), "DISPLAY": ""})
    assert r.returncode == 0, r.stderr
    assert ("processing 554x416 for 1600x1200 frames (on a CPU a frame larger than 640x480 runs "
            "at 640x360 worth of pixels; enlarged to the frame after)") in r.stderr, r.stderr


@pytest.mark.parametrize("w, h, scale, stroke, native, want", [
    (640, 480, None, 1.0, 384, "the style's 384-px native side, where it learned its strokes"),
    (1920, 1080, None, 1.0, None, "on a CPU a frame larger than 640x480 runs at 640x360 worth "
                                  "of pixels"),
    (1920, 1080, None, 1.0, 512, "the style's 512-px native side, where it learned its strokes"),
    (640, 480, 0.5, 1.0, None, "--scale 0.5"),
    (640, 480, None, 2.0, None, "--stroke 2"),
    (640, 480, None, 2.0, 384, "the style's 384-px native side, where it learned its strokes, "
                               "then --stroke 2"),
])
def test_scale_reason_names_what_chose_the_size(w, h, scale, stroke, native, want):
    from livestyle.pipeline import scale_reason

    assert scale_reason(w, h, scale, stroke, "openvino", native) == want
