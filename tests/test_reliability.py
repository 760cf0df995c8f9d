"""Reliability (issue 7): sources that stop, unusual frames, bad model files and arguments,
signals mid-run, outputs that never got a frame, and a smoke run of the soak benchmark.

The soak itself (minutes) is benchmarks/soak.py; the test that runs it is marked `soak`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from pyvirtualcam.camera import register_backend

from livestyle import backends, cli, pipeline
from livestyle.camera import FileSource, LiveSource
from livestyle.config import RunConfig, SourceConfig
from livestyle.keys import Controls
from livestyle.pipeline import run, run_loop
from livestyle.sinks.base import SinkError
from livestyle.sinks.null import NullSink
from livestyle.sinks.vcam import VirtualCameraSink
from livestyle.sinks.video import VideoFileSink
from livestyle.styles import resolve
from livestyle.switching import StyleSwitcher
from livestyle.timers import StageTimers
from tests.conftest import CLIP, CLIP_640, REPO, ListSource, RecordingSink, need

CLIP_FRAMES = 62


def livestyle(*args, env=None, timeout=120, cwd=None):
    return subprocess.run([sys.executable, "-m", "livestyle", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "DISPLAY": "", **(env or {})})


def count_frames(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def frames_reported(stderr: str) -> int:
    """N from the run's final line, "N frames in S s (...)"."""
    m = re.search(r"^(\d+) frames in ", stderr, re.M)
    assert m, stderr
    return int(m.group(1))


# -- test doubles -----------------------------------------------------------------------------

class DeadCapture:
    """A device that opens but never delivers a frame (a camera another program holds)."""

    def isOpened(self):  # noqa: N802 - cv2.VideoCapture's name
        return True

    def read(self):
        time.sleep(0.01)
        return False, None

    def get(self, prop):
        return 0.0

    def release(self):
        pass


class ScriptedCamera:
    """A capture that delivers `n` frames, then fails (unplugged)."""

    def __init__(self, n: int, shape=(48, 64, 3)):
        self.n, self.shape, self.i = n, shape, 0

    def isOpened(self):  # noqa: N802
        return True

    def read(self):
        time.sleep(0.005)
        if self.i >= self.n:
            return False, None
        self.i += 1
        return True, np.full(self.shape, self.i % 256, np.uint8)

    def get(self, prop):
        return 30.0

    def release(self):
        pass


class NoCamera:
    def isOpened(self):  # noqa: N802
        return False

    def release(self):
        pass


@pytest.fixture(scope="module")
def switcher(styles_dir):
    s = StyleSwitcher([resolve(str(styles_dir / "rand-a.onnx"))], "auto", log=lambda m: None)
    yield s
    s.close()


@pytest.fixture(scope="module")
def identity(styles_dir):
    s = StyleSwitcher([resolve(str(styles_dir / "identity.onnx"))], "auto", log=lambda m: None)
    yield s
    s.close()


def quiet_loop(source, switcher, sinks, scale=1.0, **kw):
    return run_loop(source, switcher, sinks, scale, Controls(), log=lambda m: None, **kw)


# -- the source stops delivering --------------------------------------------------------------

def test_live_source_keeps_the_newest_frame_reconnects_then_gives_up(tmp_path):
    """A 'camera' (the clip, copied) whose device disappears: a slow reader sees increasing
    indices with gaps, `dropped` counts the rest, then reconnect messages, then None."""
    clip = tmp_path / "camera.mp4"
    shutil.copy(need(CLIP), clip)
    logs: list[str] = []
    t0 = time.monotonic()
    src = LiveSource(SourceConfig(str(clip)), give_up_after=1.0, log=logs.append)
    clip.unlink()  # the capture keeps its open handle to the end; reopening now fails
    seen, t_last = [], None
    while (frame := src.read()) is not None:
        seen.append(frame.index)
        t_last = time.monotonic()
        time.sleep(0.02)  # a consumer slower than the decoder
    t_none = time.monotonic()
    t = time.perf_counter()
    src.close()
    assert time.perf_counter() - t < 0.5, "close() should return promptly"

    # a live source keeps only the newest frame: even frame 0 may be replaced before the first
    # read (a loaded machine), and then it counts as dropped; the last frame is always kept
    assert seen == sorted(set(seen)) and seen[-1] == CLIP_FRAMES - 1
    assert len(seen) < CLIP_FRAMES, "a slow reader should have missed frames"
    assert src.dropped == CLIP_FRAMES - len(seen) > 0
    assert any("reconnecting" in m for m in logs), logs
    assert any("stopping" in m for m in logs), logs
    assert t_none - t0 >= 1.0  # it tried for give_up_after...
    assert t_none - t_last < 1.0 + 1.5  # ...and then let go


def test_live_source_that_dies_ends_the_run_cleanly(tmp_path, switcher):
    clip = tmp_path / "camera.mp4"
    shutil.copy(need(CLIP), clip)
    logs: list[str] = []
    sink = RecordingSink(delay=0.01)
    with LiveSource(SourceConfig(str(clip)), give_up_after=0.5, log=logs.append) as src:
        clip.unlink()
        stats = quiet_loop(src, switcher, [sink])
    assert stats.frames == len(sink.frames) > 0
    # the run counts only its own drops: frames the capture thread overwrote before the loop
    # began (a loaded machine) are the source's, not the run's
    assert stats.dropped <= src.dropped
    assert stats.frames + src.dropped == CLIP_FRAMES
    assert any("reconnecting" in m for m in logs)


def test_close_is_prompt_while_reconnecting(tmp_path):
    clip = tmp_path / "camera.mp4"
    shutil.copy(need(CLIP), clip)
    logs: list[str] = []
    src = LiveSource(SourceConfig(str(clip)), give_up_after=30.0, log=logs.append)
    clip.unlink()
    deadline = time.monotonic() + 10
    while not any("reconnecting" in m for m in logs) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any("reconnecting" in m for m in logs)
    t = time.perf_counter()
    src.close()
    assert time.perf_counter() - t < 0.5
    t = time.perf_counter()
    while src.read() is not None:  # what was captured before, then the end at once
        pass
    assert time.perf_counter() - t < 0.5


def test_a_device_that_reopens_but_never_delivers_still_gives_up():
    """Reopening 'works' every time but no frame comes: the give-up clock must keep running
    (it used to restart at every reopen, retrying forever)."""
    opened = []

    def opener(cfg):
        opened.append(time.monotonic())
        return ScriptedCamera(3) if len(opened) == 1 else DeadCapture()

    logs: list[str] = []
    t0 = time.monotonic()
    src = LiveSource(SourceConfig("0"), give_up_after=1.0, log=logs.append, opener=opener)
    while src.read() is not None:
        pass
    elapsed = time.monotonic() - t0
    src.close()
    assert 1.0 <= elapsed < 2.5, elapsed
    assert len(opened) >= 3  # it did retry
    assert sum("reconnecting" in m for m in logs) >= 2 and not any("back" in m for m in logs)


def test_reader_waits_through_a_reconnect_longer_than_five_seconds():
    """read() used to give up after a fixed 5 s, ending the run while the capture thread was
    still within its give_up_after (10 s) and about to get the camera back."""
    t0 = time.monotonic()

    def opener(cfg):
        if time.monotonic() - t0 < 0.1:
            return ScriptedCamera(2)
        return ScriptedCamera(5) if time.monotonic() - t0 > 5.3 else NoCamera()

    logs: list[str] = []
    seen = []
    with LiveSource(SourceConfig("0"), give_up_after=10.0, log=logs.append,
                    opener=opener) as src:
        while time.monotonic() - t0 < 5.3:  # the first camera, then ~5.75 s of reconnecting
            frame = src.read()
            assert frame is not None, logs  # the run must not end during the outage
            seen.append(frame.index)
    assert any("is back" in m for m in logs), logs
    assert seen == sorted(seen) and seen[-1] >= 2  # a frame from the second camera


def test_live_source_ignores_a_nonsense_frame_rate():
    class OddRate(ScriptedCamera):
        def get(self, prop):
            return float("nan")  # streams report 0, NaN or 90000

    with LiveSource(SourceConfig("0", fps=24.0), opener=lambda c: OddRate(5),
                    give_up_after=0.1, log=lambda m: None) as src:
        assert src.info.fps == 24.0


def test_file_source_ends_or_loops():
    clip = str(need(CLIP))
    with FileSource(SourceConfig(clip)) as once:
        n = 0
        while once.read() is not None:
            n += 1
    assert n == CLIP_FRAMES
    with FileSource(SourceConfig(clip, loop=True)) as looped:
        frames = [looped.read() for _ in range(CLIP_FRAMES * 2 + 10)]
    assert all(f is not None for f in frames)
    assert [f.index for f in frames] == list(range(len(frames)))
    np.testing.assert_array_equal(frames[CLIP_FRAMES].image, frames[0].image)  # from the top


def test_loop_with_max_frames_writes_more_frames_than_the_file_has(tmp_path, styles_dir):
    out = tmp_path / "looped.mp4"
    r = livestyle("run", "--source", str(need(CLIP)), "--loop", "--max-frames", "150",
                  "--style", str(styles_dir / "rand-a.onnx"), "--output", str(out),
                  "--no-preview")
    assert r.returncode == 0, r.stderr
    assert frames_reported(r.stderr) == 150 == count_frames(out)


# -- unusual frames ---------------------------------------------------------------------------

RNG = np.random.default_rng(7)
UNUSUAL = {
    "gray": RNG.integers(0, 256, (48, 64), dtype=np.uint8),
    "gray-hw1": RNG.integers(0, 256, (48, 64, 1), dtype=np.uint8),
    "bgra": RNG.integers(0, 256, (48, 64, 4), dtype=np.uint8),
    "bgr16": RNG.integers(0, 65536, (48, 64, 3), dtype=np.uint16),
    "gray16": RNG.integers(0, 65536, (48, 64), dtype=np.uint16),
    "float": RNG.random((48, 64, 3), dtype=np.float32),
    "float-nan": np.full((8, 8, 3), np.nan, np.float32),
    "1x1": RNG.integers(0, 256, (1, 1, 3), dtype=np.uint8),
    "2x3": RNG.integers(0, 256, (3, 2, 3), dtype=np.uint8),
    "odd-641x479": RNG.integers(0, 256, (479, 641, 3), dtype=np.uint8),
    "tall-1x300": RNG.integers(0, 256, (300, 1, 3), dtype=np.uint8),
    "mirrored-view": RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)[:, ::-1],
    "read-only": np.frombuffer(bytes(48 * 64 * 3), np.uint8).reshape(48, 64, 3),
}


@pytest.mark.filterwarnings("error::RuntimeWarning")  # NaN used to cast with a warning
@pytest.mark.parametrize("name", list(UNUSUAL))
def test_unusual_frames_come_out_at_their_own_size(name, switcher):
    image = UNUSUAL[name]
    sink = RecordingSink()
    stats = quiet_loop(ListSource([image] * 2), switcher, [sink, NullSink()])
    assert stats.frames == 2 and len(sink.frames) == 2
    assert all(f.shape == (*image.shape[:2], 3) and f.dtype == np.uint8 for f in sink.frames)


def test_4k_frames_at_quarter_scale(switcher):
    image = RNG.integers(0, 256, (2160, 3840, 3), dtype=np.uint8)
    sink = RecordingSink()
    stats = quiet_loop(ListSource([image]), switcher, [sink], scale=0.25)
    assert stats.processing_size == (960, 540)
    assert sink.frames[0].shape == (2160, 3840, 3)


def test_unusual_formats_keep_their_values(identity):
    """Through the identity style the conversion itself is visible: gray spreads to three
    channels, alpha is dropped, 16-bit keeps its high byte, floats scale from 0-1."""
    gray = np.full((16, 16), 77, np.uint8)
    bgra = np.zeros((16, 16, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 250, 9
    deep = np.full((16, 16, 3), 0xAB00, np.uint16)
    flt = np.full((16, 16, 3), 0.5, np.float32)
    sink = RecordingSink()
    quiet_loop(ListSource([gray, bgra, deep, flt]), identity, [sink])
    assert [f[0, 0].tolist() for f in sink.frames] == [[77] * 3, [250, 0, 0], [0xAB] * 3,
                                                       [128] * 3]


@pytest.mark.parametrize("image,why", [
    (np.zeros((16, 16, 3), np.int16), "dtype int16"),
    (np.zeros((16, 16, 3), np.float16), "dtype float16"),
    (np.zeros((16, 16, 2), np.uint8), "shape"),
    (np.zeros((1, 16, 16, 3), np.uint8), "shape"),
    (np.zeros((0, 16, 3), np.uint8), "empty"),
    (None, "empty"),
])
def test_frames_that_cannot_be_shown_raise_a_clear_value_error(image, why, switcher):
    sink = RecordingSink()
    good = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match=why):
        quiet_loop(ListSource([good, image, good]), switcher, [sink])
    assert len(sink.frames) == 1  # what came before was delivered; nothing after


def test_frame_size_changing_mid_stream(tmp_path, switcher, signalling_camera):
    """Each output matches its input; the video file and the virtual camera (one size each,
    by nature) get every frame scaled to their size, where the encoder used to drop the
    odd-sized ones silently and the camera raised."""
    sizes = [(480, 640)] * 2 + [(240, 320)] * 2 + [(479, 641), (1, 1), (2160, 3840), (480, 640)]
    images = [RNG.integers(0, 256, (*s, 3), dtype=np.uint8) for s in sizes]
    out = tmp_path / "changing.mp4"
    sink = RecordingSink()
    with VideoFileSink(out, 30.0) as video, \
            VirtualCameraSink(640, 480, 30.0, backend="livestyle-signalling") as vcam:
        stats = quiet_loop(ListSource(images), switcher, [sink, video, vcam], scale=0.5)
    assert [f.shape[:2] for f in sink.frames] == sizes
    assert stats.frames == video.frames == len(sizes) == count_frames(out)
    assert signalling_camera.sent == len(sizes) and signalling_camera.closed == 1
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 480)
    cap.release()


# -- bad model files --------------------------------------------------------------------------

def _with_metadata(model: onnx.ModelProto, **changes) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    props = {p.key: p.value for p in m.metadata_props}
    for key, value in changes.items():
        key = "livestyle." + key
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    del m.metadata_props[:]
    for key, value in props.items():
        m.metadata_props.add(key=key, value=value)
    return m


@pytest.fixture(scope="module")
def bad_models(styles_dir, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad-styles")
    good = styles_dir / "rand-a.onnx"
    data = good.read_bytes()
    (d / "truncated.onnx").write_bytes(data[: len(data) // 2])
    (d / "empty.onnx").write_bytes(b"")
    model = onnx.load(str(good))
    onnx.save(_with_metadata(model, format=None, style=None, generator=None),
              str(d / "no-metadata.onnx"))
    onnx.save(_with_metadata(model, format="99"), str(d / "format-99.onnx"))
    onnx.save(_with_metadata(model, format="one"), str(d / "format-word.onnx"))
    onnx.save(_with_metadata(model, generator="{not json"), str(d / "bad-json.onnx"))
    onnx.save(_with_metadata(model, upscale="cubic"), str(d / "bad-upscale.onnx"))
    # livestyle metadata on a graph that takes and gives float: it loads, then every frame fails
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None, None, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    foreign = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    foreign.metadata_props.extend(model.metadata_props)
    onnx.save(foreign, str(d / "float-io.onnx"))
    return d


BAD_MODELS = {
    "truncated.onnx": "truncated or not an ONNX model",
    "empty.onnx": "lacks livestyle metadata",
    "no-metadata.onnx": "lacks livestyle metadata",
    "format-99.onnx": "format 99, newer",
    "format-word.onnx": "malformed livestyle metadata",
    "bad-json.onnx": "malformed livestyle metadata",
    "bad-upscale.onnx": "livestyle.upscale is 'cubic', not one of linear, nearest",
    "float-io.onnx": "not a livestyle generator",
}


@pytest.mark.parametrize("name", list(BAD_MODELS))
def test_run_with_a_bad_model_file_exits_2_naming_it(name, bad_models, tmp_path):
    path = bad_models / name
    out = tmp_path / "out.mp4"
    r = livestyle("run", "--style", str(path), "--source", str(need(CLIP)), "--no-preview",
                  "--output", str(out))
    assert r.returncode == 2, r.stderr
    assert str(path) in r.stderr and BAD_MODELS[name] in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert not out.exists()


def test_styles_lists_bad_files_as_unreadable(bad_models, styles_dir, tmp_path):
    d = tmp_path / "styles"
    shutil.copytree(bad_models, d)
    shutil.copy(styles_dir / "rand-a.onnx", d)
    r = livestyle("styles", env={"LIVESTYLE_STYLES": str(d)})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    lines = r.stdout.splitlines()

    def line_for(stem):
        return next(line for line in lines if re.match(rf"\s*\d+\. {re.escape(stem)} ", line))

    for name in BAD_MODELS:
        assert "UNREADABLE" in line_for(Path(name).stem), r.stdout
    assert "UNREADABLE" not in line_for("rand-a"), r.stdout


# -- bad arguments ----------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--size", "abc"], "--size 'abc' is not WxH"),
    (["--size", "640"], "--size '640' is not WxH"),
    (["--blend", "3"], "--blend 3.0 is out of range"),
    (["--blend", "half"], "invalid float value"),
    (["--upscale", "cubic"], "--upscale 'cubic' is not one of style, linear, nearest"),
    (["--fps", "0"], "--fps 0.0 is out of range"),
    (["--fps", "nan"], "--fps nan is out of range"),
    (["--scale", "0"], "--scale 0.0 is out of range"),
    (["--max-frames", "-1"], "--max-frames -1 is negative"),
    (["--threads", "-2"], "--threads -2 is negative"),
    (["--no-preview"], "nothing to show"),
])
def test_bad_arguments_fail_before_any_camera_opens(args, message, styles_dir):
    """The default source is camera 0 (there is none here): each error must come first."""
    r = livestyle("run", "--style", "identity", *args,
                  env={"LIVESTYLE_STYLES": str(styles_dir)})
    assert r.returncode == 2, r.stderr
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "camera" not in r.stderr.lower(), r.stderr


# -- signals ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_mid_run_leaves_a_playable_file_with_every_frame_reported(sig, tmp_path,
                                                                         styles_dir):
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "livestyle", "run", "--source", str(need(CLIP)), "--loop",
         "--style", str(styles_dir / "rand-a.onnx"), "--output", str(out), "--no-preview"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "DISPLAY": ""},
        # each signal at its default, whatever this process inherited: under `nohup` the
        # child would keep SIGHUP ignored (cli.py respects nohup) and never end
        preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        partial = f"out.livestyle-partial-{proc.pid}.mp4"  # the output until it is whole
        while not (tmp_path / partial).exists() and proc.poll() is None and \
                time.monotonic() < deadline:
            time.sleep(0.05)  # the file appears with the first frame
        assert (tmp_path / partial).exists() and not out.exists(), "".join(lines)
        time.sleep(0.5)
        proc.send_signal(sig)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=5)
    stderr = "".join(lines)
    assert rc == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert "stopped; camera and outputs released" in stderr
    n = frames_reported(stderr)
    assert n > 0 and count_frames(out) == n, stderr


class SignallingCamera:
    """A pyvirtualcam backend that records frames and, on frame `at`, raises `signals`
    (signal.raise_signal in the main thread: as if they came from outside)."""

    at, signals = 0, ()
    sent = 0
    closed = 0

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        pass

    def send(self, frame):
        SignallingCamera.sent += 1
        if SignallingCamera.sent == self.at:
            for s in self.signals:
                signal.raise_signal(s)

    def device(self):
        return "signalling"

    def close(self):
        SignallingCamera.closed += 1


register_backend("livestyle-signalling", SignallingCamera)


@pytest.fixture()
def signalling_camera():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    # this module may also be imported as tests.test_reliability, registering its own copy
    # of the class: the camera the run opens must be the one this fixture sets up
    register_backend("livestyle-signalling", SignallingCamera)
    SignallingCamera.sent = SignallingCamera.closed = 0
    yield SignallingCamera
    for s, handler in saved.items():  # cli.main installs its own SIGTERM handler
        signal.signal(s, handler)


def _cli_run_to_vcam_and_file(styles_dir, out):
    return cli.main(["run", "--source", str(need(CLIP)), "--loop", "--style",
                     str(styles_dir / "rand-a.onnx"), "--no-preview", "--output", str(out),
                     "--vcam", "--vcam-backend", "livestyle-signalling"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_in_process_finishes_the_frame_and_releases_everything_once(
        sig, signalling_camera, styles_dir, tmp_path, capsys):
    signalling_camera.at, signalling_camera.signals = 8, (sig,)
    out = tmp_path / "out.mp4"
    before = signal.getsignal(signal.SIGINT)
    assert _cli_run_to_vcam_and_file(styles_dir, out) == 130
    err = capsys.readouterr().err
    assert signalling_camera.closed == 1
    assert frames_reported(err) == 8 == signalling_camera.sent == count_frames(out), err
    assert "Traceback" not in err and "stopped; camera and outputs released" in err
    assert signal.getsignal(signal.SIGINT) is before  # the run's handler is removed


def test_second_signal_interrupts_at_once(signalling_camera, styles_dir, tmp_path, capsys):
    signalling_camera.at, signalling_camera.signals = 5, (signal.SIGTERM, signal.SIGTERM)
    out = tmp_path / "out.mp4"
    assert _cli_run_to_vcam_and_file(styles_dir, out) == 130
    err = capsys.readouterr().err
    assert signalling_camera.closed == 1 and signalling_camera.sent == 5
    assert "Traceback" not in err and "stopped" in err
    assert count_frames(out) == 5  # the file sink got frame 5 before the camera did


def test_signal_before_the_first_frame_leaves_no_output(signalling_camera, styles_dir,
                                                        tmp_path, monkeypatch, capsys):
    real_open = pipeline.open_source

    def open_then_signal(*a, **k):  # Ctrl-C while the camera opens
        source = real_open(*a, **k)
        signal.raise_signal(signal.SIGINT)
        return source

    monkeypatch.setattr(pipeline, "open_source", open_then_signal)
    out = tmp_path / "out.mp4"
    assert _cli_run_to_vcam_and_file(styles_dir, out) == 130
    assert "Traceback" not in capsys.readouterr().err
    assert not out.exists() and signalling_camera.sent == 0


def test_keyboard_interrupt_from_a_sink_releases_the_camera_once(signalling_camera,
                                                                   styles_dir, monkeypatch):
    def boom(self, frame):
        raise KeyboardInterrupt

    monkeypatch.setattr(SignallingCamera, "send", boom)
    cfg = RunConfig(styles=(str(styles_dir / "rand-a.onnx"),),
                    source=SourceConfig(str(need(CLIP)), realtime=False), preview=False,
                    vcam=True, vcam_backend="livestyle-signalling")
    with pytest.raises(KeyboardInterrupt):
        run(cfg, log=lambda m: None)
    assert signalling_camera.closed == 1


# -- outputs that never got a frame -----------------------------------------------------------

def test_video_sink_without_frames_leaves_no_file(tmp_path):
    out = tmp_path / "never.mp4"
    VideoFileSink(out, 30.0).close()
    assert not out.exists()
    with VideoFileSink(out, 30.0) as sink, pytest.raises(SinkError, match="cannot write"):
        sink.send(np.zeros((1, 1, 3), np.uint8))  # no encoder takes 1x1
    assert not out.exists()


def test_output_interrupted_before_its_first_frame_is_removed(tmp_path, monkeypatch):
    """Ctrl-C between the writer's open and its first frame: the header-only file it leaves
    plays nowhere, so it goes."""
    import livestyle.sinks.video

    real = livestyle.sinks.video.open_encoder

    def interrupted_encoder(*a, **kw):  # whichever encoder this platform has
        encoder, note = real(*a, **kw)

        def write(frame, pts=None):
            raise KeyboardInterrupt

        encoder.write = write
        return encoder, note

    monkeypatch.setattr(livestyle.sinks.video, "open_encoder", interrupted_encoder)
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt), VideoFileSink(out, 30.0) as sink:
        sink.send(np.zeros((48, 64, 3), np.uint8))
    assert not out.exists()


def test_run_failing_before_the_first_frame_leaves_no_file(tmp_path, switcher):
    out = tmp_path / "out.mp4"
    with VideoFileSink(out, 30.0) as video, pytest.raises(ValueError):
        quiet_loop(ListSource([np.zeros((8, 8, 3), np.int64)]), switcher, [video])
    assert not out.exists()
    with VideoFileSink(out, 30.0) as video:
        quiet_loop(ListSource([]), switcher, [video])  # a source with no frames at all
    assert not out.exists()


def test_failed_run_keeps_an_existing_file_it_never_wrote(tmp_path, switcher):
    out = tmp_path / "earlier.mp4"
    out.write_bytes(b"an earlier take")
    with pytest.raises(SinkError, match="exists; pass --overwrite"):
        VideoFileSink(out, 30.0)  # not asked to replace it
    with VideoFileSink(out, 30.0, overwrite=True) as video, pytest.raises(ValueError):
        quiet_loop(ListSource([None]), switcher, [video])
    assert out.read_bytes() == b"an earlier take"


def test_run_whose_backend_fails_on_the_first_frame_leaves_no_file(tmp_path, styles_dir,
                                                                    monkeypatch):
    class Broken:
        name, delay = "broken", 0

        def infer(self, frame):
            raise RuntimeError("device lost")

        def flush(self):
            return []

        def close(self):
            pass

    monkeypatch.setattr(backends, "create", lambda *a, **k: Broken())
    out = tmp_path / "out.mp4"
    cfg = RunConfig(styles=(str(styles_dir / "rand-a.onnx"),),
                    source=SourceConfig(str(need(CLIP))), preview=False, output=str(out))
    with pytest.raises(RuntimeError, match="device lost"):
        run(cfg, log=lambda m: None)
    assert not out.exists()


# -- long runs --------------------------------------------------------------------------------

def test_stage_timers_stay_bounded_and_representative():
    """The final report keeps a fixed-size uniform sample, not every frame's time (which
    grew by five floats a frame: ~17 MB an hour at 30 fps)."""
    timers = StageTimers(keep=1000)
    for i in range(20_000):
        timers.add("inference", (i % 100) / 1e3)  # 0..99 ms, uniform
    kept = timers.all["inference"]
    assert len(kept) == 1000
    assert 40 < float(np.median(kept)) < 60 and max(kept) > 95


def test_soak_script_smoke(tmp_path, styles_dir):
    """benchmarks/soak.py end to end for a few seconds: JSON with samples and a verdict."""
    r = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "soak.py"), "--style",
         str(styles_dir / "rand-a.onnx"), "--clip", str(need(CLIP)), "--seconds", "4",
         "--interval", "1", "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr + r.stdout
    (result,) = tmp_path.glob("soak-*.json")
    data = json.loads(result.read_text())
    assert len(data["samples"]) >= 3
    assert all(s["rss_mb"] > 0 and s["fps"] > 0 for s in data["samples"])
    assert data["video"]["frames"] == data["video"]["frames_read_back"] > 0
    assert data["vcam_frames"] == data["null_frames"] == data["frames"]
    assert "rss" in data["summary"] and "fps" in data["summary"]


@pytest.mark.soak
def test_soak_one_minute_stays_flat(tmp_path, styles_dir):
    r = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "soak.py"), "--style",
         str(styles_dir / "rand-a.onnx"), "--clip", str(need(CLIP_640)), "--seconds", "60",
         "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr + r.stdout
    (result,) = tmp_path.glob("soak-*.json")
    summary = json.loads(result.read_text())["summary"]
    assert summary["rss"]["flat"], summary
