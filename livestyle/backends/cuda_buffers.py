"""Page-locked host buffers, device buffers, streams and events: the only pycuda importer.

pycuda is imported lazily (inside `_driver()`), so importing this module costs nothing and
works on machines without pycuda or without the CUDA driver; every class here needs both.
Callers check livestyle.gpu.cuda_device_count() before constructing anything.

Memory layout: every buffer is flat uint8, sized once for the largest frame the engine takes
(the optimization profile's max), and a frame uses its first H*W*3 bytes as a C-contiguous
HxWx3 BGR image. Nothing is reallocated when the frame size changes.

Contexts: everything is created in the device's *primary* context, the one the CUDA runtime
(and so TensorRT) uses, so pycuda's pointers and streams are valid in TensorRT calls. The
context is made current only inside `CudaContext.active()`, so any thread may drive a
backend as long as it wraps its calls in that block (the TensorRT backend does, per call).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from livestyle.backends.base import BackendUnavailable

INSTALL_HINT = ("on a machine with an NVIDIA driver: pip install -e .[gpu] "
                "(installs tensorrt and pycuda)")


def _driver():
    """pycuda.driver, initialized; BackendUnavailable (with what to install) if it cannot load."""
    try:
        import pycuda.driver as cuda
    except ImportError as e:  # not installed, or libcuda.so.1 missing (no NVIDIA driver)
        raise BackendUnavailable(f"pycuda cannot be imported ({e}); {INSTALL_HINT}") from None
    cuda.init()  # idempotent; required before any other driver call
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


class CudaContext:
    """A retained reference to one device's primary context; `active()` makes it current."""

    def __init__(self, ordinal: int = 0):
        self._cuda = _driver()
        self.device = self._cuda.Device(ordinal)
        self._ctx = self.device.retain_primary_context()  # not made current by retaining

    @contextmanager
    def active(self) -> Iterator[None]:
        """Current on this thread for the block (push/pop: nests, and costs ~1 us)."""
        if self._ctx is None:
            raise RuntimeError("CUDA context already released")
        self._ctx.push()
        try:
            yield
        finally:
            self._cuda.Context.pop()

    def close(self) -> None:
        """Drop our reference. Free everything made in the context first. Idempotent."""
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            ctx.detach()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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
        self.host_in = PinnedBuffer(nbytes)
        self.host_out = PinnedBuffer(nbytes)
        self.dev_in = DeviceBuffer(nbytes)
        self.dev_out = DeviceBuffer(nbytes)
        self.stream = cuda.Stream()
        # BLOCKING_SYNC: the waiting thread sleeps instead of spinning a core, which the
        # capture and display threads need; DISABLE_TIMING makes record/sync cheaper.
        self.event = cuda.Event(cuda.event_flags.BLOCKING_SYNC | cuda.event_flags.DISABLE_TIMING)
        self.shape: tuple[int, ...] | None = None  # the frame now in this slot

    def free(self) -> None:
        """Wait for the stream, then release everything (idempotent)."""
        try:
            if self.stream is not None:
                stream, self.stream, self.event = self.stream, None, None
                stream.synchronize()  # never free memory an async copy may still touch
        finally:
            for buf in (self.host_in, self.host_out, self.dev_in, self.dev_out):
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
        for s in slots:
            s.free()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
