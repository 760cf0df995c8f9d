"""Calibrate a toon generator's ink on training photos, after training, at camera scale.

The toon head inks base * (1 - 0.88 * sigmoid(logit)), like the teacher, but the teacher's
lines are all or nothing while BCE training leaves the student's coverage soft: a faint grey
halo where the teacher has no line, half-inked lines where it has one. One gain and one bias
on the logit (sigmoid(gain * logit + bias)) sharpen and shift the coverage; they fold into the
outline channel of the head's last convolution, so the exported graph and its cost do not
change. Both are picked by grid search for the best mean PSNR against the teacher on training
photos framed like a 640x480 camera (never on the held-out photos the evaluation uses), each
run the way `livestyle run` runs it: at the style's native side, then enlarged to the frame the
way its teacher enlarges (the cartoon: pixel for pixel).

`python -m train.ink STYLE.onnx --out NEW.onnx` calibrates an exported toon style again and
writes it enlarged its teacher's way (for a style exported before that was part of a style).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from livestyle.frames import postprocess, preprocess
from livestyle.generator import Generator
from livestyle.metrics import psnr
from livestyle.pipeline import generator_size

from .config import DEFAULT_CONTENT
from .data import split_images
from .evaluate import camera_frame

GAINS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)
BIASES = tuple(np.round(np.arange(-2.0, 1.01, 0.25), 2))


def _parts(generator: Generator, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(base RGB float CHW, outline logit HW) for one uint8 BGR frame, in float32."""
    x = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1].transpose(2, 0, 1))).float() / 255
    with torch.no_grad():
        _, base, logit = generator(x[None], parts=True)
    return base[0].numpy(), logit[0, 0].numpy()


def _inked(base: np.ndarray, logit: np.ndarray, gain: float, bias: float) -> np.ndarray:
    """uint8 BGR frame as the exported graph would make it with this gain and bias."""
    cover = 1.0 / (1.0 + np.exp(-(gain * logit + bias)))
    rgb = base * (1.0 - Generator.INK * cover)
    return np.clip(rgb[::-1].transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def calibrate(generator: Generator, teacher, content_dir, n_photos: int = 16,
              native_side: int | None = None, upscale: str = "linear", log=print) -> dict:
    """Pick the ink gain and bias on `n_photos` training photos and fold them into
    `generator` (in place). `native_side` and `upscale`: the style's (styles.Style). Returns
    what was picked and the PSNR before and after."""
    if generator.cfg.head != "toon":
        raise ValueError("ink calibration is for generators with a toon head")
    train_photos = split_images(content_dir)[0]
    step = max(1, len(train_photos) // n_photos)
    frames = [camera_frame(p) for p in train_photos[::step][:n_photos]]
    generator = generator.eval()
    # sized as `livestyle run` sizes it on a CPU (torch stands for any CPU backend)
    cached = [(_parts(generator, preprocess(f, generator_size(f, None, 1.0, "torch", native_side))),
               f, teacher(f)) for f in frames]

    def score(gain: float, bias: float) -> float:
        return float(np.mean([psnr(postprocess(_inked(b, lg, gain, bias), f, upscale=upscale),
                                   t) for (b, lg), f, t in cached]))

    before = score(1.0, 0.0)
    best = max(((g, b) for g in GAINS for b in BIASES), key=lambda gb: score(*gb))
    after = score(*best)
    if after <= before:
        best, after = (1.0, 0.0), before
    conv = generator.out[-1][-1]  # Sequential(pad, Conv2d): channel 3 is the outline logit
    with torch.no_grad():
        conv.weight[3] *= best[0]
        conv.bias[3] = conv.bias[3] * best[0] + best[1]
    result = {"ink_gain": best[0], "ink_bias": float(best[1]), "photos": len(frames),
              "psnr_before": round(before, 2), "psnr_after": round(after, 2)}
    log(f"ink calibrated on {len(frames)} training photos at 640x480: gain {best[0]:g}, "
        f"bias {best[1]:+g}; PSNR vs teacher {before:.2f} -> {after:.2f} dB")
    return result


def recalibrate(style_path: str | Path, out: str | Path, content_dir=DEFAULT_CONTENT,
                overwrite: bool = False, log=print) -> Path:
    """An exported toon style calibrated again, with its teacher's upscale, written to `out`
    (atomically; an existing `out` only with `overwrite`). ValueError says what is wrong."""
    from livestyle.backends.torch import load_generator
    from livestyle.styles import read_style

    from .export import export_onnx
    from .teachers import get_teacher, upscale_of

    out = Path(out)
    if out.exists() and not overwrite:
        raise ValueError(f"{out} already exists; pass --overwrite to replace it")
    style = read_style(style_path)
    if not style.training.get("teacher"):
        raise ValueError(f"{style_path} was not learned from a teacher: nothing to calibrate")
    teacher = get_teacher(style.training["teacher"])
    upscale = upscale_of(teacher)
    generator = load_generator(style_path)
    result = calibrate(generator, teacher, content_dir, native_side=style.native_side,
                       upscale=upscale, log=log)
    frames = [camera_frame(p) for p in split_images(content_dir)[0][:2]]
    training = style.training | {"recalibrated": result}
    import onnx

    # the name it was trained under (style.name is the file's, which --out may change)
    trained = {m.key: m.value for m in onnx.load(str(style_path), load_external_data=False)
               .metadata_props}["livestyle.style"]
    return export_onnx(generator, out, style=trained, description=style.description,
                       training=training, check_images=frames, upscale=upscale)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.ink", description=__doc__.split("\n")[0])
    p.add_argument("style", help="an exported toon style (.onnx)")
    p.add_argument("--out", required=True, help="where to write the calibrated style")
    p.add_argument("--content-dir", default=str(DEFAULT_CONTENT),
                   help="the photos it was trained on (calibration uses training photos only)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    a = p.parse_args(argv)
    try:
        path = recalibrate(a.style, a.out, a.content_dir, a.overwrite)
    except ValueError as e:
        print(f"python -m train.ink: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
