"""The switcher/backend seam: late results paired with their own frames, --max-frames exact
with a one-frame-late backend, and styles still loading when the run ends (issue 12, item 4).

The backends here are real ones registered through the library's own registry: ONNX Runtime
with its results handed back one call late (what TensorRT's double buffering does), and ONNX
Runtime whose construction waits on an Event (a TensorRT engine build that takes minutes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from livestyle import backends, switching
from livestyle.backends.base import Backend
from livestyle.backends.onnxruntime import OnnxRuntimeBackend
from livestyle.config import RunConfig, SourceConfig
from livestyle.pipeline import Pipeline, run
from livestyle.styles import resolve
from livestyle.switching import StyleSwitcher
from tests.conftest import CLIP, REPO, need, read_all


class LateBackend(Backend):
    """ONNX Runtime, each result handed back one call late (delay 1), the last by flush()."""

    name = "late-onnxruntime"
    delay = 1

    def __init__(self, model_path, threads: int = 0):
        self._ort = OnnxRuntimeBackend(model_path, threads)
        self._held: np.ndarray | None = None

    def infer(self, frame):
        result = self._ort.infer(frame).copy()
        previous, self._held = self._held, result
        return previous

    def flush(self):
        held, self._held = self._held, None
        return [] if held is None else [held]

    def close(self):
        self._ort.close()


class BlockingBackend(OnnxRuntimeBackend):
    """ONNX Runtime whose construction, for the style file named `blocked`, first waits for
    `release`: a load that outlasts the run."""

    name = "blocking"
    blocked = "rand-b"
    release = threading.Event()
    built: list[BlockingBackend] = []

    def __init__(self, model_path, threads: int = 0):
        if Path(model_path).stem == self.blocked:
            assert self.release.wait(timeout=60), "the test never released the load"
        super().__init__(model_path, threads)
        self.closed = False
        BlockingBackend.built.append(self)
        print(f"built {Path(model_path).stem}", flush=True)

    def close(self):
        self.closed = True
        super().close()


@pytest.fixture()
def late(monkeypatch):
    monkeypatch.setitem(backends.REGISTRY, LateBackend.name, (__name__, "LateBackend"))
    return LateBackend.name


@pytest.fixture()
def blocking(monkeypatch):
    monkeypatch.setitem(backends.REGISTRY, BlockingBackend.name, (__name__, "BlockingBackend"))
    monkeypatch.setattr(switching, "LOAD_NOTE_EVERY", 0.05)
    BlockingBackend.release.clear()
    BlockingBackend.built.clear()
    yield BlockingBackend
    BlockingBackend.release.set()  # never leave a loader waiting


def styles(styles_dir, *names):
    return [resolve(str(styles_dir / f"{n}.onnx")) for n in names]


# -- late results -----------------------------------------------------------------------------

def test_max_frames_is_exact_with_a_one_frame_late_backend(late, styles_dir, tmp_path):
    """--max-frames N wrote N+1 frames: the loop counted frames delivered, so with a result
    one call late it read one frame more, and the final flush delivered it."""
    out = tmp_path / "five.mp4"
    stats = run(RunConfig(styles=(str(styles_dir / "identity.onnx"),),
                          source=SourceConfig(str(need(CLIP))), backend=late, preview=False,
                          output=str(out), max_frames=5), log=lambda m: None)
    assert stats.frames == 5 == len(read_all(out))
    for frame, src in zip(read_all(out), read_all(CLIP)):  # identity: the source, encoded
        assert np.abs(frame.astype(int) - src.astype(int)).mean() < 4


def test_late_results_meet_their_own_frames_across_a_style_switch(late, styles_dir):
    """Every frame comes out once, in order, stylized by the style that ran it: identity up
    to the switch (the old style's frame in flight included), rand-a after it."""
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(8)]
    pairs = []
    with StyleSwitcher(styles(styles_dir, "identity", "rand-a"), late,
                       log=lambda m: None) as s, \
            OnnxRuntimeBackend(styles_dir / "rand-a.onnx") as rand_a:
        for i, f in enumerate(frames):
            if i == 3:
                s.request(1)
                s._loading[1].join(timeout=30)
            pairs += [(src, styled.copy()) for src, styled in s.infer(f, f)]
            assert len(pairs) == i  # one call late: frame i comes out with frame i + 1
        pairs += s.flush()
        assert s.style.name == "rand-a"
        assert [id(src) for src, _ in pairs] == [id(f) for f in frames]
        for i, (src, styled) in enumerate(pairs):
            expected = src if i < 3 else rand_a.infer(src)
            np.testing.assert_array_equal(styled, expected, err_msg=f"frame {i}")


# -- styles still loading at the end --------------------------------------------------------

def test_close_waits_for_a_style_still_loading_and_says_why(blocking, styles_dir):
    """close() used to give up after 30 s, leaving the late backend to nobody; now it waits,
    naming the style every few seconds, and closes it."""
    logs: list[str] = []

    def log(message):
        logs.append(message)
        if "waiting for style rand-b" in message:
            blocking.release.set()  # the build ends while close() waits

    s = StyleSwitcher(styles(styles_dir, "identity", "rand-b"), blocking.name, log=log)
    s.request(1)
    s.close()
    assert any("waiting for style rand-b to finish loading" in m for m in logs), logs
    assert not s._loading[1].is_alive()
    assert len(blocking.built) == 2 and all(b.closed for b in blocking.built)


def test_a_style_that_loads_after_close_stopped_waiting_is_closed_by_its_loader(blocking,
                                                                                styles_dir):
    def log(message):
        if "waiting" in message:
            raise KeyboardInterrupt  # Ctrl-C while close() waits

    s = StyleSwitcher(styles(styles_dir, "identity", "rand-b"), blocking.name, log=log)
    s.request(1)
    with pytest.raises(KeyboardInterrupt):
        s.close()
    (first,) = blocking.built
    assert first.closed  # the interrupted close still closed what was loaded
    blocking.release.set()
    s._loading[1].join(timeout=30)
    assert len(blocking.built) == 2 and blocking.built[1].closed


def test_the_interpreter_waits_for_a_loading_style_before_it_shuts_down(styles_dir):
    """A process that ends with a style still loading: the loader finishes before the
    interpreter tears down (a daemon thread would still be inside the build at teardown)."""
    code = f"""
import threading
from livestyle import backends
from livestyle.styles import resolve
from livestyle.switching import StyleSwitcher
from tests.test_switching import BlockingBackend
backends.REGISTRY["blocking"] = ("tests.test_switching", "BlockingBackend")
s = StyleSwitcher([resolve({str(styles_dir / 'identity.onnx')!r}),
                   resolve({str(styles_dir / 'rand-b.onnx')!r})], "blocking")
s.request(1)
threading.Timer(0.5, BlockingBackend.release.set).start()
print("main ends", flush=True)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["built", "identity", "main", "ends", "built", "rand-b"], r.stdout


def test_pipeline_publishes_its_output_before_waiting_for_a_loading_style(blocking, styles_dir,
                                                                          tmp_path):
    out = tmp_path / "out.mp4"
    seen: list[bool] = []

    def log(message):
        if "waiting for style rand-b" in message:
            seen.append(out.exists())
            blocking.release.set()

    cfg = RunConfig(styles=(str(styles_dir / "identity.onnx"), str(styles_dir / "rand-b.onnx")),
                    source=SourceConfig(str(need(CLIP))), backend=blocking.name,
                    preview=False, output=str(out), max_frames=3)
    with Pipeline(cfg, log=log) as pipeline:
        stats = pipeline.run()
        pipeline.switcher.request(1)  # n pressed on the last frame
    assert seen == [True] and stats.frames == 3 == len(read_all(out))
    assert pipeline.written() == [f"{out}: {pipeline.output.encoder}, 3 frames"]
    assert len(blocking.built) == 2 and all(b.closed for b in blocking.built)


# -- memory: at most the current style and the next one are held ----------------------------

class CountingBackend(OnnxRuntimeBackend):
    """ONNX Runtime that counts the backends open at once (each holds an engine's memory)."""

    name = "counting"
    open_now: list[str] = []
    most = 0

    def __init__(self, model_path, threads: int = 0):
        super().__init__(model_path, threads)
        self.stem = Path(model_path).stem
        CountingBackend.open_now.append(self.stem)
        CountingBackend.most = max(CountingBackend.most, len(CountingBackend.open_now))

    def close(self):
        CountingBackend.open_now.remove(self.stem)
        super().close()


def test_switching_keeps_only_the_current_style_and_the_next(monkeypatch, styles_dir):
    """Every style visited stayed loaded (on a GPU: an engine and two contexts' activation
    memory each); now a style switched away from, or passed over while loading, is closed."""
    monkeypatch.setitem(backends.REGISTRY, CountingBackend.name, (__name__, "CountingBackend"))
    CountingBackend.open_now, CountingBackend.most = [], 0
    frame = np.zeros((16, 24, 3), np.uint8)

    def switch_to(s, i):
        s.request(i)
        s._loading[i].join(timeout=30)
        s.infer(frame, frame)
        assert s.index == i

    with StyleSwitcher(styles(styles_dir, "identity", "rand-a", "rand-b"), "counting",
                       log=lambda m: None) as s:
        for i in (1, 2, 0, 1):
            switch_to(s, i)
            assert s.loaded == [i] and CountingBackend.open_now == [s.style.name]
        s.request(2)  # asked for, loaded, then passed over for 0 before the switch
        s._loading[2].join(timeout=30)
        assert s.loaded == [1, 2]
        s.request(0)
        assert 2 not in s.loaded  # let go at once (0's own load may already have finished)
        s._loading[0].join(timeout=30)
        assert s.loaded == [0, 1]
        s.request(2)  # and 0, loaded meanwhile, is let go in turn
        s._loading[2].join(timeout=30)
        assert s.loaded == [1, 2] and sorted(CountingBackend.open_now) == ["rand-a", "rand-b"]
        s.infer(frame, frame)
        assert s.index == 2 and s.loaded == [2]
    assert CountingBackend.open_now == [] and CountingBackend.most == 2


# -- a style asked for again while its passed-over backend is being closed -------------------

class SlowCloseBackend(OnnxRuntimeBackend):
    """ONNX Runtime where style `slow` first waits for `build` to be built, and its first
    close() says so (`closing`) and waits for `finish_close`: the test decides the order."""

    name = "slow-close"
    slow = "rand-a"
    build = threading.Event()
    closing = threading.Event()
    finish_close = threading.Event()

    def __init__(self, model_path, threads: int = 0):
        self.stem = Path(model_path).stem
        if self.stem == self.slow:
            assert self.build.wait(timeout=60), "the test never let the load finish"
        super().__init__(model_path, threads)

    def close(self):
        if self.stem == self.slow and not SlowCloseBackend.closing.is_set():
            SlowCloseBackend.closing.set()
            assert self.finish_close.wait(timeout=60), "the test never let the close finish"
        super().close()


def test_a_style_asked_for_again_while_its_passed_over_load_closes_is_switched_to(
        monkeypatch, styles_dir):
    """rand-a finishes loading after the user moved on to rand-b, so its loader closes it;
    while that close runs, the user asks for rand-a again. The loader, still alive, was taken
    for a load under way and none was started, then it ended storing nothing: the switch
    never came. Now the request loads it anew."""
    monkeypatch.setitem(backends.REGISTRY, SlowCloseBackend.name, (__name__, "SlowCloseBackend"))
    for e in (SlowCloseBackend.build, SlowCloseBackend.closing, SlowCloseBackend.finish_close):
        e.clear()
    frame = np.zeros((16, 24, 3), np.uint8)
    try:
        with StyleSwitcher(styles(styles_dir, "identity", "rand-a", "rand-b"), "slow-close",
                           log=lambda m: None) as s:
            s.request(1)  # rand-a: its build waits
            s.request(2)  # moved on: rand-a will be passed over
            SlowCloseBackend.build.set()
            assert SlowCloseBackend.closing.wait(timeout=30)  # its loader is closing it now
            s.request(1)  # asked for again, mid-close
            SlowCloseBackend.finish_close.set()
            s._loading[1].join(timeout=30)
            s.infer(frame, frame)
            assert s.index == 1 and s.style.name == "rand-a"
    finally:
        SlowCloseBackend.build.set()
        SlowCloseBackend.finish_close.set()
