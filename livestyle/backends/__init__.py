"""Backends by name. `auto` tries them fastest first and explains every one that failed.

Each entry is imported only when asked for, so a missing optional package (torch, tensorrt,
openvino) costs nothing until someone picks that backend.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from livestyle.backends.base import Backend, BackendUnavailable, SyncBackend
from livestyle.gpu import cuda_device_count

# name -> (module, class); each class's `name` is its key here
REGISTRY: dict[str, tuple[str, str]] = {
    "tensorrt": ("livestyle.backends.tensorrt", "TensorRTBackend"),
    "torch-cuda": ("livestyle.backends.torch_cuda", "TorchCudaBackend"),
    "openvino": ("livestyle.backends.openvino", "OpenVinoBackend"),
    "onnxruntime": ("livestyle.backends.onnxruntime", "OnnxRuntimeBackend"),
    "torch": ("livestyle.backends.torch", "TorchBackend"),
}
GPU_BACKENDS = {"tensorrt", "torch-cuda"}
# fastest first; torch on the CPU is left out of auto: it is 2-4x slower than either runtime
AUTO_ORDER = ["tensorrt", "torch-cuda", "openvino", "onnxruntime"]

__all__ = ["Backend", "BackendUnavailable", "REGISTRY", "create", "NoBackendError"]


class NoBackendError(RuntimeError):
    pass


def read_model(model_path: str | Path):
    """The ONNX model's graph and metadata (no external weight data), or None if it cannot
    be read here: the backend then reports why."""
    try:
        import onnx

        return onnx.load(str(model_path), load_external_data=False)
    except Exception:  # noqa: BLE001 - unreadable here means: let the backend say why
        return None


def fixed_input_size(model) -> tuple[int | None, int | None]:
    """(height, width) of a model's (read_model) frame input where they are fixed numbers,
    None where free (livestyle's generators take any size) or unknown."""
    try:
        graph = model.graph
        weights = {t.name for t in graph.initializer}
        (frame,) = [i for i in graph.input if i.name not in weights]
        dims = frame.type.tensor_type.shape.dim
        if dims[1].dim_value == 3 and dims[3].dim_value != 3:
            return None, None  # channels first: not a frame model; check_any_size says so
        h, w = dims[1], dims[2]  # NHWC
    except Exception:  # noqa: BLE001 - no model, or not a frame model: the backend says why
        return None, None
    return (h.dim_value or None), (w.dim_value or None)


def min_frame_side(model) -> int:
    """The smallest frame side a livestyle generator (read_model) runs at: its deepest maps
    (1/4 or 1/8 of its trunk's resolution, the trunk at 1 or 1/2 of the frame's) are
    reflect-padded and instance-normed, which needs 2 px there. 1 (no enlarging) for a model
    without livestyle's generator metadata: its limits are not ours to guess."""
    try:
        meta = {p.key: p.value for p in model.metadata_props}
        gen = json.loads(meta["livestyle.generator"])
        stride, depth = int(gen.get("stem_stride", 1)), int(gen.get("trunk_down", 2))
    except Exception:  # noqa: BLE001 - not ours, or unreadable: run frames as they come
        return 1
    return 2 * stride * 2**depth


def check_any_size(model, model_path: str | Path) -> None:
    """ValueError for a model whose input height or width is fixed: frames come at any
    size, and backends disagree on such a model (OpenVINO reshapes it, ONNX Runtime fails
    at the first frame of another size), so every backend refuses it alike."""
    try:
        weights = {t.name for t in model.graph.initializer}
        (frame,) = [i for i in model.graph.input if i.name not in weights]
        dims = [d.dim_value for d in frame.type.tensor_type.shape.dim]
    except Exception:  # noqa: BLE001 - no model, or not a frame model: the backend says why
        dims = []
    if len(dims) == 4 and dims[1] == 3 and dims[3] != 3:
        raise ValueError(
            f"model {model_path} takes channels-first frames (NCHW: 3 colours, then height "
            "and width), but livestyle passes frames channels-last (NHWC: height, width, then "
            "3 colours, uint8 BGR); re-export it with `livestyle train` (train/export.py)")
    h, w = fixed_input_size(model)
    if h is not None or w is not None:
        size = f"{w or 'any'}x{h or 'any'} (WxH)"
        raise ValueError(
            f"model {model_path} takes only frames of {size}, but livestyle runs frames of "
            "any size; re-export it with a free height and width (`livestyle train` and "
            "train/export.py do), then try again")


def create(name: str, model_path: str | Path, **kwargs) -> Backend:
    """Build backend `name` (or the first that works, for "auto") for one model file.

    Raises BackendUnavailable for a named backend that cannot run here, NoBackendError when
    auto finds none, ValueError for a model the backend cannot load.
    """
    if name != "auto" and name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose from auto, {', '.join(REGISTRY)}")
    model = read_model(model_path)  # read once, for the checks every backend shares
    check_any_size(model, model_path)  # the same refusal whichever backend would run it
    min_side = min_frame_side(model)
    if name != "auto":
        return _create_one(name, model_path, min_side, kwargs)
    reasons = []
    for candidate in AUTO_ORDER:
        try:
            return _create_one(candidate, model_path, min_side, kwargs)
        except BackendUnavailable as e:
            reasons.append(f"  {candidate}: {e}")
    raise NoBackendError("no backend can run here:\n" + "\n".join(reasons))


def _create_one(name: str, model_path: str | Path, min_side: int, kwargs: dict) -> Backend:
    if name in GPU_BACKENDS:
        count, why = cuda_device_count()
        if not count:  # checked before any GPU library is touched: TensorRT would crash
            raise BackendUnavailable(why)
    module, cls = REGISTRY[name]
    try:
        backend_cls = getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise BackendUnavailable(f"cannot import {module}: {e}") from None
    backend = backend_cls(model_path, **kwargs)
    if isinstance(backend, SyncBackend):  # the pipelined TensorRT one fits its own profile
        backend.min_side = min_side
    return backend
