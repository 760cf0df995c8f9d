"""Export a generator to a self-describing ONNX file, checked against ONNX Runtime first.

The graph takes and returns uint8 BGR NHWC frames of any size (livestyle.generator.
PixelWrapper); its metadata carries what `livestyle` reads (livestyle.styles.METADATA_KEYS).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from livestyle.generator import Generator, PixelWrapper, macs_per_pixel
from livestyle.styles import FORMAT_VERSION, IO_CONVENTION

OPSET = 17


def export_onnx(generator: Generator, path: str | Path, *, style: str, description: str = "",
                training: dict | None = None, check_images: list[np.ndarray] | None = None,
                min_psnr: float = 40.0) -> Path:
    """Write `generator` to `path` atomically; return the path.

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
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".onnx.tmp", dir=path.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the exporter's notes on instance norm and reversed slices are expected here
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, (example,), tmp, input_names=["frame"], output_names=["styled"],
                dynamic_axes={"frame": {1: "height", 2: "width"},
                              "styled": {1: "height", 2: "width"}},
                opset_version=OPSET, dynamo=False,
            )
        model = onnx.load(tmp)
        onnx.helper.set_model_props(model, meta)
        onnx.checker.check_model(model)
        onnx.save(model, tmp)
        for img in check_images or []:
            psnr = parity_psnr(wrapper, tmp, img)
            if psnr < min_psnr:
                raise ValueError(
                    f"ONNX Runtime and PyTorch disagree on a {img.shape[1]}x{img.shape[0]} "
                    f"image: PSNR {psnr:.1f} dB < {min_psnr} dB; model not written"
                )
        os.chmod(tmp, 0o644)  # mkstemp made it owner-only; a model is for anyone who runs it
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def parity_psnr(wrapper: PixelWrapper, onnx_path: str | Path, bgr: np.ndarray) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    frame = np.ascontiguousarray(bgr[None])
    ours = session.run(None, {"frame": frame})[0][0].astype(np.float64)
    with torch.no_grad():
        ref = wrapper(torch.from_numpy(frame))[0].numpy().astype(np.float64)
    mse = np.mean((ours - ref) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
