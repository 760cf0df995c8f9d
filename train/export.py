"""Export a generator to a self-describing ONNX file, checked against ONNX Runtime first.

The graph takes and returns uint8 BGR NHWC frames of any size (livestyle.generator.
PixelWrapper); its metadata carries what `livestyle` reads (livestyle.styles.METADATA_KEYS).
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from livestyle.atomic import write_atomic
from livestyle.frames import UPSCALE_FLAGS
from livestyle.generator import Generator, PixelWrapper, macs_per_pixel
from livestyle.metrics import psnr
from livestyle.styles import FORMAT_VERSION, IO_CONVENTION, read_style

OPSET = 17


def export_onnx(generator: Generator, path: str | Path, *, style: str, description: str = "",
                training: dict | None = None, check_images: list[np.ndarray] | None = None,
                min_psnr: float = 40.0, upscale: str = "linear") -> Path:
    """Write `generator` to `path` atomically; return the path. `upscale`: how the runtime
    enlarges its output to the frame (livestyle.frames.UPSCALE_FLAGS).

    `check_images` (uint8 BGR HxWx3) are run through PyTorch and ONNX Runtime; if the two
    disagree (PSNR below `min_psnr`) nothing is written and ValueError says by how much.
    """
    path = Path(path)
    wrapper = PixelWrapper(generator).eval()
    example = torch.zeros(1, 64, 64, 3, dtype=torch.uint8)
    meta = {
        "livestyle.format": str(FORMAT_VERSION),
        "livestyle.style": style,
        "livestyle.description": description,
        "livestyle.io": IO_CONVENTION,
        "livestyle.generator": json.dumps(generator.cfg.to_dict()),
        "livestyle.macs_per_pixel": str(macs_per_pixel(generator.cfg)),
        "livestyle.training": json.dumps(training or {}),
        "livestyle.upscale": upscale,
    }
    if upscale not in UPSCALE_FLAGS:
        raise ValueError(f"upscale {upscale!r} is not one of {', '.join(UPSCALE_FLAGS)}")
    with torch.no_grad(), warnings.catch_warnings():
        # the exporter's notes on instance norm and reversed slices are expected here
        warnings.simplefilter("ignore")
        buffer = io.BytesIO()
        torch.onnx.export(
            wrapper, (example,), buffer, input_names=["frame"], output_names=["styled"],
            dynamic_axes={"frame": {1: "height", 2: "width"},
                          "styled": {1: "height", 2: "width"}},
            opset_version=OPSET, dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    for img in check_images or []:
        score = parity_psnr(wrapper, data, img)
        if score < min_psnr:
            raise ValueError(
                f"ONNX Runtime and PyTorch disagree on a {img.shape[1]}x{img.shape[0]} "
                f"image: PSNR {score:.1f} dB < {min_psnr} dB; model not written"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return path


def parity_psnr(wrapper: PixelWrapper, model: str | Path | bytes, bgr: np.ndarray) -> float:
    """PSNR of ONNX Runtime's output for `model` (a file or its bytes) against PyTorch's."""
    import onnxruntime as ort

    source = model if isinstance(model, bytes) else str(model)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    frame = np.ascontiguousarray(bgr[None])
    ours = session.run(None, {"frame": frame})[0][0]
    with torch.no_grad():
        ref = wrapper(torch.from_numpy(frame))[0].numpy()
    return psnr(ours, ref)


def set_native_side(src: str | Path, dst: str | Path, side: int) -> Path:
    """Write a copy of the style `src` to `dst` (atomically; it may be `src`) that runs at a
    `side`-px long side: the same weights, only the native side of its training record
    changed, as if it had been trained with `--native-side side` (which changes no step)."""
    if side < 16:
        raise ValueError(f"a native side must be at least 16 px, got {side}")
    training = dict(read_style(src).training, native_side=side)  # StyleError if not a style
    model = onnx.load(str(src))
    props = {p.key: p.value for p in model.metadata_props} | {
        "livestyle.training": json.dumps(training)}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    write_atomic(Path(dst), model.SerializeToString())
    return Path(dst)
