"""ONNX Runtime on the CPU: the portable default that works on any fresh laptop."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from livestyle.backends.base import BackendUnavailable, SyncBackend
from livestyle.interrupts import deferred_interrupts


class OnnxRuntimeBackend(SyncBackend):
    name = "onnxruntime"

    def __init__(self, model_path: str | Path, threads: int = 0):
        try:
            with deferred_interrupts():
                import onnxruntime as ort
        except ImportError as e:
            raise BackendUnavailable("onnxruntime is not installed: pip install onnxruntime") from e
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(model_path), opts,
                                                 providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception classes
            raise ValueError(f"onnxruntime cannot load {model_path}: {e}") from None
        self._input = self._session.get_inputs()[0].name

    def run(self, frame: np.ndarray) -> np.ndarray:
        out = self._session.run(None, {self._input: frame[None]})[0]
        return out[0]

    def close(self) -> None:
        self._session = None
