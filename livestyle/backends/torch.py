"""PyTorch eager, on the CPU or one CUDA device, with the generator rebuilt from the ONNX file.

The ONNX file is the only artifact: its metadata holds the GeneratorConfig and its
initializers are the generator's state dict under the same names, so no second weight file
has to ship.

On CUDA (delay 0, synchronous): frames go through page-locked staging buffers, so the copies
are DMA transfers instead of staged pageable copies; weights are channels_last, the layout the
uint8 NHWC input already has; convolutions run in FP16 under autocast (fp16=True) while every
InstanceNorm gets FP32 input, because its per-channel sums lose precision in FP16.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from livestyle.backends.base import Backend, BackendUnavailable


def load_generator(model_path: str | Path):
    """The torch Generator whose weights and config an exported style carries."""
    import onnx
    import torch
    from onnx import numpy_helper

    from livestyle.generator import Generator, GeneratorConfig

    model = onnx.load(str(model_path))
    meta = {p.key: p.value for p in model.metadata_props}
    if "livestyle.generator" not in meta:
        raise ValueError(f"{model_path} has no livestyle.generator metadata")
    gen = Generator(GeneratorConfig.from_dict(json.loads(meta["livestyle.generator"])))
    weights = {i.name.removeprefix("generator."): torch.from_numpy(numpy_helper.to_array(i).copy())
               for i in model.graph.initializer if i.name.startswith("generator.")}
    missing = set(gen.state_dict()) - set(weights)
    if missing:
        raise ValueError(f"{model_path} lacks weights for {len(missing)} generator tensors "
                         f"(e.g. {sorted(missing)[0]}); re-export it with train/export.py")
    gen.load_state_dict({k: weights[k] for k in gen.state_dict()})
    return gen.eval()


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, model_path: str | Path, device: str = "cpu", threads: int = 0,
                 fp16: bool = True):
        try:
            import torch
        except ImportError as e:
            raise BackendUnavailable("torch is not installed: pip install -e .[train]") from e
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable("torch sees no CUDA device; use --backend auto for the CPU")
        if threads:
            torch.set_num_threads(threads)
        from livestyle.generator import PixelWrapper

        self._torch = torch
        self._device = torch.device(device)
        self._model = PixelWrapper(load_generator(model_path)).to(self._device).eval()
        self._cuda = device.startswith("cuda")
        if self._cuda:
            self._setup_cuda(fp16)

    def infer(self, frame: np.ndarray) -> np.ndarray:
        if self._cuda:
            return self._infer_cuda(self.check_frame(frame))
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(self.check_frame(frame)[None]).to(self._device)
            # .cpu() is a host-device sync point on CUDA
            return self._model(x)[0].cpu().numpy()

    # CUDA only -------------------------------------------------------------------------

    def _setup_cuda(self, fp16: bool) -> None:
        torch = self._torch
        self._fp16 = fp16
        self._model = self._model.to(memory_format=torch.channels_last)
        self._pinned_in = self._pinned_out = None
        if fp16:
            # autocast leaves instance_norm in the dtype it is given (FP16 after an FP16
            # conv); handing it FP32 keeps its statistics exact, and the FP32 params match
            def to_fp32(_module, args):
                return (args[0].float(), *args[1:])

            for m in self._model.modules():
                if isinstance(m, torch.nn.InstanceNorm2d):
                    m.register_forward_pre_hook(to_fp32)

    def _infer_cuda(self, frame: np.ndarray) -> np.ndarray:
        """Synchronous. The result is a pinned buffer reused by the next call (copy to keep)."""
        torch = self._torch
        shape = (1, *frame.shape)
        if self._pinned_in is None or tuple(self._pinned_in.shape) != shape:
            self._pinned_in = torch.empty(shape, dtype=torch.uint8).pin_memory()
            self._pinned_out = torch.empty(shape, dtype=torch.uint8).pin_memory()
        # safe to overwrite: the previous call synchronized after its last use of the buffer
        self._pinned_in.numpy()[0] = frame
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16,
                                                    enabled=self._fp16):
            x = self._pinned_in.to(self._device, non_blocking=True)
            y = self._model(x)
            self._pinned_out.copy_(y, non_blocking=True)
        torch.cuda.current_stream(self._device).synchronize()
        return self._pinned_out.numpy()[0]

    def close(self) -> None:
        self._model = None
        self._pinned_in = self._pinned_out = None
