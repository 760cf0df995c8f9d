"""PyTorch eager on one CUDA device (delay 0, synchronous), with the generator rebuilt from
the ONNX file (backends/torch.py load_generator): the GPU backend where TensorRT is absent.

Frames go through page-locked staging buffers, so the copies are DMA transfers instead of
staged pageable copies; weights are channels_last, the layout the uint8 NHWC input already
has; convolutions run in FP16 under autocast (fp16=True) while every InstanceNorm gets FP32
input, because its per-channel sums lose precision in FP16.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from livestyle.backends.base import BackendUnavailable, SyncBackend
from livestyle.backends.torch import import_torch, load_generator


def pinned(torch, shape: tuple[int, ...]):
    """A uint8 tensor allocated page-locked (not a pageable one copied into pinned memory,
    which `.pin_memory()` does: twice the allocations and a copy)."""
    return torch.empty(shape, dtype=torch.uint8, pin_memory=True)


class TorchCudaBackend(SyncBackend):
    name = "torch-cuda"

    def __init__(self, model_path: str | Path, device: str = "cuda", threads: int = 0,
                 fp16: bool = True):
        """`threads` is accepted like every backend's and unused: the GPU does the work."""
        torch = import_torch()
        if not torch.cuda.is_available():
            raise BackendUnavailable("torch sees no CUDA device (a CPU-only torch build, or no "
                                     "GPU); use --backend auto for the CPU")
        from livestyle.generator import PixelWrapper

        self._torch = torch
        # cuDNN times its convolution algorithms for each new input shape and keeps the
        # fastest: a slower first frame at each frame size, faster frames after it (a live
        # stream keeps one size)
        torch.backends.cudnn.benchmark = True
        self._device = torch.device(device)
        self._fp16 = fp16
        # what `bench` records: convolutions in FP16 under autocast, instance norm in FP32
        self.precision = "fp16 (autocast, norms in fp32)" if fp16 else "fp32"
        model = PixelWrapper(load_generator(model_path)).to(self._device).eval()
        self._model = model.to(memory_format=torch.channels_last)
        self._pinned_in = self._pinned_out = None
        if fp16:
            # autocast leaves instance_norm in the dtype it is given (FP16 after an FP16
            # conv); handing it FP32 keeps its statistics exact, and the FP32 params match
            def to_fp32(_module, args):
                return (args[0].float(), *args[1:])

            for m in self._model.modules():
                if isinstance(m, torch.nn.InstanceNorm2d):
                    m.register_forward_pre_hook(to_fp32)

    def run(self, frame: np.ndarray) -> np.ndarray:
        """Synchronous. The result is a pinned buffer reused by the next call (copy to keep)."""
        torch = self._torch
        shape = (1, *frame.shape)
        if self._pinned_in is None or tuple(self._pinned_in.shape) != shape:
            self._pinned_in, self._pinned_out = pinned(torch, shape), pinned(torch, shape)
        # safe to overwrite: the previous call synchronized after its last use of the buffer
        self._pinned_in.numpy()[0] = frame
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16,
                                                    enabled=self._fp16):
            x = self._pinned_in.to(self._device, non_blocking=True)
            y = self._model(x)
            self._pinned_out.copy_(y, non_blocking=True)
        torch.cuda.current_stream(self._device).synchronize()  # a host-device sync point
        return self._pinned_out.numpy()[0]

    def close(self) -> None:
        self._model = None
        self._pinned_in = self._pinned_out = None
