"""Page-locked host buffers, device buffers, streams and events: the only pycuda importer.

pycuda is imported lazily (inside `_driver()`), so importing this module costs nothing and
works on machines without pycuda or without the CUDA driver; every class here needs both.
Callers check livestyle.gpu.cuda_device_count() before constructing anything. pycuda has no
wheels: pip compiles it against the CUDA toolkit's headers, so it installs only where the
toolkit is (PYCUDA_FIX says how).

Memory layout: every buffer is flat uint8, sized once for the largest frame the engine takes
(the optimization profile's max), and a frame uses its first H*W*3 bytes as a C-contiguous
HxWx3 BGR image. Nothing is reallocated when the frame size changes.

Contexts: everything is created in the device's *primary* context, the one the CUDA runtime
(and so TensorRT) uses, so pycuda's pointers and streams are valid in TensorRT calls. The
process retains it once per device (`primary_context`, on first use, from whichever thread
gets there first) and lets go of it at exit. It is current only inside
`CudaContext.active()`, which pushes and pops it on the calling thread, so any thread may
drive a backend as long as it wraps its calls in that block (the TensorRT backend does, per
call). Whatever is created in such a block (engines, execution contexts, buffers, streams)
must be released in one too: pycuda frees memory only in a context that is current on the
freeing thread, and silently leaks it otherwise.
"""

from __future__ import annotations

import atexit
import math
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import numpy as np

from livestyle.backends.base import BackendUnavailable

INSTALL_HINT = ("on a machine with an NVIDIA driver: pip install -e .[gpu] --extra-index-url "
                "https://pypi.nvidia.com (installs tensorrt, TensorRT 11 for CUDA 13, which "
                "needs driver 580 or later, and pycuda)")
PYCUDA_FIX = ("pycuda has no wheels: pip compiles it against the CUDA toolkit's headers "
              "(cuda.h). Install the CUDA toolkit (https://developer.nvidia.com/cuda-downloads "
              "or your distribution's cuda-toolkit package), put its nvcc on PATH or set "
              "CUDA_ROOT (for example export CUDA_ROOT=/usr/local/cuda), then: pip install "
              "pycuda")


# cuda.h's CU_STREAM_NON_BLOCKING: pycuda's Stream(flags) passes it to cuStreamCreate as is,
# and has no enum for it
CU_STREAM_NON_BLOCKING = 0x1


def _driver():
    """pycuda.driver, initialized; BackendUnavailable (with the fix) if it cannot load."""
    try:
        import pycuda.driver as cuda
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "pycuda":
            raise BackendUnavailable(f"pycuda cannot be imported ({e}); {PYCUDA_FIX}") from None
        raise BackendUnavailable(f"pycuda is not installed. {PYCUDA_FIX}") from None
    except ImportError as e:  # installed, but libcuda.so.1 is missing or not the one it needs
        raise BackendUnavailable(
            f"pycuda cannot be imported ({e}): it needs the NVIDIA driver's libcuda; with the "
            "driver installed, rebuild it here: pip install --force-reinstall --no-cache-dir "
            f"pycuda. {PYCUDA_FIX}") from None
    try:
        cuda.init()  # idempotent; required before any other driver call
    except Exception as e:  # noqa: BLE001 - pycuda.driver.Error and friends: no usable driver
        raise BackendUnavailable(f"the CUDA driver does not start through pycuda ({e}); check "
                                 "`nvidia-smi`") from None
    return cuda


def require() -> None:
    """Raise BackendUnavailable unless pycuda imports and the driver initializes."""
    _driver()


def device_identity(ordinal: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability "major.minor"): what a TensorRT plan is tied to."""
    cuda = _driver()
    dev = cuda.Device(ordinal)
    major, minor = dev.compute_capability()
    return dev.name(), f"{major}.{minor}"


# ------------------------------------------------------------------ the primary context

_primary: dict[int, object] = {}  # device ordinal -> pycuda context, retained once
_primary_lock = threading.Lock()


def primary_context(ordinal: int = 0):
    """The process-wide retained primary context of device `ordinal` (a pycuda Context).

    Retained on the first call, from any thread, and kept until the process exits: pycuda
    ignores detach() on another thread than the retaining one, so a per-backend retain made
    on a loader thread and dropped on the main thread would never be released.
    """
    with _primary_lock:
        ctx = _primary.get(ordinal)
        if ctx is None:
            ctx = _driver().Device(ordinal).retain_primary_context()  # not made current
            if not _primary:  # the first one held: released at exit with any others
                atexit.register(release_primary_contexts)
            _primary[ordinal] = ctx
        return ctx


def release_primary_contexts() -> None:
    """Release every retained primary context (at exit; safe to call more than once).

    Each is pushed first, so that pycuda's detach() releases it (cuDevicePrimaryCtxRelease)
    whichever thread retained it; detach() also takes it off pycuda's context stack, which
    must be empty when pycuda unloads. Objects still alive after this (a backend never closed)
    are not freed by pycuda any more, the driver reclaims them when the process ends.
    Errors are not raised: at exit there is no one left to handle them.
    """
    with _primary_lock:
        contexts = list(_primary.values())
        _primary.clear()
    for ctx in contexts:
        try:
            ctx.push()
        except Exception:  # noqa: BLE001 - see the docstring; nothing was pushed
            continue
        try:
            ctx.detach()  # pops it off the stack when it succeeds
        except Exception:  # noqa: BLE001 - see the docstring
            # still on this thread's stack: pycuda aborts the process at exit ("context
            # stack was not empty") unless it comes off
            with suppress(Exception):
                _driver().Context.pop()


class CudaContext:
    """A handle on device `ordinal`'s primary context; `active()` makes it current.

    Handles are cheap and all share the process-wide context (`primary_context`); `close()`
    only retires the handle.
    """

    def __init__(self, ordinal: int = 0):
        self._cuda = _driver()
        self._ctx = primary_context(ordinal)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Current on this thread for the block (push/pop: nests, works on any thread, and
        costs about a microsecond).

        When an exception leaves the block, the local variables of the finished calls it
        went through are cleared before the context is popped: they may hold an engine or a
        buffer, which must be freed while the context is current, not whenever the
        traceback happens to be dropped. The cost: such a traceback shows no local values.
        """
        if self._ctx is None:
            raise RuntimeError("this CUDA context handle is closed")
        self._ctx.push()
        try:
            yield
        except BaseException as e:
            _clear_frames(e)
            raise
        finally:
            self._cuda.Context.pop()

    def close(self) -> None:
        """Retire this handle (idempotent). Free what was made in the context first."""
        self._ctx = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _clear_frames(error: BaseException) -> None:
    """Clear the locals of the finished frames in `error`'s traceback and in those of the
    exceptions it was raised from or during (__cause__, __context__): a chained exception
    keeps its own traceback alive, with the frames that raised it."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__


class PinnedBuffer:
    """Page-locked host memory (required for truly asynchronous copies), flat uint8."""

    def __init__(self, nbytes: int):
        self._array = _driver().pagelocked_empty(nbytes, np.uint8)
        self.nbytes = nbytes

    def view(self, shape: tuple[int, ...]) -> np.ndarray:
        """The first prod(shape) bytes as a C-contiguous array of `shape` (no copy)."""
        n = math.prod(shape)
        if self._array is None:
            raise RuntimeError("buffer already freed")
        if n > self.nbytes:
            raise ValueError(f"{shape} needs {n} bytes; buffer holds {self.nbytes}")
        return self._array[:n].reshape(shape)

    def free(self) -> None:
        """Release now (idempotent). Views handed out earlier must not be used afterwards."""
        if self._array is not None:
            array, self._array = self._array, None
            array.base.free()  # base is pycuda's PagelockedHostAllocation

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.free()


class DeviceBuffer:
    """Linear device memory; `ptr` is the address TensorRT's set_tensor_address takes."""

    def __init__(self, nbytes: int):
        self._alloc = _driver().mem_alloc(nbytes)
        self.nbytes = nbytes
        self.ptr = int(self._alloc)

    def free(self) -> None:
        if self._alloc is not None:
            alloc, self._alloc = self._alloc, None
            self.ptr = 0
            alloc.free()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.free()


class Slot:
    """One frame's worth of resources: host in/out, device in/out, a stream and an event."""

    def __init__(self, nbytes: int):
        cuda = _driver()
        self.host_in = self.host_out = self.dev_in = self.dev_out = None
        self.stream = self.event = None
        self.shape: tuple[int, ...] | None = None  # the frame now in this slot
        try:
            self.host_in = PinnedBuffer(nbytes)
            self.host_out = PinnedBuffer(nbytes)
            self.dev_in = DeviceBuffer(nbytes)
            self.dev_out = DeviceBuffer(nbytes)
            # NON_BLOCKING: a plain cuda.Stream() is a blocking stream, which waits for (and
            # is waited for by) the legacy default stream, so any library that touches the
            # default stream would serialize both slots behind it
            self.stream = cuda.Stream(flags=CU_STREAM_NON_BLOCKING)
            # BLOCKING_SYNC: the waiting thread sleeps instead of spinning a core, which the
            # capture and display threads need; DISABLE_TIMING makes record/sync cheaper.
            self.event = cuda.Event(cuda.event_flags.BLOCKING_SYNC
                                    | cuda.event_flags.DISABLE_TIMING)
        except BaseException:
            self.free()  # what was made so far (out of memory half-way, say)
            raise

    def free(self) -> None:
        """Wait for the stream, then release everything (idempotent)."""
        try:
            if self.stream is not None:
                stream, self.stream = self.stream, None
                stream.synchronize()  # never free memory an async copy may still touch
        finally:
            self.event = None
            for buf in (self.host_in, self.host_out, self.dev_in, self.dev_out):
                if buf is not None:
                    buf.free()


# compute(slot, stream_handle, input_ptr, output_ptr, frame_shape): enqueue the network
ComputeFn = Callable[[int, int, int, int, tuple[int, ...]], None]


class CudaSlots:
    """The real `slots.SlotDevice`: n slots of uint8 buffers sized for `max_shape` frames.

    Compute is delegated to `compute` (the TensorRT runner), which must only *enqueue* work on
    the stream it is given. Call every method with the CUDA context current.
    """

    def __init__(self, max_shape: tuple[int, int, int], compute: ComputeFn, n_slots: int = 2):
        self._cuda = _driver()
        self._compute = compute
        self.max_shape = tuple(max_shape)
        nbytes = math.prod(self.max_shape)
        self.slots: list[Slot] = []
        try:
            for _ in range(n_slots):
                self.slots.append(Slot(nbytes))
        except BaseException:
            self.close()
            raise

    def stream_handle(self, slot: int) -> int:
        return self.slots[slot].stream.handle

    def upload(self, slot: int, frame: np.ndarray) -> None:
        s = self.slots[slot]
        host = s.host_in.view(frame.shape)
        np.copyto(host, frame)  # the only CPU copy on the way in: pageable -> pinned
        self._cuda.memcpy_htod_async(s.dev_in.ptr, host, s.stream)
        s.shape = tuple(frame.shape)

    def compute(self, slot: int) -> None:
        s = self.slots[slot]
        self._compute(slot, s.stream.handle, s.dev_in.ptr, s.dev_out.ptr, s.shape)

    def download(self, slot: int) -> None:
        s = self.slots[slot]
        self._cuda.memcpy_dtoh_async(s.host_out.view(s.shape), s.dev_out.ptr, s.stream)
        s.event.record(s.stream)

    def wait(self, slot: int) -> np.ndarray:
        s = self.slots[slot]
        s.event.synchronize()
        return s.host_out.view(s.shape)

    def sync(self, slot: int) -> None:
        self.slots[slot].stream.synchronize()

    def close(self) -> None:
        """Synchronize and free every slot (idempotent)."""
        slots, self.slots = self.slots, []
        self._compute = None  # the runner's bound method: no reference cycle outlives close
        for s in slots:
            s.free()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
