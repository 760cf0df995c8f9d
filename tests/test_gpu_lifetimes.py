"""CUDA context and TensorRT object lifetimes, on the CPU, against a recording fake driver.

What is checked here is our logic, not the GPU: one primary context per process whatever
the threads, push/pop on any thread, a release at exit that works whichever thread retained
it, and every engine, execution context, buffer and stream made by the TensorRT backend
released while the context is current, on whatever thread closes it, on success and failure
paths alike. tests/fake_gpu.py says which rules of pycuda and CUDA the fakes keep.
"""

from __future__ import annotations

import threading
import types

import numpy as np
import pytest

from livestyle.backends import cuda_buffers
from livestyle.backends import tensorrt as trt_backend
from tests.fake_gpu import FakeDriver, FakeTRT


@pytest.fixture
def gpu(monkeypatch) -> FakeDriver:
    """The fake driver behind cuda_buffers, and fresh process-wide state around it."""
    driver = FakeDriver()
    monkeypatch.setattr(cuda_buffers, "_driver", lambda: driver)
    monkeypatch.setattr(cuda_buffers, "_primary", {})
    driver.atexit = []
    monkeypatch.setattr(cuda_buffers, "atexit", types.SimpleNamespace(register=driver.atexit.append))
    monkeypatch.setattr(trt_backend, "_logger", None)
    return driver


def in_thread(fn, name: str):
    """Run fn on a new thread named `name`; return its result or raise its exception."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            out["error"] = e

    t = threading.Thread(target=target, name=name)
    t.start()
    t.join(60)
    assert not t.is_alive(), f"{name} hung"
    if "error" in out:
        raise out["error"]
    return out.get("value")


def depth(driver: FakeDriver) -> int:
    return len(driver.stack())


# ------------------------------------------------------------------ the primary context

def test_primary_context_is_retained_once_whatever_the_threads(gpu):
    barrier = threading.Barrier(8)
    depths = []

    def load():
        barrier.wait()  # all at once, to race for the first retain
        ctx = cuda_buffers.CudaContext(0)
        with ctx.active():
            depths.append(depth(gpu))
        depths.append(depth(gpu))
        ctx.close()

    threads = [threading.Thread(target=load, name=f"loader-{i}") for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert gpu.retains == 1 and len(gpu.contexts) == 1
    assert gpu.atexit == [cuda_buffers.release_primary_contexts]  # registered once
    assert sorted(depths) == [0] * 8 + [1] * 8
    assert not any(what == "release" for what, _ in gpu.events)  # close() keeps it retained


def test_active_pushes_and_pops_on_any_thread_and_nests(gpu):
    ctx = cuda_buffers.CudaContext(0)  # retained here, on the main thread

    def elsewhere():
        with ctx.active():
            with ctx.active():
                assert depth(gpu) == 2 and gpu.current() is gpu.contexts[0]
            assert depth(gpu) == 1
        with pytest.raises(KeyError), ctx.active():
            raise KeyError("inside")
        return depth(gpu)

    assert in_thread(elsewhere, "worker") == 0
    assert [t for what, t in gpu.events if what in ("push", "pop")] == ["worker"] * 6
    ctx.close()
    ctx.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"), ctx.active():
        pass


def test_exit_release_lets_go_of_a_context_retained_on_another_thread(gpu):
    """pycuda's detach() does nothing on a thread other than the retaining one unless the
    context is current there: the exit handler makes it current first."""
    in_thread(lambda: cuda_buffers.CudaContext(0).close(), "loader")
    (ctx,) = gpu.contexts
    assert ctx.thread != threading.get_ident() and not ctx.released
    cuda_buffers.release_primary_contexts()  # what atexit runs, here on the main thread
    assert ctx.released and depth(gpu) == 0
    assert ("release", threading.current_thread().name) in gpu.events
    cuda_buffers.release_primary_contexts()  # a second call is harmless
    assert gpu.retains == 1
    cuda_buffers.CudaContext(0).close()  # after a release, the next user retains afresh
    assert gpu.retains == 2


def test_exit_release_pops_a_context_whose_detach_fails(gpu):
    """Pushed, then detach() raises: the context must still come off this thread's stack,
    or pycuda aborts the process at exit ("context stack was not empty")."""
    cuda_buffers.CudaContext(0).close()
    (ctx,) = gpu.contexts

    def failing_detach():
        raise RuntimeError("cuDevicePrimaryCtxRelease failed")

    ctx.detach = failing_detach
    cuda_buffers.release_primary_contexts()  # raises nothing: at exit no one could handle it
    assert depth(gpu) == 0 and [w for w, _ in gpu.events[-2:]] == ["push", "pop"]


def test_naive_detach_from_another_thread_would_leak(gpu):
    """The fake keeps pycuda's rule that the exit handler works around (a guard on the fake)."""
    ctx = in_thread(lambda: cuda_buffers.primary_context(0), "loader")
    ctx.detach()
    assert not ctx.released and gpu.events[-1][0].startswith("detach ignored")


# ------------------------------------------------------------------ the TensorRT backend

def smooth(h: int, w: int, seed: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w * 200, y / h * 200, (x + y) / (w + h) * 100 + seed], -1)
    return img.astype(np.uint8)


@pytest.fixture
def fake_trt(gpu, monkeypatch):
    """A fake tensorrt that require_tensorrt returns, and builds that skip the builder."""
    trt = FakeTRT(gpu)
    builds = []

    def build(trt_, model_path, model_bytes, fp16, check_image, log):
        builds.append(model_path)
        return b"FAKEPLAN-%d" % len(builds), {"built_precision": "fp16", "typing": "weak"}

    monkeypatch.setattr(trt_backend, "require_tensorrt", lambda: trt)
    monkeypatch.setattr(trt_backend, "_build_checked", build)
    trt.builds = builds
    return trt


def test_backend_runs_any_size_and_releases_everything_on_the_closing_thread(
        gpu, fake_trt, styles_dir, tmp_path):
    model = styles_dir / "identity.onnx"
    backend = in_thread(lambda: trt_backend.TensorRTBackend(model, cache_dir=tmp_path, log=print),
                        "loader")
    assert backend.precision == "fp16 (weakly typed)" and fake_trt.builds == [model]
    # landscape, portrait larger than the profile, tiny, landscape again
    frames = [smooth(480, 640, 0), smooth(2400, 1000, 1), smooth(10, 30, 2), smooth(480, 640, 3)]
    outs = []
    for f in frames:
        out = backend.infer(f)
        outs.append(None if out is None else out.copy())  # valid until the next infer
    results = outs[1:] + backend.flush()
    assert outs[0] is None and len(results) == len(frames)
    for f, r in zip(frames, results):
        assert r.shape == f.shape
        diff = np.abs(r.astype(int) - (255 - f.astype(int)))
        if trt_backend.fits_profile(*f.shape[:2]):
            assert diff.max() == 0  # ran at its own size: exact
        else:
            assert diff.mean() < 2.0, diff.mean()  # resized into the profile and back
    assert depth(gpu) == 0
    in_thread(backend.close, "closer")
    backend.close()  # idempotent
    assert fake_trt.alive() == []
    assert gpu.violations == [] and gpu.live == set()
    assert gpu.retains == 1 and not any(what == "release" for what, _ in gpu.events)
    with pytest.raises(RuntimeError, match="closed"):
        backend.infer(frames[0])
    # a second load: the same primary context, the plan from the cache, the same logger
    with trt_backend.TensorRTBackend(model, cache_dir=tmp_path, log=print) as again:
        assert again.infer(frames[0]) is None
    assert gpu.retains == 1 and len(fake_trt.builds) == 1
    assert len(fake_trt.loggers) == 2 and fake_trt.loggers[0] is fake_trt.loggers[1]
    assert fake_trt.alive() == [] and gpu.violations == [] and gpu.live == set()


def test_a_failed_load_frees_what_it_made_while_the_context_is_current(
        gpu, fake_trt, styles_dir, tmp_path):
    """The runner fails half-way (TensorRT refuses the optimization profile): the engine and
    the execution context it had made are freed inside the context, though the traceback
    still holds the frames that made them."""
    fake_trt.profile_ok = False  # the fake raises, as TensorRT's binding does
    with pytest.raises(RuntimeError, match=r"refused optimization profile 0.*--force") as e:
        trt_backend.TensorRTBackend(styles_dir / "identity.onnx", cache_dir=tmp_path, log=print)
    assert e.value.__traceback__ is not None  # the traceback is alive...
    assert fake_trt.alive() == []  # ...and holds no TensorRT object
    assert gpu.violations == [] and gpu.live == set() and depth(gpu) == 0


@pytest.mark.parametrize("profile_ok", [True, False])
def test_plan_check_releases_runtime_engine_and_buffers_where_it_made_them(
        gpu, styles_dir, profile_ok):
    trt = FakeTRT(gpu, profile_ok=profile_ok)
    image = smooth(48, 64, 0)
    ctx = cuda_buffers.CudaContext(0)
    if profile_ok:
        with ctx.active():
            score = trt_backend._plan_psnr(trt, b"FAKEPLAN", styles_dir / "identity.onnx", image)
        assert 0 < score < 20  # the fake engine inverts; ONNX Runtime's identity does not
    else:
        with pytest.raises(RuntimeError, match="refused"), ctx.active():
            trt_backend._plan_psnr(trt, b"FAKEPLAN", styles_dir / "identity.onnx", image)
    assert trt.alive() == [] and gpu.violations == [] and gpu.live == set()


def test_runner_breaks_its_reference_cycle_on_close(gpu):
    """CudaSlots holds the runner's bound method: closed, nothing is left for the cyclic
    garbage collector to free later, on some other thread, without the context."""
    import gc
    import weakref

    trt = FakeTRT(gpu)
    ctx = cuda_buffers.CudaContext(0)
    with ctx.active():
        runtime = trt.Runtime(trt_backend.trt_logger(trt))
        runner = trt_backend._Runner(trt, runtime.deserialize_cuda_engine(b"FAKEPLAN"))
        ref = weakref.ref(runner)
        runner.close()
        gc.disable()
        try:
            del runner, runtime
            assert ref() is None and trt.alive() == []  # by reference counting alone
        finally:
            gc.enable()
    assert gpu.violations == [] and gpu.live == set()
