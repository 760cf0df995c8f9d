"""Quality of the shipped styles, measured on photos and clips that training never saw.

`python -m train.evaluate [--styles a,b]` writes docs/quality.md and docs/quality.json:
- painting styles: style and content loss (the training definitions) on held-out photos;
- teacher styles: PSNR and SSIM of the student against its teacher on held-out photos;
- every style: temporal stability on the clips in ../shared/data/video: the flow-warped error
  between consecutive stylized frames (Lai et al. 2018), next to the same figure for the input;
  and the output change for a 2 px shift and for sigma=2/255 noise, next to the input's.
Everything runs the exported ONNX through ONNX Runtime, as users get it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from livestyle.backends.onnxruntime import OnnxRuntimeBackend
from livestyle.styles import BUNDLED_DIR, read_style, style_files
from train import losses
from train.config import DEFAULT_CONTENT
from train.data import read_rgb, split_images, to_tensor
from train.lossnet import build_loss_net
from train.teachers import get_teacher

REPO = Path(__file__).resolve().parents[1]
VIDEOS = DEFAULT_CONTENT.parent / "video"
EVAL_SIDE = 256  # held-out photos are evaluated at this long side
MAX_FRAMES = 60  # per clip


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over the luminance (Wang et al. 2004, 11x11 Gaussian window, sigma 1.5)."""
    x = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_BGR2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda im: cv2.GaussianBlur(im, (11, 11), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(s.mean())


def read_clip(path: Path, limit: int | None = MAX_FRAMES) -> list[np.ndarray]:
    """The first `limit` frames of a video (all of them for None), decoded by OpenCV."""
    cap, frames = cv2.VideoCapture(str(path)), []
    while limit is None or len(frames) < limit:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def warped_error(frames: list[np.ndarray], guide: list[np.ndarray]) -> float:
    """Mean |frame_t - warp(frame_t-1)| (0-255) over pixels the flow of `guide` trusts.

    Flow is computed on the input video (`guide`), backward from t to t-1; pixels failing a
    forward-backward consistency check (occlusions, flow errors) are left out."""
    errs = []
    for t in range(1, len(frames)):
        g0 = cv2.cvtColor(guide[t - 1], cv2.COLOR_BGR2GRAY)
        g1 = cv2.cvtColor(guide[t], cv2.COLOR_BGR2GRAY)
        args = (None, 0.5, 3, 15, 3, 5, 1.2, 0)
        back = cv2.calcOpticalFlowFarneback(g1, g0, *args)  # t -> t-1
        fwd = cv2.calcOpticalFlowFarneback(g0, g1, *args)  # t-1 -> t
        h, w = g0.shape
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        mx, my = gx + back[..., 0], gy + back[..., 1]
        fwd_at = cv2.remap(fwd, mx, my, cv2.INTER_LINEAR)
        round_trip = np.linalg.norm(back + fwd_at, axis=2)
        ok = round_trip < 0.01 * (np.linalg.norm(back, axis=2) ** 2 + np.linalg.norm(fwd_at, axis=2) ** 2) + 0.5
        warped = cv2.remap(frames[t - 1], mx, my, cv2.INTER_LINEAR)
        diff = np.abs(frames[t].astype(np.float32) - warped.astype(np.float32)).mean(axis=2)
        errs.append(diff[ok].mean())
    return float(np.mean(errs))


def perturbation_changes(run, photos: list[np.ndarray]) -> dict:
    """Mean |change| (0-255) for a 2 px shift and for sigma=2/255 noise: the input's own
    change, and the output's (re-aligned after the shift, so only flicker counts)."""
    rng = np.random.default_rng(0)
    shift_in, shift_out, noise_in, noise_out = [], [], [], []
    for p in photos:
        out = run(p).astype(np.float32)
        shifted = np.roll(p, 2, axis=1)
        out_s = np.roll(run(shifted), -2, axis=1).astype(np.float32)
        m = 8  # away from the wrapped border
        shift_in.append(np.abs(shifted[:, m:-m].astype(np.float32) - p[:, m:-m]).mean())
        shift_out.append(np.abs(out_s[:, m:-m] - out[:, m:-m]).mean())
        noisy = np.clip(p + rng.normal(0, 2, p.shape), 0, 255).astype(np.uint8)
        noise_in.append(np.abs(noisy.astype(np.float32) - p).mean())
        noise_out.append(np.abs(run(noisy).astype(np.float32) - out).mean())
    return {"shift_2px_in": float(np.mean(shift_in)), "shift_2px_out": float(np.mean(shift_out)),
            "noise_in": float(np.mean(noise_in)),
            "noise_out": float(np.mean(noise_out))}


def evaluate_style(path: Path, photos: list[np.ndarray], clips: dict[str, list[np.ndarray]],
                   loss_net) -> dict:
    style = read_style(path)
    backend = OnnxRuntimeBackend(path)
    run = lambda bgr: backend.infer(bgr).copy()  # noqa: E731
    training = style.training
    row = {"style": style.name, "macs_per_pixel": style.macs_per_pixel,
           "file_kb": round(path.stat().st_size / 1024), "steps": training.get("steps_done"),
           "train_seconds": training.get("seconds_this_run"),
           "stability_weight": training.get("stability_weight")}
    outputs = [run(p) for p in photos]
    if training.get("teacher"):
        teacher = get_teacher(training["teacher"])
        targets = [teacher(p) for p in photos]
        row["psnr_vs_teacher"] = round(float(np.mean([psnr(o, t) for o, t in zip(outputs, targets)])), 2)
        row["ssim_vs_teacher"] = round(float(np.mean([ssim(o, t) for o, t in zip(outputs, targets)])), 3)
    elif training.get("style_image") and Path(training["style_image"]).is_file():
        with torch.no_grad():
            s_feats, _ = loss_net(to_tensor(read_rgb(training["style_image"], training.get("style_side", 384))))
            grams = [losses.gram(f) for f in s_feats]
            st, ct = [], []
            for p, o in zip(photos, outputs):
                x = to_tensor(cv2.cvtColor(p, cv2.COLOR_BGR2RGB))
                y = to_tensor(cv2.cvtColor(o, cv2.COLOR_BGR2RGB))
                ys, yc = loss_net(y)
                _, xc = loss_net(x)
                st.append(float(losses.style_loss(ys, grams)))
                ct.append(float(losses.content_loss(yc, xc)))
        row["style_loss"] = round(float(np.mean(st)), 4)
        row["content_loss"] = round(float(np.mean(ct)), 4)
    row.update({k: round(v, 2) for k, v in perturbation_changes(run, photos[:8]).items()})
    row["clips"] = {}
    for name, frames in clips.items():
        styled = [run(f) for f in frames]
        row["clips"][name] = {"warped_error_out": round(warped_error(styled, frames), 2),
                              "warped_error_in": round(warped_error(frames, frames), 2)}
    backend.close()
    return row


def markdown(rows: list[dict]) -> str:
    clip_names = sorted({c for r in rows for c in r["clips"]})
    lines = ["# Quality of the bundled styles", "",
             "Measured by `python -m train.evaluate` on held-out photos (never used in training) "
             "and the clips in ../shared/data/video, through ONNX Runtime.",
             "Stability columns are mean absolute changes in 0-255 units: the output's change "
             "(re-aligned) for a 2 px input shift and for sigma=2/255 input noise, with the "
             "input's own change in brackets; warped error is the flow-warped difference between "
             "consecutive frames (Lai et al. 2018), output / input.", "",
             "| style | style loss | content loss | PSNR vs teacher | SSIM vs teacher | shift 2px out (in) | noise out (in) | "
             + " | ".join(f"warped err {c} (out / in)" for c in clip_names) + " |",
             "|---" * (7 + len(clip_names)) + "|"]
    for r in rows:
        cells = [r["style"], r.get("style_loss", ""), r.get("content_loss", ""),
                 r.get("psnr_vs_teacher", ""), r.get("ssim_vs_teacher", ""),
                 f"{r['shift_2px_out']} ({r['shift_2px_in']})", f"{r['noise_out']} ({r['noise_in']})"]
        cells += [f"{r['clips'][c]['warped_error_out']} / {r['clips'][c]['warped_error_in']}"
                  if c in r["clips"] else "" for c in clip_names]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--styles", default=None, help="comma list of names or .onnx paths (default: engines/)")
    p.add_argument("--photos", type=int, default=24, help="held-out photos to use")
    p.add_argument("--out", default=str(REPO / "docs" / "quality"), help="output stem (.md/.json)")
    a = p.parse_args(argv)
    paths = ([Path(s) if s.endswith(".onnx") else style_files()[s] for s in a.styles.split(",")]
             if a.styles else sorted(BUNDLED_DIR.glob("*.onnx")))
    held = split_images(DEFAULT_CONTENT)[1]
    picks = [held[int(i)] for i in np.linspace(0, len(held) - 1, min(a.photos, len(held)))]
    photos = [cv2.cvtColor(read_rgb(q, EVAL_SIDE), cv2.COLOR_RGB2BGR) for q in picks]
    clips = {v.stem: read_clip(v) for v in sorted(VIDEOS.glob("*.mp4"))}
    loss_net = build_loss_net("efficientnet-lite0")
    rows = []
    for path in paths:
        print(f"evaluating {path.stem} ...", flush=True)
        rows.append(evaluate_style(path, photos, clips, loss_net))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    out.with_suffix(".md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
