"""PyTorch eager on the CPU, with the generator rebuilt from the ONNX file (load_generator,
which backends/torch_cuda.py shares).

The ONNX file is the only artifact: its metadata holds the GeneratorConfig and its
initializers are the generator's state dict under the same names, so no second weight file
has to ship.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from livestyle.backends.base import BackendUnavailable, SyncBackend
from livestyle.interrupts import deferred_interrupts


def import_torch():
    """torch, imported with Ctrl-C held (a native library); BackendUnavailable if missing."""
    try:
        with deferred_interrupts():
            import torch
    except ImportError as e:
        raise BackendUnavailable("torch is not installed: pip install -e .[train]") from e
    return torch


def generator_weights(model_path: str | Path):
    """(GeneratorConfig, {name: tensor}) that an exported style carries."""
    import onnx
    import torch
    from onnx import numpy_helper

    from livestyle.generator import GeneratorConfig

    try:
        model = onnx.load(str(model_path))
    except Exception as e:  # noqa: BLE001 - onnx raises its checker's errors, OSError, ...
        # e.g. weights kept in a file outside the model's folder, which onnx refuses to read
        raise ValueError(f"torch cannot load {model_path}: {e}") from None
    meta = {p.key: p.value for p in model.metadata_props}
    if "livestyle.generator" not in meta:
        raise ValueError(f"{model_path} has no livestyle.generator metadata")
    weights = {i.name.removeprefix("generator."): torch.from_numpy(numpy_helper.to_array(i).copy())
               for i in model.graph.initializer if i.name.startswith("generator.")}
    return GeneratorConfig.from_dict(json.loads(meta["livestyle.generator"])), weights


def load_generator(model_path: str | Path):
    """The torch Generator whose weights and config an exported style carries."""
    from livestyle.generator import Generator

    cfg, weights = generator_weights(model_path)
    gen = Generator(cfg)
    missing = set(gen.state_dict()) - set(weights)
    if missing:
        raise ValueError(f"{model_path} lacks weights for {len(missing)} generator tensors "
                         f"(e.g. {sorted(missing)[0]}); re-export it with train/export.py")
    gen.load_state_dict({k: weights[k] for k in gen.state_dict()})
    return gen.eval()


class TorchBackend(SyncBackend):
    """The CPU only; on a GPU, torch_cuda.TorchCudaBackend ("torch-cuda")."""

    name = "torch"

    def __init__(self, model_path: str | Path, threads: int = 0):
        torch = import_torch()
        if threads:
            torch.set_num_threads(threads)
        from livestyle.generator import PixelWrapper

        self._torch = torch
        self._model = PixelWrapper(load_generator(model_path)).eval()

    def run(self, frame: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            x = self._torch.from_numpy(frame[None])
            return self._model(x)[0].numpy()

    def close(self) -> None:
        self._model = None
