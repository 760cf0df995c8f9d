"""TensorRT on an NVIDIA GPU: the fastest backend, results one frame late (delay = 1).

Loading is kept apart from running:
- `load_plan()` returns a serialized engine ("plan") for one style: from the on-disk cache
  (engine_cache) when a valid one exists, else built from the ONNX file, checked against ONNX
  Runtime on a photo, and cached. Building takes about a minute, once per style, GPU model
  and TensorRT version.
- `_Runner` runs a deserialized engine over cuda_buffers' two slots, double-buffered by
  slots.SlotScheduler: uint8 BGR goes over the bus both ways (the pixel conversions are in
  the graph), so each frame moves 3 bytes per pixel each way.

Precision, by TensorRT major version (the cache header records which one a plan has:
`built_precision` fp16/fp32 and `typing` weak/strong; the backend shows it as `precision`):
- TensorRT 10: a weakly typed network from the FP32 graph with BuilderFlag.FP16, so TensorRT
  picks FP16 or FP32 kernels per layer. Its normalization layer accumulates in FP32 even so,
  which is what instance norm needs; nothing is pinned.
- TensorRT 11 removed weak typing (BuilderFlag.FP16, precision constraints, per-layer
  precision): the network is strongly typed and the precision is written into the ONNX graph
  instead (fp16_graph: FP16 convolutions, instance norm computed in FP32, uint8 in and out).
Either way an FP16 plan must come within MIN_PSNR of ONNX Runtime FP32 on the check photo,
else it is rebuilt in FP32.

Frames of any size: the optimization profile (PROFILE) spans 16x16 to 1920x1920; a frame
outside it is resized into it, aspect kept, and the result back to the frame's size
(shape_profile.ProfileFit). `fits_profile()` says whether a frame runs at its own size.

Nothing here imports tensorrt or pycuda at module level, and nothing touches TensorRT before
livestyle.gpu.cuda_device_count() has found a device: constructing a TensorRT Runtime or
Builder on a machine without a GPU kills the process. Every TensorRT object is made and
released inside a `CudaContext.active()` block (cuda_buffers explains why).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from livestyle.backends import cuda_buffers, engine_cache, fp16_graph, shape_profile
from livestyle.backends.base import Backend, BackendUnavailable
from livestyle.backends.slots import SlotScheduler
from livestyle.frames import MIN_SIDE
from livestyle.gpu import cuda_device_count, tensorrt_install_hint
from livestyle.metrics import psnr

INPUT, OUTPUT = "frame", "styled"  # tensor names fixed by train/export.py
# NHWC uint8 shapes, batch 1; "opt" is what TensorRT tunes kernels for (720p landscape).
# The smallest side is the one every backend runs frames at (frames.MIN_SIDE).
PROFILE = {"min": (1, MIN_SIDE, MIN_SIDE, 3), "opt": (1, 720, 1280, 3),
           "max": (1, 1920, 1920, 3)}
N_SLOTS = 2
# Bump when the build below changes in a way that makes old cached plans wrong or stale
# (flags, precision rules, profile, number of profiles): it is part of the cache key.
# 2: weak typing without pinned norms (TensorRT 10), strongly typed FP16 graph (11), wider
#    profile
# 3: one optimization profile shared by the slots' contexts (was one per slot)
RECIPE = 3
PROFILE_INDEX = 0  # the plan's one optimization profile, which every execution context uses
MIN_PSNR = 30.0  # dB, FP16 engine vs ONNX Runtime FP32 on the check photo
CHECK_PHOTO_ENV = "LIVESTYLE_CHECK_IMAGE"
# Present in the development checkout only; users get a synthetic image or set the env var.
_DEV_PHOTO = (Path(__file__).resolve().parents[3] / "shared" / "data" / "content"
              / "kodak_kodim01.jpg")

Log = Callable[[str], None]


def _log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def require_tensorrt():
    """The tensorrt module, once a GPU, TensorRT >= 10 and pycuda are all known to be there.

    Raises BackendUnavailable saying everything that is missing and how to fix each. The
    device check comes first: TensorRT is not even imported on a machine without a GPU.
    """
    count, why = cuda_device_count()
    if not count:
        raise BackendUnavailable(f"TensorRT needs an NVIDIA GPU and driver ({why}); on a "
                                 f"machine with both: {cuda_buffers.INSTALL_HINT}")
    problems, trt = [], None
    try:
        import tensorrt as trt
    except ImportError as e:
        # an ImportError naming a library (libnvinfer.so...) is a tensorrt package whose
        # libraries did not come: they are fetched from NVIDIA's index, not PyPI
        problems.append(f"tensorrt is not installed or its libraries are missing ({e}): "
                        f"{tensorrt_install_hint()}")
    else:
        version = getattr(trt, "__version__", "0")
        if int(version.split(".")[0]) < 10:
            problems.append(f"TensorRT {version} is too old: this backend uses the TensorRT "
                            f"10 tensor API; {tensorrt_install_hint()} (with -U)")
    try:
        cuda_buffers.require()
    except BackendUnavailable as e:
        problems.append(str(e))
    if problems:
        raise BackendUnavailable("; ".join(problems))
    return trt


_logger = None
_logger_lock = threading.Lock()


def trt_logger(trt):
    """The process's one trt.Logger, made on first use (tensorrt is imported only after the
    device check). Builder, parser and runtime all take this one: TensorRT warns when they
    are given different loggers."""
    global _logger
    with _logger_lock:
        if _logger is None or not isinstance(_logger, trt.Logger):  # (another tensorrt: tests)
            _logger = trt.Logger(trt.Logger.WARNING)
        return _logger


def build_typing(trt) -> str:
    """"weak" on TensorRT 10 (BuilderFlag.FP16 picks FP16 per layer), "strong" from 11 on,
    where weak typing is gone and precision comes from the graph."""
    return "strong" if int(trt.__version__.split(".")[0]) >= 11 else "weak"


def fits_profile(height: int, width: int) -> bool:
    """Whether a frame of this size runs at its own size (else it is resized into PROFILE)."""
    return shape_profile.fits(height, width, PROFILE)


# ------------------------------------------------------------------ building and caching

def _style_name(model_path: Path) -> str:
    from livestyle.styles import StyleError, read_style

    try:
        return read_style(model_path).name
    except StyleError:
        return model_path.stem


def _check_image(spec) -> tuple[np.ndarray, str]:
    """(uint8 BGR image inside the profile, description) for the FP16 parity check."""
    import cv2

    if isinstance(spec, np.ndarray):
        image, desc = spec, "the given image"
    else:
        candidates = [spec] if spec is not None else [os.environ.get(CHECK_PHOTO_ENV), _DEV_PHOTO]
        image, desc = None, ""
        for c in candidates:
            if c and Path(c).is_file():
                image, desc = cv2.imread(str(c), cv2.IMREAD_COLOR), Path(c).name
                if image is not None:
                    break
        if image is None:
            if spec is not None:
                raise ValueError(f"cannot read check image {spec}")
            image, desc = _synthetic_photo(), (f"a synthetic test image (set {CHECK_PHOTO_ENV} "
                                               "to a photo for a truer check)")
    if not fits_profile(*image.shape[:2]):
        image = cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image), desc


def _synthetic_photo(h: int = 480, w: int = 640) -> np.ndarray:
    """Smooth gradients, hard edges and fine texture: what a photo exercises, minus a photo."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w, y / h, 0.5 + 0.5 * np.sin(x / 23.0) * np.cos(y / 17.0)], -1) * 200
    img[(x - w * 0.6) ** 2 + (y - h * 0.4) ** 2 < (h * 0.2) ** 2] = (40, 180, 230)
    img[int(h * 0.65):int(h * 0.85), int(w * 0.1):int(w * 0.4)] = (220, 220, 220)
    img += np.random.default_rng(0).normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _onnxruntime_reference(model_path: Path, image: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT: image[None]})[0][0]


def _cast_input_first(model_bytes: bytes) -> bytes:
    """The ONNX model with the uint8 input cast to float before anything else reads it.

    The exported graph transposes and flips the uint8 frame before its Cast to float, but
    TensorRT only converts uint8 (to float/half) at the network's edge and does not run
    shuffles or slices on it. Moving the cast first is exact (transposing and flipping
    commute with the conversion), leaves the old Cast a float->float no-op, and keeps uint8
    on the bus. The output side already ends in Cast(float->uint8), which TensorRT supports.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    as_float = f"{INPUT}__as_float"
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == INPUT:
                node.input[i] = as_float
    graph.node.insert(0, helper.make_node("Cast", [INPUT], [as_float], to=TensorProto.FLOAT,
                                          name="livestyle_trt_input_cast"))
    return model.SerializeToString()


def network_graph(model_bytes: bytes, fp16: bool, typing: str) -> bytes:
    """The exact ONNX bytes handed to TensorRT's parser for this build.

    Always: the uint8 input cast to float first (`_cast_input_first`). For an FP16 build on
    a strongly typed network (TensorRT 11): fp16_graph.to_fp16 on top, since the graph is
    then the only place precision can be set. Tests run this very graph in ONNX Runtime.
    """
    graph = _cast_input_first(model_bytes)
    if fp16 and typing == "strong":
        graph = fp16_graph.to_fp16(graph)
    return graph


def _build_plan(trt, model_bytes: bytes, fp16: bool, log: Log) -> tuple[bytes, str, str]:
    """Serialize an engine for the ONNX model; (plan, precision built, typing)."""
    logger = trt_logger(trt)
    typing = build_typing(trt)
    flags = 0
    if typing == "strong" and hasattr(trt, "NetworkDefinitionCreationFlag") and hasattr(
            trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        # TensorRT 11 networks are strongly typed anyway; the flag, where its enum still has
        # it, says so explicitly
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    builder = trt.Builder(logger)
    network = builder.create_network(flags)  # explicit batch is always on from TensorRT 10
    parser = trt.OnnxParser(network, logger)
    # Native INormalizationLayer rather than the deprecated InstanceNormalization plugin; on
    # by default in 10.x, where the layer accumulates in FP32 whatever the builder flags.
    if hasattr(trt, "OnnxParserFlag") and hasattr(trt.OnnxParserFlag, "NATIVE_INSTANCENORM"):
        parser.set_flag(trt.OnnxParserFlag.NATIVE_INSTANCENORM)
    if not parser.parse(network_graph(model_bytes, fp16, typing)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailable(f"TensorRT cannot parse the model: {errors}")
    config = builder.create_builder_config()
    if fp16 and typing == "weak":
        config.set_flag(trt.BuilderFlag.FP16)
        log("  FP16 allowed: TensorRT 10 picks FP16 or FP32 per layer (weakly typed)")
    elif fp16:
        log("  FP16 convolutions, instance norm in FP32, set in the graph (strongly typed)")
    # One profile, shared by both slots' execution contexts: since TensorRT 10 contexts may
    # run on the same profile concurrently (before, each needed its own, and a second
    # identical one doubled the build time and the plan's size)
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT, PROFILE["min"], PROFILE["opt"], PROFILE["max"])
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailable("TensorRT could not build an engine for this model; its "
                                 "messages above say why")
    return bytes(memoryview(serialized)), "fp16" if fp16 else "fp32", typing


def _plan_psnr(trt, plan: bytes, model_path: Path, image: np.ndarray) -> float:
    """PSNR of the plan's result on `image` against ONNX Runtime FP32. Call with the context
    active: the runtime, engine and runner made here are released here, on every path."""
    runtime = trt.Runtime(trt_logger(trt))
    engine = runner = None
    try:
        engine = runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise BackendUnavailable("TensorRT cannot deserialize the engine it just built")
        runner = _Runner(trt, engine)
        ours = runner.run_once(image)
    finally:
        try:
            if runner is not None:
                runner.close()
        finally:
            del runner, engine, runtime  # freed now, in the context; not when a traceback dies
    return psnr(ours, _onnxruntime_reference(model_path, image))


def _build_checked(trt, model_path: Path, model_bytes: bytes, fp16: bool, check_image,
                   log: Log) -> tuple[bytes, dict]:
    """Build, check against ONNX Runtime, and fall back to FP32 if FP16 strays too far."""
    style = _style_name(model_path)
    log(f"building TensorRT engine for {style} (first run only, ~1 min)...")
    t0 = time.monotonic()
    image, desc = _check_image(check_image)
    plan, built, typing = _build_plan(trt, model_bytes, fp16, log)
    score = _plan_psnr(trt, plan, model_path, image)
    info = {"built_precision": built, "typing": typing, "check_image": desc,
            "psnr_db": round(score, 2)}
    if built == "fp16" and score < MIN_PSNR:
        log(f"  FP16 engine for {style} is too far from ONNX Runtime FP32 on {desc}: "
            f"PSNR {score:.1f} dB < {MIN_PSNR:.0f} dB; rebuilding in FP32 (slower, exact)...")
        plan, built, typing = _build_plan(trt, model_bytes, False, log)
        score32 = _plan_psnr(trt, plan, model_path, image)
        info.update(built_precision=built, psnr_db=round(score32, 2),
                    fp16_psnr_db=round(score, 2))
        score = score32
    if built == "fp32" and score < MIN_PSNR:
        # FP32 must match; if it does not, the engine computes something else: refuse it
        raise BackendUnavailable(f"TensorRT's FP32 engine disagrees with ONNX Runtime on {desc} "
                                 f"(PSNR {score:.1f} dB); not using it")
    info["build_seconds"] = round(time.monotonic() - t0, 1)
    log(f"  built {built.upper()} engine ({typing}ly typed) in {info['build_seconds']:.0f} s; "
        f"PSNR vs ONNX Runtime FP32 {score:.1f} dB on {desc}")
    return plan, info


def load_plan(trt, model_path: str | Path, fp16: bool, *, cache_dir=None, check_image=None,
              log: Log = _log_stderr, force: bool = False,
              device: int = 0) -> tuple[bytes, Path, dict, bool]:
    """(plan, cache file, header, built_now) for one model. Call with the CUDA context active.

    A valid cached plan is returned as is, unless `force`; a missing, stale or corrupt one is
    rebuilt (saying why, unless it was simply missing) and written back atomically.
    """
    model_path = Path(model_path)
    model_bytes = model_path.read_bytes()
    gpu_name, capability = cuda_buffers.device_identity(device)
    fields = engine_cache.key_fields(
        model_sha256=hashlib.sha256(model_bytes).hexdigest(),
        tensorrt_version=trt.__version__, gpu_name=gpu_name, compute_capability=capability,
        precision="fp16" if fp16 else "fp32", profile=PROFILE, recipe=RECIPE)
    path = engine_cache.cache_path(engine_cache.cache_key(fields), cache_dir)
    if not force:
        found = engine_cache.read_entry(path, fields)
        if found:
            return found.plan, path, found.header, False
        if not found.missing:
            log(f"cached TensorRT engine {path.name} not used ({found.reason}); rebuilding")
    plan, info = _build_checked(trt, model_path, model_bytes, fp16, check_image, log)
    header = {**fields, **info}
    engine_cache.write_entry(path, header, plan)
    return plan, path, header, True


def describe_precision(header: dict) -> str:
    """What a plan computes in, from its cache header: "fp16 (strongly typed)" and so on."""
    built, typing = header.get("built_precision", "?"), header.get("typing")
    return f"{built} ({typing}ly typed)" if typing else built


# ------------------------------------------------------------------ running

class _Runner:
    """A deserialized engine on N_SLOTS slots: one execution context per slot, all on the
    plan's one optimization profile, each on its slot's stream, fed by a SlotScheduler behind
    a ProfileFit (frames of any size). Use it, and close it, with the context active.
    """

    def __init__(self, trt, engine):
        names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        if names != {INPUT, OUTPUT}:
            raise ValueError(f"engine tensors are {sorted(names)}, expected {INPUT}, {OUTPUT}")
        for n in names:
            if engine.get_tensor_dtype(n) != trt.DataType.UINT8:
                raise ValueError(f"engine tensor {n} is {engine.get_tensor_dtype(n)}, not uint8")
        if engine.num_optimization_profiles < 1:
            raise ValueError("engine has no optimization profile; rebuild it: livestyle "
                             "build --style NAME --force")
        self._engine = engine
        self._contexts: list = []
        self._shapes: list[tuple | None] = [None] * N_SLOTS
        self._slots = self.scheduler = None
        try:
            self._slots = cuda_buffers.CudaSlots(PROFILE["max"][1:], self._compute, N_SLOTS)
            for i in range(N_SLOTS):
                ctx = engine.create_execution_context()
                if ctx is None:
                    raise RuntimeError("TensorRT could not create an execution context "
                                       "(out of GPU memory?)")
                self._contexts.append(ctx)
                self._set_profile(i)
            # the profile switches are done before any frame comes: a host-device sync point,
            # once per load, so that no later call depends on which stream a switch went to
            for i in range(N_SLOTS):
                self._slots.sync(i)
        except BaseException:
            self.close()
            raise
        self.scheduler = shape_profile.ProfileFit(SlotScheduler(self._slots, N_SLOTS), PROFILE)

    def _set_profile(self, slot: int) -> None:
        """Put the slot's execution context on the plan's profile, on the slot's stream.

        A new context starts on profile 0 already; it is set anyway, so that a plan without
        it fails here, at load, rather than at the first frame. The binding raises
        RuntimeError when TensorRT refuses (it never returns False, in 10.x and 11.x alike).
        """
        try:
            self._contexts[slot].set_optimization_profile_async(
                PROFILE_INDEX, self._slots.stream_handle(slot))
        except RuntimeError as e:
            raise RuntimeError(
                f"TensorRT refused optimization profile {PROFILE_INDEX} for execution context "
                f"{slot} ({e}; the engine has {self._engine.num_optimization_profiles}); the "
                "cached engine does not fit this livestyle: livestyle build --style NAME "
                "--force") from e

    def _compute(self, slot: int, stream: int, in_ptr: int, out_ptr: int, shape) -> None:
        ctx = self._contexts[slot]
        full = (1, *shape)
        if self._shapes[slot] != full:
            # this slot's previous frame was waited for before the slot was reused, so
            # nothing of this context is in flight while its shape changes
            if not ctx.set_input_shape(INPUT, full):
                raise ValueError(f"TensorRT rejected input shape {full}")
            self._shapes[slot] = full
        for name, ptr in ((INPUT, in_ptr), (OUTPUT, out_ptr)):
            if not ctx.set_tensor_address(name, ptr):  # False, not an exception, on refusal
                raise RuntimeError(f"TensorRT refused the device address of tensor {name}")
        if not ctx.execute_async_v3(stream):
            raise RuntimeError("TensorRT failed to enqueue the network")

    def run_once(self, frame: np.ndarray) -> np.ndarray:
        """One frame through and back, synchronously (a copy). For checks, not the live path."""
        first = self.scheduler.submit(frame)
        results = ([first] if first else []) + self.scheduler.flush()
        return results[-1][1].copy()

    def close(self) -> None:
        """Wait for what is in flight, then release contexts, buffers and the engine
        reference (idempotent)."""
        try:
            if self.scheduler is not None:
                self.scheduler.drain()
        finally:
            self.scheduler = None
            if self._slots is not None:
                self._slots.close()
            self._contexts = []  # TensorRT frees each context when its last reference goes
            self._engine = None


class TensorRTBackend(Backend):
    """TensorRT engine for one style. `infer` returns the *previous* frame's result.

    infer(frame): frame is uint8 BGR HxWx3 of any size (resized into PROFILE and back where
    it lies outside); returns None on the first call, then the result for the frame passed
    one call earlier (uint8 BGR, that frame's size). The returned array may be a pinned
    buffer reused two calls later: it is valid until the next `infer`; copy it to keep it.
    flush() returns what is still in flight (copies). `precision` says what the engine
    computes in, as its cache header records it (for example "fp16 (strongly typed)").
    """

    name = "tensorrt"
    delay = 1

    def __init__(self, model_path: str | Path, fp16: bool = True, *, cache_dir=None,
                 check_image=None, log: Log | None = None, device: int = 0, threads: int = 0):
        # threads: accepted (and ignored) because `create("auto", ...)` passes the same
        # keyword arguments to every backend it tries
        self._cuda = self._runner = self._engine = self._runtime = None
        trt = require_tensorrt()  # before anything touches TensorRT
        log = log or _log_stderr
        self._cuda = cuda_buffers.CudaContext(device)
        try:
            with self._cuda.active():
                kwargs = dict(cache_dir=cache_dir, check_image=check_image, log=log,
                              device=device)
                plan, self.engine_path, self.engine_info, built = load_plan(
                    trt, model_path, fp16, **kwargs)
                self._runtime = trt.Runtime(trt_logger(trt))
                self._engine = self._runtime.deserialize_cuda_engine(plan)
                if self._engine is None and not built:
                    log(f"cached TensorRT engine {self.engine_path.name} does not deserialize; "
                        "rebuilding")
                    plan, self.engine_path, self.engine_info, _ = load_plan(
                        trt, model_path, fp16, force=True, **kwargs)
                    self._engine = self._runtime.deserialize_cuda_engine(plan)
                if self._engine is None:
                    raise BackendUnavailable("TensorRT cannot deserialize the engine it built")
                self._runner = _Runner(trt, self._engine)
        except BaseException:
            self.close()
            raise
        self.precision = describe_precision(self.engine_info)

    def infer(self, frame: np.ndarray) -> np.ndarray | None:
        frame = self.check_frame(frame)
        if self._runner is None:
            raise RuntimeError("backend is closed")
        with self._cuda.active():
            done = self._runner.scheduler.submit(frame)
        return None if done is None else done[1]

    def flush(self) -> list[np.ndarray]:
        if self._runner is None:
            return []
        with self._cuda.active():
            # copies: a flush usually precedes close(), which frees the pinned buffers
            return [result.copy() for _, result in self._runner.scheduler.flush()]

    def close(self) -> None:
        """Release runner, engine and runtime in the context, on any thread (idempotent)."""
        if self._cuda is None:
            return
        cuda, self._cuda = self._cuda, None
        try:
            with cuda.active():  # TensorRT and pycuda objects go while their context lives
                runner, self._runner = self._runner, None
                try:
                    if runner is not None:
                        runner.close()
                finally:
                    del runner
                    self._engine = None
                    self._runtime = None
        finally:
            cuda.close()


def build_engine_for_style(style_path: str | Path, fp16: bool, *, cache_dir=None,
                           check_image=None, log: Log | None = None,
                           force: bool = False) -> Path:
    """Build (or find up to date) the TensorRT engine for a style; returns the cache file.

    For `livestyle build --style X [--fp32] [--force]`; `force` rebuilds even when a valid
    cached engine exists. `style_path` is an .onnx file or an installed style's name.
    Raises BackendUnavailable naming what is missing (GPU, driver, tensorrt, pycuda) and
    what to install; StyleError for an unknown style.
    """
    trt = require_tensorrt()
    log = log or _log_stderr
    model_path = Path(style_path)
    if not model_path.is_file():
        from livestyle.styles import resolve

        model_path = resolve(str(style_path)).path
    cuda = cuda_buffers.CudaContext(0)
    try:
        with cuda.active():  # everything the build makes is made and released in here
            _, path, header, built = load_plan(trt, model_path, fp16, cache_dir=cache_dir,
                                               check_image=check_image, log=log, force=force)
    finally:
        cuda.close()
    if not built:
        log(f"TensorRT engine for {_style_name(model_path)} is up to date "
            f"({describe_precision(header)}): {path}")
    else:
        log(f"saved {path} ({describe_precision(header)})")
    return path
