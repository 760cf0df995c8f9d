"""A recording stand-in for pycuda.driver and the few TensorRT objects the backend uses.

Injected the way the code takes them: the fake driver through cuda_buffers._driver (the one
function that returns pycuda.driver), the fake tensorrt as the `trt` argument (or what
require_tensorrt returns). Nothing goes into sys.modules.

The fakes keep the rules that matter for lifetimes, as pycuda and CUDA have them:
- a context stack per thread; push/pop on any thread; pop of an empty stack fails;
- allocations, frees, streams and TensorRT objects need the context current on the calling
  thread; a free or a destruction without it is recorded in `violations` (pycuda would
  leak it silently, TensorRT would free device memory with no context);
- Context.detach() releases the primary context only when it is current on the calling
  thread or that thread retained it, and does nothing otherwise, as pycuda's does.
"""

from __future__ import annotations

import threading
import types
import weakref

import numpy as np


class FakeContext:
    def __init__(self, driver: FakeDriver, ordinal: int):
        self.driver, self.ordinal = driver, ordinal
        self.thread = threading.get_ident()
        self.valid, self.released = True, False

    def push(self):
        if not self.valid:
            raise RuntimeError("cannot push a detached context")
        self.driver.stack().append(self)
        self.driver.log("push")

    def detach(self):
        current = self.driver.current() is self
        if current or self.thread == threading.get_ident():
            self.released = True
            self.driver.log("release")
        else:
            self.driver.log("detach ignored (another thread's context)")
        self.valid = False
        if current:
            self.driver.stack().pop()


class FakeDevice:
    def __init__(self, driver: FakeDriver, ordinal: int):
        self.driver, self.ordinal = driver, ordinal

    def retain_primary_context(self):
        self.driver.retains += 1
        self.driver.log("retain")
        ctx = FakeContext(self.driver, self.ordinal)
        self.driver.contexts.append(ctx)
        return ctx

    def name(self):
        return "Fake GPU"

    def compute_capability(self):
        return 8, 6


class _Tracked:
    """Something that must be released with the context current: recorded if it is not."""

    kind = "object"

    def __init__(self, driver: FakeDriver):
        self.driver = driver
        driver.require_current(f"create {self.kind}")
        driver.live.add(id(self))
        self._released = False

    def _release(self, how: str):
        if not self._released:
            self._released = True
            self.driver.require_current(f"{how} {self.kind}")
            self.driver.live.discard(id(self))

    def __del__(self):
        self._release("destroy")


class FakeAlloc(_Tracked):
    kind = "device memory"

    def __init__(self, driver, nbytes):
        super().__init__(driver)
        self.ptr = driver.next_ptr
        driver.next_ptr += nbytes + 256
        driver.memory[self.ptr] = np.zeros(nbytes, np.uint8)

    def __int__(self):
        return self.ptr

    def free(self):
        self._release("free")
        self.driver.memory.pop(self.ptr, None)


class FakePinned(_Tracked):
    kind = "pinned memory"

    def __init__(self, driver, nbytes):
        super().__init__(driver)
        self._buf = np.zeros(nbytes, np.uint8)
        self.__array_interface__ = self._buf.__array_interface__

    def free(self):
        self._release("free")


class FakeStream(_Tracked):
    kind = "stream"

    def __init__(self, driver):
        super().__init__(driver)
        self.handle = driver.next_ptr
        driver.next_ptr += 1

    def synchronize(self):
        self.driver.require_current("synchronize a stream")


class FakeEvent(_Tracked):
    kind = "event"

    def record(self, stream):
        self.driver.require_current("record an event")

    def synchronize(self):
        self.driver.require_current("wait for an event")


class FakeDriver:
    """pycuda.driver as cuda_buffers uses it, on numpy memory."""

    def __init__(self):
        self._local = threading.local()
        self.events: list[tuple[str, str]] = []  # (what, thread name)
        self.violations: list[str] = []
        self.live: set[int] = set()
        self.memory: dict[int, np.ndarray] = {}
        self.next_ptr = 0x1000
        self.retains = 0
        self.contexts: list[FakeContext] = []
        self.event_flags = types.SimpleNamespace(BLOCKING_SYNC=1, DISABLE_TIMING=2)
        self.Context = types.SimpleNamespace(pop=self._pop)

    def log(self, what: str) -> None:
        self.events.append((what, threading.current_thread().name))

    def stack(self) -> list:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    def current(self):
        stack = self.stack()
        return stack[-1] if stack else None

    def require_current(self, what: str) -> None:
        ctx = self.current()
        if ctx is None or not ctx.valid:
            self.violations.append(f"{what} with no context current on "
                                   f"{threading.current_thread().name}")

    def _pop(self):
        if not self.stack():
            raise RuntimeError("cannot pop non-current context")
        self.stack().pop()
        self.log("pop")

    # the pycuda.driver API that cuda_buffers calls
    def init(self):
        pass

    def Device(self, ordinal):  # noqa: N802 - pycuda's name
        return FakeDevice(self, ordinal)

    def pagelocked_empty(self, nbytes, dtype):
        assert np.dtype(dtype) == np.uint8, dtype  # all cuda_buffers asks for
        return np.asarray(FakePinned(self, nbytes))  # .base is the allocation, as in pycuda

    def mem_alloc(self, nbytes):
        return FakeAlloc(self, nbytes)

    def Stream(self):  # noqa: N802
        return FakeStream(self)

    def Event(self, flags=0):  # noqa: N802
        return FakeEvent(self)

    def memcpy_htod_async(self, ptr, host, stream):
        self.require_current("copy to the device")
        self.memory[ptr][:host.nbytes] = host.reshape(-1)

    def memcpy_dtoh_async(self, host, ptr, stream):
        self.require_current("copy from the device")
        host[...] = self.memory[ptr][:host.nbytes].reshape(host.shape)


# ------------------------------------------------------------------ tensorrt


class FakeLogger:
    WARNING = 2

    def __init__(self, severity):
        self.severity = severity


class FakeTRT:
    """The slice of the tensorrt module the runtime side uses. Engines "run" 255 - frame."""

    Logger = FakeLogger
    DataType = types.SimpleNamespace(UINT8="uint8", FLOAT="float", HALF="half")

    def __init__(self, driver: FakeDriver, version: str = "10.9.0", profile_ok: bool = True):
        self.driver, self.__version__, self.profile_ok = driver, version, profile_ok
        self.loggers: list = []  # every logger handed to a TensorRT object
        self.objects: list[weakref.ref] = []  # every TensorRT object made

    def track(self, obj):
        self.objects.append(weakref.ref(obj))
        return obj

    def alive(self) -> list[str]:
        return [type(o).__name__ for o in (r() for r in self.objects) if o is not None]

    def Runtime(self, logger):  # noqa: N802
        self.loggers.append(logger)
        return self.track(FakeRuntime(self))


class FakeRuntime(_Tracked):
    kind = "TensorRT runtime"

    def __init__(self, trt: FakeTRT):
        super().__init__(trt.driver)
        self.trt = trt

    def deserialize_cuda_engine(self, plan):
        if not bytes(plan).startswith(b"FAKEPLAN"):
            return None
        return self.trt.track(FakeEngine(self.trt))


class FakeEngine(_Tracked):
    kind = "TensorRT engine"
    num_io_tensors = 2
    num_optimization_profiles = 2

    def __init__(self, trt: FakeTRT):
        super().__init__(trt.driver)
        self.trt = trt

    def get_tensor_name(self, i):
        return ("frame", "styled")[i]

    def get_tensor_dtype(self, name):
        return "uint8"

    def create_execution_context(self):
        return self.trt.track(FakeExecutionContext(self))


class FakeExecutionContext(_Tracked):
    kind = "TensorRT execution context"

    def __init__(self, engine: FakeEngine):
        super().__init__(engine.driver)
        self.trt = engine.trt
        self.shape = None
        self.addresses: dict[str, int] = {}
        self.shapes_run: list[tuple] = []

    def set_optimization_profile_async(self, index, stream_handle):
        return self.trt.profile_ok

    def set_input_shape(self, name, shape):
        from livestyle.backends.tensorrt import PROFILE

        lo, hi = PROFILE["min"], PROFILE["max"]
        if not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
            return False  # as TensorRT answers a shape outside the profile
        self.shape = tuple(shape)
        return True

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr

    def execute_async_v3(self, stream_handle):
        self.driver.require_current("enqueue the network")
        _, h, w, c = self.shape
        n = h * w * c
        memory = self.driver.memory
        memory[self.addresses["styled"]][:n] = 255 - memory[self.addresses["frame"]][:n]
        self.shapes_run.append(self.shape)
        return True
