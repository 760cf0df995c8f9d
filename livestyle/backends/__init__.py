"""Backends by name. `auto` tries them fastest first and explains every one that failed.

Each entry is imported only when asked for, so a missing optional package (torch, tensorrt,
openvino) costs nothing until someone picks that backend.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from livestyle.backends.base import Backend, BackendUnavailable
from livestyle.gpu import cuda_device_count

# name -> (module, class, keyword arguments)
REGISTRY: dict[str, tuple[str, str, dict]] = {
    "tensorrt": ("livestyle.backends.tensorrt", "TensorRTBackend", {}),
    "torch-cuda": ("livestyle.backends.torch", "TorchBackend", {"device": "cuda"}),
    "openvino": ("livestyle.backends.openvino", "OpenVinoBackend", {}),
    "onnxruntime": ("livestyle.backends.onnxruntime", "OnnxRuntimeBackend", {}),
    "torch": ("livestyle.backends.torch", "TorchBackend", {"device": "cpu"}),
}
GPU_BACKENDS = {"tensorrt", "torch-cuda"}
# fastest first; torch on the CPU is left out of auto: it is 2-4x slower than either runtime
AUTO_ORDER = ["tensorrt", "torch-cuda", "openvino", "onnxruntime"]

__all__ = ["Backend", "BackendUnavailable", "REGISTRY", "create", "NoBackendError"]


class NoBackendError(RuntimeError):
    pass


def create(name: str, model_path: str | Path, **kwargs) -> Backend:
    """Build backend `name` (or the first that works, for "auto") for one model file.

    Raises BackendUnavailable for a named backend that cannot run here, NoBackendError when
    auto finds none, ValueError for a model the backend cannot load.
    """
    if name == "auto":
        reasons = []
        for candidate in AUTO_ORDER:
            try:
                return create(candidate, model_path, **kwargs)
            except BackendUnavailable as e:
                reasons.append(f"  {candidate}: {e}")
        raise NoBackendError("no backend can run here:\n" + "\n".join(reasons))
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose from auto, {', '.join(REGISTRY)}")
    if name in GPU_BACKENDS:
        count, why = cuda_device_count()
        if not count:  # checked before any GPU library is touched: TensorRT would crash
            raise BackendUnavailable(why)
    module, cls, defaults = REGISTRY[name]
    try:
        backend_cls = getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise BackendUnavailable(f"cannot import {module}: {e}") from None
    return backend_cls(model_path, **{**defaults, **kwargs})
