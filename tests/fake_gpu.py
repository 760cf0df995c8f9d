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

And the rules that matter for streams, as a device has them:
- copies and the network are *queued* on the stream they are given and run, in order, only
  when that stream is synchronized or an event recorded on it is waited for (an event waits
  for what its stream had queued when it was recorded, nothing after);
- a copy from the device into page-locked host memory lands when it runs: reading the host
  buffer before then gives what was there before (stale data); a copy between the device
  and pageable memory is staged by the driver and done before the call returns, as CUDA
  does it (so it is never stale, only recorded as not pinned);
- every operation is recorded in `ops` (an `Op`: its stream, the context current, the
  TensorRT execution context, the buffers it reads and writes, whether its host memory is
  page-locked); one that touches a buffer with work still queued on *another* stream, or a
  free of memory that queued work still uses, is recorded in `violations`: both are races
  on a device.
"""

from __future__ import annotations

import threading
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

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


@dataclass
class Op:
    """One operation queued on a stream, as recorded (no reference to what it touched)."""

    kind: str  # htod, dtoh, network, profile, record
    stream: int  # the stream's handle
    context: int | None  # id() of the pycuda context current when it was queued
    reads: tuple = ()  # buffers: ("device", base pointer) or ("host", id of the allocation)
    writes: tuple = ()
    pinned: bool | None = None  # copies: whether the host side is page-locked
    exec_context: int | None = None  # network/profile: id() of the TensorRT context
    done: bool = False
    run: Callable[[], None] | None = field(default=None, repr=False)  # dropped once run

    @property
    def buffers(self) -> tuple:
        return self.reads + self.writes


class FakeAlloc(_Tracked):
    kind = "device memory"

    def __init__(self, driver, nbytes):
        super().__init__(driver)
        self.ptr = driver.next_ptr
        driver.next_ptr += -(-(nbytes + 256) // 256) * 256  # 256-byte aligned, as cudaMalloc
        driver.memory[self.ptr] = np.zeros(nbytes, np.uint8)

    def __int__(self):
        return self.ptr

    def free(self):
        self.driver.check_unused(("device", self.ptr), "free device memory")
        self._release("free")
        self.driver.memory.pop(self.ptr, None)


class FakePinned(_Tracked):
    kind = "pinned memory"

    def __init__(self, driver, nbytes):
        super().__init__(driver)
        self._buf = np.zeros(nbytes, np.uint8)
        self.__array_interface__ = self._buf.__array_interface__

    def free(self):
        self.driver.check_unused(("host", id(self)), "free pinned memory")
        self._release("free")


# cuda.h's CU_STREAM_NON_BLOCKING, spelled out here rather than read from cuda_buffers: a check
# that masked with the module's constant would pass whatever that constant were set to
CU_STREAM_NON_BLOCKING = 0x1


class FakeStream(_Tracked):
    kind = "stream"

    def __init__(self, driver, flags=0):
        super().__init__(driver)
        self.flags = flags
        self.handle = driver.new_handle()
        self.queue: list[Op] = []  # queued, not yet run, oldest first
        self.issued = 0  # operations ever queued here
        driver.streams[self.handle] = self

    def run(self, upto: int | None = None) -> None:
        """Run queued operations in order until `upto` of all issued here have run."""
        upto = self.issued if upto is None else upto
        while self.queue and self.issued - len(self.queue) < upto:
            op = self.queue.pop(0)
            op.run()
            op.run, op.done = None, True

    def synchronize(self):
        self.driver.require_current("synchronize a stream")
        self.run()


class FakeEvent(_Tracked):
    kind = "event"

    def __init__(self, driver, flags=0):
        super().__init__(driver)
        self.flags = flags
        self._stream, self._mark = None, 0

    def record(self, stream):
        self.driver.require_current("record an event")
        self.driver.enqueue(stream, Op("record", stream.handle, self.driver.context_id()),
                            lambda: None)
        self._stream, self._mark = weakref.ref(stream), stream.issued

    def synchronize(self):
        self.driver.require_current("wait for an event")
        stream = self._stream() if self._stream is not None else None
        if stream is not None:  # never recorded: complete at once, as CUDA has it
            stream.run(self._mark)


def _host_allocation(array: np.ndarray):
    """The FakePinned under a numpy view, or None for pageable memory."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    return base if isinstance(base, FakePinned) else None


class FakeDriver:
    """pycuda.driver as cuda_buffers uses it, on numpy memory, with queued streams."""

    def __init__(self):
        self._local = threading.local()
        self.events: list[tuple[str, str]] = []  # (what, thread name)
        self.violations: list[str] = []
        self.live: set[int] = set()
        self.memory: dict[int, np.ndarray] = {}
        self.next_ptr = 0x10000
        self._next_handle = 0x100
        self.streams: weakref.WeakValueDictionary[int, FakeStream] = (
            weakref.WeakValueDictionary())
        self.ops: list[Op] = []  # every operation queued, in order
        self.retains = 0
        self.contexts: list[FakeContext] = []
        self.event_flags = types.SimpleNamespace(BLOCKING_SYNC=1, DISABLE_TIMING=2)
        self.Context = types.SimpleNamespace(pop=self._pop)

    def log(self, what: str) -> None:
        self.events.append((what, threading.current_thread().name))

    def new_handle(self) -> int:
        self._next_handle += 1
        return self._next_handle

    def stack(self) -> list:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    def current(self):
        stack = self.stack()
        return stack[-1] if stack else None

    def context_id(self) -> int | None:
        ctx = self.current()
        return None if ctx is None else id(ctx)

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

    # ---- queued work

    def device_buffer(self, ptr: int, nbytes: int, what: str):
        """("device", base) for the allocation holding [ptr, ptr + nbytes), and its array."""
        for base, array in self.memory.items():
            if base <= ptr < base + array.size:
                if ptr + nbytes > base + array.size:
                    self.violations.append(f"{what}: {nbytes} bytes at {ptr:#x} overrun the "
                                           f"allocation of {array.size} at {base:#x}")
                return ("device", base), array[ptr - base:ptr - base + nbytes]
        self.violations.append(f"{what}: {ptr:#x} is not device memory")
        return ("device", ptr), np.zeros(nbytes, np.uint8)

    def pending(self, buffer) -> list[Op]:
        return [op for s in list(self.streams.values()) for op in s.queue
                if buffer in op.buffers]

    def check_unused(self, buffer, what: str) -> None:
        for op in self.pending(buffer):
            self.violations.append(f"{what} that a queued {op.kind} on stream {op.stream} "
                                   "still uses")

    def enqueue(self, stream, op: Op, run: Callable[[], None]) -> Op:
        """Queue `op` on `stream` (a FakeStream), after checking it races with nothing."""
        self.require_current(f"queue a {op.kind}")
        if not isinstance(stream, FakeStream):
            self.violations.append(f"{op.kind} queued on {stream!r}, not a stream")
            run()
            return op
        for buffer in op.buffers:
            for other in self.pending(buffer):
                writes = buffer in op.writes or buffer in other.writes
                if other.stream != stream.handle and writes:
                    self.violations.append(
                        f"race: {op.kind} on stream {stream.handle} touches {buffer[0]} "
                        f"buffer {buffer[1]:#x} while a {other.kind} on stream {other.stream} "
                        "that uses it is still queued")
        op.run = run
        self.ops.append(op)
        stream.queue.append(op)
        stream.issued += 1
        return op

    # ---- the pycuda.driver API that cuda_buffers calls

    def init(self):
        pass

    def Device(self, ordinal):  # noqa: N802 - pycuda's name
        return FakeDevice(self, ordinal)

    def pagelocked_empty(self, nbytes, dtype):
        assert np.dtype(dtype) == np.uint8, dtype  # all cuda_buffers asks for
        return np.asarray(FakePinned(self, nbytes))  # .base is the allocation, as in pycuda

    def mem_alloc(self, nbytes):
        return FakeAlloc(self, nbytes)

    def Stream(self, flags=0):  # noqa: N802
        return FakeStream(self, flags)

    def Event(self, flags=0):  # noqa: N802
        return FakeEvent(self, flags)

    def memcpy_htod_async(self, ptr, host, stream=None):
        pinned = _host_allocation(host)
        key, dev = self.device_buffer(ptr, host.nbytes, "copy to the device")
        src = host.reshape(-1) if pinned is not None else host.reshape(-1).copy()  # staged
        op = Op("htod", getattr(stream, "handle", 0), self.context_id(), writes=(key,),
                reads=(("host", id(pinned)),) if pinned is not None else (),
                pinned=pinned is not None)

        def run():
            dev[...] = src  # pinned: read from the host buffer now, when the copy runs

        self.enqueue(stream, op, run)

    def memcpy_dtoh_async(self, host, ptr, stream=None):
        pinned = _host_allocation(host)
        key, dev = self.device_buffer(ptr, host.nbytes, "copy from the device")
        op = Op("dtoh", getattr(stream, "handle", 0), self.context_id(), reads=(key,),
                writes=(("host", id(pinned)),) if pinned is not None else (),
                pinned=pinned is not None)

        def run():
            host[...] = dev.reshape(host.shape)

        self.enqueue(stream, op, run)
        if pinned is None and isinstance(stream, FakeStream):
            stream.run()  # pageable: the driver finishes the copy before returning


# ------------------------------------------------------------------ tensorrt


class FakeLogger:
    WARNING = 2

    def __init__(self, severity):
        self.severity = severity


class FakeTRT:
    """The slice of the tensorrt module the runtime side uses. Engines "run" 255 - frame.

    `profiles`: how many optimization profiles its engines have (livestyle builds one).
    `profile_ok=False`: TensorRT refuses every profile switch (a plan that does not fit).
    """

    Logger = FakeLogger
    DataType = types.SimpleNamespace(UINT8="uint8", FLOAT="float", HALF="half")

    def __init__(self, driver: FakeDriver, version: str = "10.9.0", profile_ok: bool = True,
                 profiles: int = 1):
        self.driver, self.__version__, self.profile_ok = driver, version, profile_ok
        self.profiles = profiles
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

    def __init__(self, trt: FakeTRT):
        super().__init__(trt.driver)
        self.trt = trt
        self.num_optimization_profiles = trt.profiles

    def get_tensor_name(self, i):
        return ("frame", "styled")[i]

    def get_tensor_dtype(self, name):
        return "uint8"

    def create_execution_context(self):
        return self.trt.track(FakeExecutionContext(self))


class FakeExecutionContext(_Tracked):
    """An execution context. Its rules, as TensorRT's (10.x and 11.x) bindings have them:
    - set_optimization_profile_async raises RuntimeError when TensorRT refuses (an index the
      engine does not have), it never returns False; set_input_shape and set_tensor_address
      answer False;
    - a new context is on profile 0; a switch is queued on the stream it is given.
    One rule is stricter than TensorRT's letter (which asks only that the enqueue stream be
    ordered after the switch): the switch must have *run* before the context takes a shape,
    which the runner guarantees by synchronizing once at load.
    """

    kind = "TensorRT execution context"

    def __init__(self, engine: FakeEngine):
        super().__init__(engine.driver)
        self.trt, self.engine = engine.trt, weakref.ref(engine)
        self.profile = 0
        self._switch: Op | None = None  # the last profile switch queued
        self.shape = None
        self.addresses: dict[str, int] = {}
        self.shapes_run: list[tuple] = []

    def set_optimization_profile_async(self, index, stream_handle):
        self.driver.require_current("set an optimization profile")
        if not self.trt.profile_ok or not 0 <= index < self.trt.profiles:
            raise RuntimeError("Error in set optimization profile.")
        stream = self.driver.streams.get(stream_handle)
        me = weakref.ref(self)

        def run():
            if me() is not None:
                me().profile = index

        self._switch = self.driver.enqueue(
            stream, Op("profile", stream_handle, self.driver.context_id(),
                       exec_context=id(self)), run)
        return True

    def set_input_shape(self, name, shape):
        from livestyle.backends.tensorrt import PROFILE

        if self._switch is not None and not self._switch.done:
            self.driver.violations.append(
                f"set_input_shape on execution context {id(self):#x} while its profile "
                f"switch is still queued on stream {self._switch.stream}")
        lo, hi = PROFILE["min"], PROFILE["max"]
        if not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
            return False  # as TensorRT answers a shape outside the profile
        self.shape = tuple(shape)
        return True

    def set_tensor_address(self, name, ptr):
        if not ptr or ptr % 256:
            return False  # TensorRT refuses a null or misaligned address
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream_handle):
        driver = self.driver
        _, h, w, c = self.shape
        n = h * w * c
        src_key, src = driver.device_buffer(self.addresses["frame"], n, "network input")
        dst_key, dst = driver.device_buffer(self.addresses["styled"], n, "network output")
        shape = self.shape  # taken now, as the real enqueue takes shapes and addresses

        def run():
            dst[...] = 255 - src

        stream = driver.streams.get(stream_handle)
        if stream is None:
            driver.violations.append(f"network queued on {stream_handle:#x}, not a stream")
        driver.enqueue(stream, Op("network", stream_handle, driver.context_id(),
                                  reads=(src_key,), writes=(dst_key,),
                                  exec_context=id(self)), run)
        self.shapes_run.append(shape)
        return True
