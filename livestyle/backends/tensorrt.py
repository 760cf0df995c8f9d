"""TensorRT on an NVIDIA GPU: the fastest backend, results one frame late (delay = 1).

Loading is kept apart from running:
- `load_plan()` returns a serialized engine ("plan") for one style: from the on-disk cache
  (engine_cache) when a valid one exists, else built from the ONNX file with the TensorRT 10
  Python API, checked against ONNX Runtime on a photo, and cached. Building takes about a
  minute, once per style, GPU model and TensorRT version.
- `_Runner` runs a deserialized engine over cuda_buffers' two slots, double-buffered by
  slots.SlotScheduler: uint8 BGR goes over the bus both ways (the pixel conversions are in
  the graph), so each frame moves 3 bytes per pixel each way.

Nothing here imports tensorrt or pycuda at module level, and nothing touches TensorRT before
livestyle.gpu.cuda_device_count() has found a device: constructing a TensorRT Runtime or
Builder on a machine without a GPU kills the process.

Frames must lie within the optimization profile (PROFILE: 320x240 up to 1920x1080, landscape);
other sizes raise ValueError, and `fits_profile()` lets a caller check first.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from livestyle.backends import cuda_buffers, engine_cache
from livestyle.backends.base import Backend, BackendUnavailable
from livestyle.backends.slots import SlotScheduler
from livestyle.gpu import cuda_device_count
from livestyle.metrics import psnr

INPUT, OUTPUT = "frame", "styled"  # tensor names fixed by train/export.py
# NHWC uint8 shapes, batch 1. Built for webcam sizes; "opt" is what TensorRT tunes kernels for.
PROFILE = {"min": (1, 240, 320, 3), "opt": (1, 720, 1280, 3), "max": (1, 1080, 1920, 3)}
N_SLOTS = 2
# Bump when the build below changes in a way that makes old cached plans wrong or stale
# (flags, precision rules, number of profiles): it is part of the cache key.
RECIPE = 1
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

    Raises BackendUnavailable saying what is missing and what to install. The device check
    comes first: TensorRT is not even imported on a machine without a GPU.
    """
    count, why = cuda_device_count()
    if not count:
        raise BackendUnavailable(f"TensorRT needs an NVIDIA GPU and driver ({why}); on a "
                                 "machine with both: pip install -e .[gpu]")
    try:
        import tensorrt as trt
    except ImportError as e:
        raise BackendUnavailable(f"tensorrt is not installed ({e}); "
                                 f"{cuda_buffers.INSTALL_HINT}") from None
    version = getattr(trt, "__version__", "0")
    if int(version.split(".")[0]) < 10:
        raise BackendUnavailable(f"TensorRT {version} is too old: this backend uses the "
                                 "TensorRT 10 tensor API; pip install -U 'tensorrt>=10'")
    cuda_buffers.require()
    return trt


def fits_profile(height: int, width: int) -> bool:
    (_, h0, w0, _), (_, h1, w1, _) = PROFILE["min"], PROFILE["max"]
    return h0 <= height <= h1 and w0 <= width <= w1


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


def _pin_norm_layers_fp32(trt, network) -> int:
    """Ask for FP32 in every instance-norm layer; returns how many layers were pinned.

    Instance norm sums x and x^2 over a whole feature map (up to 480x270 values at the max
    profile): in FP16 those sums lose precision or overflow and the picture goes flat or
    blotchy. The layers are cheap, so they run in FP32 and the convolutions in FP16.
    Matched by type (the parser's native INormalizationLayer) and, for a parser that
    decomposes the op into reduce/elementwise layers, by the ONNX node name they carry.
    """
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if not (layer.type == trt.LayerType.NORMALIZATION
                or "InstanceNormalization" in (layer.name or "")):
            continue
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if not all(t.dtype == trt.DataType.FLOAT for t in outputs):
            continue  # a shape-computing helper layer; precision means nothing there
        layer.precision = trt.DataType.FLOAT
        for j in range(layer.num_outputs):
            layer.set_output_type(j, trt.DataType.FLOAT)
        pinned += 1
    return pinned


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


def _build_plan(trt, logger, model_bytes: bytes, fp16: bool, log: Log) -> tuple[bytes, str]:
    """Serialize an engine for the ONNX model; returns (plan, precision actually built)."""
    builder = trt.Builder(logger)
    # Weakly typed network (flags 0; explicit batch is always on in TensorRT 10): the ONNX
    # graph is FP32 throughout, and weak typing lets BuilderFlag.FP16 pick FP16 kernels per
    # layer while the per-layer precision set below keeps instance norm in FP32. A strongly
    # typed network would instead need the FP16 casts written into the ONNX graph itself,
    # and it forbids per-layer precision. TensorRT 11 removed weak typing (no
    # BuilderFlag.FP16); there this builds FP32 and says so.
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    # Native INormalizationLayer rather than the InstanceNormalization plugin: it is what
    # the FP32 pinning above targets, and the plugin is deprecated. (On by default in 10.x.)
    if hasattr(trt, "OnnxParserFlag") and hasattr(trt.OnnxParserFlag, "NATIVE_INSTANCENORM"):
        parser.set_flag(trt.OnnxParserFlag.NATIVE_INSTANCENORM)
    if not parser.parse(_cast_input_first(model_bytes)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailable(f"TensorRT cannot parse the model: {errors}")
    config = builder.create_builder_config()
    built = "fp32"
    if fp16:
        if not hasattr(trt.BuilderFlag, "FP16"):
            log(f"TensorRT {trt.__version__} has no FP16 builder flag (weak typing was "
                "removed); building FP32")
        else:
            config.set_flag(trt.BuilderFlag.FP16)
            # PREFER, not OBEY: a pinned layer without an FP32 kernel falls back with a
            # warning instead of failing the build; the PSNR check judges the result anyway.
            config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
            pinned = _pin_norm_layers_fp32(trt, network)
            log(f"  FP16 convolutions, {pinned} instance-norm layers kept in FP32")
            built = "fp16"
    # One identical profile per slot: each slot has its own execution context so that two
    # frames can be in flight, and with dynamic shapes TensorRT wants concurrently running
    # contexts on distinct profiles.
    for _ in range(N_SLOTS):
        profile = builder.create_optimization_profile()
        profile.set_shape(INPUT, PROFILE["min"], PROFILE["opt"], PROFILE["max"])
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailable("TensorRT could not build an engine for this model; its "
                                 "messages above say why")
    return bytes(memoryview(serialized)), built


def _plan_psnr(trt, runtime, plan: bytes, model_path: Path, image: np.ndarray) -> float:
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise BackendUnavailable("TensorRT cannot deserialize the engine it just built")
    runner = _Runner(trt, engine)
    try:
        ours = runner.run_once(image)
    finally:
        runner.close()
        del engine
    return psnr(ours, _onnxruntime_reference(model_path, image))


def _build_checked(trt, logger, runtime, model_path: Path, model_bytes: bytes, fp16: bool,
                   check_image, log: Log) -> tuple[bytes, dict]:
    """Build, check against ONNX Runtime, and fall back to FP32 if FP16 strays too far."""
    style = _style_name(model_path)
    log(f"building TensorRT engine for {style} (first run only, ~1 min)...")
    t0 = time.monotonic()
    image, desc = _check_image(check_image)
    plan, built = _build_plan(trt, logger, model_bytes, fp16, log)
    score = _plan_psnr(trt, runtime, plan, model_path, image)
    info = {"built_precision": built, "check_image": desc, "psnr_db": round(score, 2)}
    if built == "fp16" and score < MIN_PSNR:
        log(f"  FP16 engine for {style} is too far from ONNX Runtime FP32 on {desc}: "
            f"PSNR {score:.1f} dB < {MIN_PSNR:.0f} dB; rebuilding in FP32 (slower, exact)...")
        plan, built = _build_plan(trt, logger, model_bytes, False, log)
        score32 = _plan_psnr(trt, runtime, plan, model_path, image)
        info.update(built_precision=built, psnr_db=round(score32, 2),
                    fp16_psnr_db=round(score, 2))
        score = score32
    if built == "fp32" and score < MIN_PSNR:
        # FP32 must match; if it does not, the engine computes something else: refuse it
        raise BackendUnavailable(f"TensorRT's FP32 engine disagrees with ONNX Runtime on {desc} "
                                 f"(PSNR {score:.1f} dB); not using it")
    info["build_seconds"] = round(time.monotonic() - t0, 1)
    log(f"  built {built.upper()} engine in {info['build_seconds']:.0f} s; "
        f"PSNR vs ONNX Runtime FP32 {score:.1f} dB on {desc}")
    return plan, info


def load_plan(trt, runtime, model_path: str | Path, fp16: bool, *, cache_dir=None,
              check_image=None, log: Log = _log_stderr, force: bool = False,
              device: int = 0) -> tuple[bytes, Path, dict, bool]:
    """(plan, cache file, header, built_now) for one model. Call with the CUDA context active.

    A valid cached plan is returned as is; a missing, stale or corrupt one is rebuilt (saying
    why, unless it was simply missing) and written back atomically.
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
    logger = trt.Logger(trt.Logger.WARNING)
    plan, info = _build_checked(trt, logger, runtime, model_path, model_bytes, fp16,
                                check_image, log)
    header = {**fields, **info}
    engine_cache.write_entry(path, header, plan)
    return plan, path, header, True


# ------------------------------------------------------------------ running

class _Runner:
    """A deserialized engine on N_SLOTS slots: one execution context per slot, each on its
    own optimization profile and stream, fed by a SlotScheduler. Use with the context active.
    """

    def __init__(self, trt, engine):
        names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        if names != {INPUT, OUTPUT}:
            raise ValueError(f"engine tensors are {sorted(names)}, expected {INPUT}, {OUTPUT}")
        for n in names:
            if engine.get_tensor_dtype(n) != trt.DataType.UINT8:
                raise ValueError(f"engine tensor {n} is {engine.get_tensor_dtype(n)}, not uint8")
        if engine.num_optimization_profiles < N_SLOTS:
            raise ValueError(f"engine has {engine.num_optimization_profiles} optimization "
                             f"profiles, the runner needs {N_SLOTS}")
        self._engine = engine
        self._contexts: list = []
        self._shapes: list[tuple | None] = [None] * N_SLOTS
        self._slots = cuda_buffers.CudaSlots(PROFILE["max"][1:], self._compute, N_SLOTS)
        try:
            for i in range(N_SLOTS):
                ctx = engine.create_execution_context()
                if ctx is None:
                    raise RuntimeError("TensorRT could not create an execution context "
                                       "(out of GPU memory?)")
                ctx.set_optimization_profile_async(i, self._slots.stream_handle(i))
                self._contexts.append(ctx)
            for i in range(N_SLOTS):
                self._slots.sync(i)
        except BaseException:
            self.close()
            raise
        self.scheduler = SlotScheduler(self._slots, N_SLOTS)

    def _compute(self, slot: int, stream: int, in_ptr: int, out_ptr: int, shape) -> None:
        ctx = self._contexts[slot]
        full = (1, *shape)
        if self._shapes[slot] != full:
            # this slot's previous frame was waited for before the slot was reused, so
            # nothing of this context is in flight while its shape changes
            if not ctx.set_input_shape(INPUT, full):
                raise ValueError(f"TensorRT rejected input shape {full}")
            self._shapes[slot] = full
        ctx.set_tensor_address(INPUT, in_ptr)
        ctx.set_tensor_address(OUTPUT, out_ptr)
        if not ctx.execute_async_v3(stream):
            raise RuntimeError("TensorRT failed to enqueue the network")

    def run_once(self, frame: np.ndarray) -> np.ndarray:
        """One frame through and back, synchronously (a copy). For checks, not the live path."""
        first = self.scheduler.submit(frame)
        results = ([first] if first else []) + self.scheduler.flush()
        return results[-1][1].copy()

    def close(self) -> None:
        if getattr(self, "scheduler", None) is not None:
            self.scheduler.drain()
        self._slots.close()
        self._contexts = []  # TensorRT frees each context when its last reference goes


class TensorRTBackend(Backend):
    """TensorRT engine for one style. `infer` returns the *previous* frame's result.

    infer(frame): frame is uint8 BGR HxWx3 within PROFILE; returns None on the first call,
    then the result for the frame passed one call earlier (uint8 BGR, that frame's size). The
    returned array is a pinned buffer reused two calls later: it is valid until the next
    `infer`; copy it to keep it. flush() returns the last frame's result (a copy).
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
                self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
                kwargs = dict(cache_dir=cache_dir, check_image=check_image, log=log,
                              device=device)
                plan, self.engine_path, self.engine_info, built = load_plan(
                    trt, self._runtime, model_path, fp16, **kwargs)
                self._engine = self._runtime.deserialize_cuda_engine(plan)
                if self._engine is None and not built:
                    log(f"cached TensorRT engine {self.engine_path.name} does not deserialize; "
                        "rebuilding")
                    plan, self.engine_path, self.engine_info, _ = load_plan(
                        trt, self._runtime, model_path, fp16, force=True, **kwargs)
                    self._engine = self._runtime.deserialize_cuda_engine(plan)
                if self._engine is None:
                    raise BackendUnavailable("TensorRT cannot deserialize the engine it built")
                self._runner = _Runner(trt, self._engine)
        except BaseException:
            self.close()
            raise
        self.precision = self.engine_info.get("built_precision", "?")

    def infer(self, frame: np.ndarray) -> np.ndarray | None:
        frame = self.check_frame(frame)
        h, w = frame.shape[:2]
        if not fits_profile(h, w):
            (_, h0, w0, _), (_, h1, w1, _) = PROFILE["min"], PROFILE["max"]
            raise ValueError(f"the TensorRT engine takes frames from {w0}x{h0} to {w1}x{h1}; "
                             f"got {w}x{h}: change the processing scale or pick another backend")
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
        if self._cuda is None:
            return
        cuda, self._cuda = self._cuda, None
        try:
            with cuda.active():  # TensorRT and pycuda objects go while their context lives
                runner, self._runner = self._runner, None
                if runner is not None:
                    runner.close()
                self._engine = None
                self._runtime = None
        finally:
            cuda.close()


def build_engine_for_style(style_path: str | Path, fp16: bool, *, cache_dir=None,
                           check_image=None, log: Log | None = None,
                           force: bool = False) -> Path:
    """Build (or find up to date) the TensorRT engine for a style; returns the cache file.

    For `livestyle build --style X [--fp16/--fp32]`. `style_path` is an .onnx file or an
    installed style's name. Raises BackendUnavailable naming what is missing (GPU, driver,
    tensorrt, pycuda) and what to install; StyleError for an unknown style.
    """
    trt = require_tensorrt()
    log = log or _log_stderr
    model_path = Path(style_path)
    if not model_path.is_file():
        from livestyle.styles import resolve

        model_path = resolve(str(style_path)).path
    cuda = cuda_buffers.CudaContext(0)
    try:
        with cuda.active():
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            try:
                _, path, header, built = load_plan(trt, runtime, model_path, fp16,
                                                   cache_dir=cache_dir, check_image=check_image,
                                                   log=log, force=force)
            finally:
                del runtime
    finally:
        cuda.close()
    if not built:
        log(f"TensorRT engine for {_style_name(model_path)} is up to date "
            f"({header.get('built_precision', '?').upper()}): {path}")
    else:
        log(f"saved {path}")
    return path
