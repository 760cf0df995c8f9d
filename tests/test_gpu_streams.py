"""Streams, events and slots on a fake device that queues work, and the mistakes they catch.

tests/fake_gpu.py queues every copy and network run on its stream and runs it only when that
stream, or an event recorded on it, is waited for; it records which stream and context each
operation used and whether its host memory is page-locked, and flags races. CHECKS are the
suite's stream checks; each takes a fresh fake device. They pass on the real CUDA layer, and
MUTATIONS apply one mistake each to it (inside a monkeypatch context, undone afterwards): the
checks must then fail, so a future change cannot quietly make such a mistake pass.
"""

from __future__ import annotations

import threading
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from livestyle.backends import cuda_buffers
from livestyle.backends import tensorrt as trt_backend
from tests.fake_gpu import CU_STREAM_NON_BLOCKING, FakeDriver, FakeTRT


@contextmanager
def fake_device(monkeypatch):
    """A fresh fake driver and tensorrt behind cuda_buffers and the TensorRT backend, with
    builds that skip the builder; everything undone on leaving."""
    with monkeypatch.context() as m:
        driver = FakeDriver()
        trt = FakeTRT(driver)
        m.setattr(cuda_buffers, "_driver", lambda: driver)
        m.setattr(cuda_buffers, "_primary", {})
        m.setattr(cuda_buffers, "atexit", types.SimpleNamespace(register=lambda fn: None))
        m.setattr(trt_backend, "_logger", None)
        m.setattr(trt_backend, "require_tensorrt", lambda: trt)
        m.setattr(trt_backend, "_build_checked", lambda *a: (
            b"FAKEPLAN", {"built_precision": "fp16", "typing": "weak"}))
        yield driver, trt


def smooth(h: int, w: int, seed: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w * 200, y / h * 200, (x + y) / (w + h) * 100 + seed], -1)
    return img.astype(np.uint8)


# ------------------------------------------------------------------ the checks

def check_backend(driver: FakeDriver, trt: FakeTRT, model: Path, cache: Path) -> None:
    """Frames of several sizes through the TensorRT backend: each result is its own frame's
    (the fake network computes 255 - frame), nothing races, and every operation ran on the
    stream and execution context of the slot whose buffers it touched, in the primary
    context, with page-locked host memory, on non-blocking streams."""
    frames = [smooth(480, 640, 0), smooth(2400, 1000, 1), smooth(10, 30, 2),
              smooth(480, 640, 3), smooth(720, 1280, 4), smooth(480, 640, 5)]
    with trt_backend.TensorRTBackend(model, cache_dir=cache, log=lambda m: None) as b:
        runner = b._runner
        slots = runner._slots.slots
        streams = [s.stream.handle for s in slots]
        flags = [s.stream.flags for s in slots]
        contexts = [id(c) for c in runner._contexts]
        owner = {}  # buffer -> the slot it belongs to
        for i, s in enumerate(slots):
            owner[("device", s.dev_in.ptr)] = owner[("device", s.dev_out.ptr)] = i
            owner[("host", id(s.host_in._array.base))] = i
            owner[("host", id(s.host_out._array.base))] = i
        outs = []
        for f in frames:
            out = b.infer(f)
            outs.append(None if out is None else out.copy())  # valid until the next infer
        results = outs[1:] + b.flush()
    assert outs[0] is None and len(results) == len(frames)
    for i, (f, r) in enumerate(zip(frames, results)):
        assert r.shape == f.shape, (i, r.shape, f.shape)
        diff = np.abs(r.astype(int) - (255 - f.astype(int)))
        if trt_backend.fits_profile(*f.shape[:2]):
            assert diff.max() == 0, f"frame {i}: not its own result (stale or another's)"
        else:
            assert diff.mean() < 2.0, f"frame {i}: not its own result ({diff.mean():.1f})"
    assert driver.violations == [], driver.violations
    primary = id(driver.contexts[0])
    for op in driver.ops:
        assert op.context == primary, op
        touched = {owner[buf] for buf in op.buffers if buf in owner}
        assert len(touched) <= 1, f"{op.kind} touches two slots' buffers"
        if touched:
            assert op.stream == streams[touched.pop()], f"{op.kind} on another slot's stream"
        if op.exec_context is not None:
            assert op.stream in streams, op
            assert op.exec_context == contexts[streams.index(op.stream)], (
                f"{op.kind} of one slot's execution context on another slot's stream")
        if op.pinned is not None:
            assert op.pinned, f"{op.kind} from pageable host memory"
    kinds = [op.kind for op in driver.ops]
    assert kinds.count("profile") == len(slots) and kinds.count("network") == len(frames)
    assert all(f & CU_STREAM_NON_BLOCKING for f in flags), flags


def check_close_waits(driver: FakeDriver, trt: FakeTRT, model: Path, cache: Path) -> None:
    """CudaSlots closed with both slots' work still queued waits for it before it frees the
    buffers that work reads and writes."""
    ctx = cuda_buffers.CudaContext(0)
    with ctx.active():
        slots = cuda_buffers.CudaSlots((64, 64, 3), compute=lambda *args: None)
        for i in range(2):
            slots.upload(i, smooth(48, 64, i))
            slots.compute(i)
            slots.download(i)
        slots.close()
    assert driver.violations == [], driver.violations
    assert driver.ops and all(op.done for op in driver.ops)


CHECKS = {"backend": check_backend, "close": check_close_waits}


def run_checks(monkeypatch, model: Path, tmp: Path) -> dict[str, str]:
    """Every check on its own fresh fake device: {check: why it failed} (empty: all pass)."""
    failures = {}
    for name, check in CHECKS.items():
        with fake_device(monkeypatch) as (driver, trt):
            try:
                check(driver, trt, model, tmp / name)
            except Exception as e:  # noqa: BLE001 - a failed check, whatever it raised
                failures[name] = f"{type(e).__name__}: {e}"
    return failures


@pytest.fixture
def model(styles_dir) -> Path:
    return styles_dir / "identity.onnx"


def test_the_checks_pass_on_the_cuda_layer_as_it_is(monkeypatch, model, tmp_path):
    assert run_checks(monkeypatch, model, tmp_path) == {}


# ------------------------------------------------------------------ the mistakes

def event_before_download(m):
    def download(self, slot):
        s = self.slots[slot]
        s.event.record(s.stream)
        self._cuda.memcpy_dtoh_async(s.host_out.view(s.shape), s.dev_out.ptr, s.stream)

    m.setattr(cuda_buffers.CudaSlots, "download", download)


def wait_without_the_event(m):
    def wait(self, slot):
        s = self.slots[slot]
        return s.host_out.view(s.shape)

    m.setattr(cuda_buffers.CudaSlots, "wait", wait)


def upload_on_the_other_stream(m):
    def upload(self, slot, frame):
        s, other = self.slots[slot], self.slots[(slot + 1) % len(self.slots)]
        host = s.host_in.view(frame.shape)
        np.copyto(host, frame)
        self._cuda.memcpy_htod_async(s.dev_in.ptr, host, other.stream)
        s.shape = tuple(frame.shape)

    m.setattr(cuda_buffers.CudaSlots, "upload", upload)


def network_on_the_other_stream(m):
    def compute(self, slot):
        s, other = self.slots[slot], self.slots[(slot + 1) % len(self.slots)]
        self._compute(slot, other.stream.handle, s.dev_in.ptr, s.dev_out.ptr, s.shape)

    m.setattr(cuda_buffers.CudaSlots, "compute", compute)


def no_sync_after_the_profile(m):
    """The runner's load-time sync skipped (only that one: drain and error paths keep
    theirs)."""
    loading = threading.local()
    init, sync = trt_backend._Runner.__init__, cuda_buffers.CudaSlots.sync

    def runner_init(self, *args):
        loading.on = True
        try:
            init(self, *args)
        finally:
            loading.on = False

    def slots_sync(self, slot):
        if not getattr(loading, "on", False):
            sync(self, slot)

    m.setattr(trt_backend._Runner, "__init__", runner_init)
    m.setattr(cuda_buffers.CudaSlots, "sync", slots_sync)


def each_context_on_its_own_profile(m):
    """The old two-profile scheme (slot i's context on profile i) on the one-profile plan
    livestyle now builds. (Both contexts on profile 0, the mistake before the plan had one
    profile, is now what the runner does: TensorRT 10 lets contexts share a profile.)"""
    def set_profile(self, slot):
        self._contexts[slot].set_optimization_profile_async(
            slot, self._slots.stream_handle(slot))

    m.setattr(trt_backend._Runner, "_set_profile", set_profile)


def free_without_sync(m):
    def free(self):
        self.stream = self.event = None
        for buf in (self.host_in, self.host_out, self.dev_in, self.dev_out):
            if buf is not None:
                buf.free()

    m.setattr(cuda_buffers.Slot, "free", free)


def pageable_host_memory(m):
    def init(self, nbytes):
        self._array, self.nbytes = np.zeros(nbytes, np.uint8), nbytes

    m.setattr(cuda_buffers.PinnedBuffer, "__init__", init)
    m.setattr(cuda_buffers.PinnedBuffer, "free", lambda self: setattr(self, "_array", None))


def blocking_streams(m):
    m.setattr(cuda_buffers, "CU_STREAM_NON_BLOCKING", 0)


# mistake -> the checks that must fail with it (at least those)
MUTATIONS = {
    "event recorded before the download": (event_before_download, {"backend"}),
    "wait() does not wait on the event": (wait_without_the_event, {"backend"}),
    "upload on the other slot's stream": (upload_on_the_other_stream, {"backend"}),
    "network on the other slot's stream": (network_on_the_other_stream, {"backend"}),
    "no sync after setting the profile": (no_sync_after_the_profile, {"backend"}),
    "each context on its own profile": (each_context_on_its_own_profile, {"backend"}),
    "slot freed without syncing its stream": (free_without_sync, {"close"}),
    "pageable instead of pinned host memory": (pageable_host_memory, {"backend"}),
    "blocking streams": (blocking_streams, {"backend"}),
}


@pytest.mark.parametrize("mistake", MUTATIONS)
def test_each_mistake_fails_the_checks(monkeypatch, model, tmp_path, mistake):
    apply, must_fail = MUTATIONS[mistake]
    with monkeypatch.context() as m:
        apply(m)
        failures = run_checks(monkeypatch, model, tmp_path)
    assert must_fail <= failures.keys(), f"{mistake}: the checks still pass ({failures})"


def test_the_stream_check_reads_the_flags_not_the_module_constant(monkeypatch, model, tmp_path):
    """The non-blocking check masks with cuda.h's value, not cuda_buffers' constant: with that
    constant zeroed but the streams still created non-blocking, the check passes (masking with
    the zeroed constant failed it whatever the flags: the "blocking streams" mistake was caught
    for the wrong reason)."""
    from tests.fake_gpu import FakeStream

    with monkeypatch.context() as m:
        m.setattr(cuda_buffers, "CU_STREAM_NON_BLOCKING", 0)
        m.setattr(FakeDriver, "Stream",
                  lambda self, flags=0: FakeStream(self, flags | CU_STREAM_NON_BLOCKING))
        failures = run_checks(monkeypatch, model, tmp_path)
    assert "backend" not in failures, failures


# ------------------------------------------------------------------ the fake itself

def test_the_fake_device_runs_work_only_when_waited_for(monkeypatch):
    """What the checks rely on: queued work, stale host memory until an event covering the
    copy is waited for, races and early frees flagged, pageable copies recorded."""
    with fake_device(monkeypatch) as (driver, _):
        ctx = cuda_buffers.CudaContext(0)
        with ctx.active():
            frame = smooth(4, 5, 7)
            a = driver.Stream(flags=CU_STREAM_NON_BLOCKING)
            b = driver.Stream(flags=CU_STREAM_NON_BLOCKING)
            event = driver.Event()
            dev = driver.mem_alloc(frame.nbytes)
            host_in = driver.pagelocked_empty(frame.nbytes, np.uint8).reshape(frame.shape)
            host_out = driver.pagelocked_empty(frame.nbytes, np.uint8).reshape(frame.shape)
            host_in[...] = frame
            driver.memcpy_htod_async(int(dev), host_in, a)
            event.record(a)  # before the download: does not cover it
            driver.memcpy_dtoh_async(host_out, int(dev), a)
            event.synchronize()
            assert not host_out.any()  # stale: the download has not run
            assert [op.done for op in driver.ops] == [True, True, False]
            a.synchronize()
            np.testing.assert_array_equal(host_out, frame)
            assert driver.violations == []
            driver.memcpy_htod_async(int(dev), host_in, a)
            driver.memcpy_dtoh_async(host_out, int(dev), b)  # reads what a is still writing
            assert any(v.startswith("race:") for v in driver.violations)
            driver.violations.clear()
            dev.free()  # with work queued on it
            assert any("free device memory" in v for v in driver.violations)
            pageable = np.zeros(frame.shape, np.uint8)
            dev2 = driver.mem_alloc(frame.nbytes)
            driver.memcpy_dtoh_async(pageable, int(dev2), b)
            assert driver.ops[-1].pinned is False and driver.ops[-1].done  # staged, at once
            a.synchronize()
            b.synchronize()
            dev2.free()


def test_the_fake_profile_call_raises_as_tensorrt_does(monkeypatch):
    """The binding raises RuntimeError (it never returns False) for a profile the engine
    lacks, and the runner turns that into a load error that says what to do."""
    with fake_device(monkeypatch) as (driver, trt):
        ctx = cuda_buffers.CudaContext(0)
        with ctx.active():
            engine = trt.Runtime(None).deserialize_cuda_engine(b"FAKEPLAN")
            context = engine.create_execution_context()
            stream = driver.Stream()
            with pytest.raises(RuntimeError):
                context.set_optimization_profile_async(1, stream.handle)
            assert context.set_optimization_profile_async(0, stream.handle) is True
            stream.synchronize()
            trt.profile_ok = False
            with pytest.raises(RuntimeError, match=r"refused optimization profile 0.*--force"):
                trt_backend._Runner(trt, engine)
            del context, engine
        assert driver.violations == [] and trt.alive() == []
