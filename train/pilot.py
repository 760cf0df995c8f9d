"""`python -m train.pilot`: which loss network? Train the same generator with each candidate
on the same photos and show the results side by side (docs/loss-network-pilot.png).

Candidates: EfficientNet-Lite0 with ImageNet weights read after each tapped block's ReLU6
(our default), the same network read at its block outputs, and the same architecture with
random weights (the control: how much do the ImageNet weights matter?).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from .config import DEFAULT_CONTENT, TrainConfig
from .loop import train

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = {
    "Lite0, ReLU6 taps (ours)": "efficientnet-lite0",
    "Lite0, block outputs": "efficientnet-lite0-blocks",
    "Lite0, random weights": "efficientnet-lite0-random",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.pilot", description=__doc__.split("\n")[0])
    p.add_argument("--style-image", default=str(DEFAULT_CONTENT.parent / "styles" / "starry_night.jpg"))
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--out", default=str(REPO / "docs" / "loss-network-pilot.png"))
    a = p.parse_args(argv)
    columns, photos = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for label, net in CANDIDATES.items():
            cfg = TrainConfig(name="pilot", style_image=a.style_image, loss_net=net,
                              steps=a.steps, crop=a.crop, sample_every=a.steps,
                              checkpoint_every=a.steps, run_dir=str(Path(tmp) / net))
            train(cfg, export=False)
            grid = cv2.imread(str(Path(tmp) / net / "pilot" / f"samples_{a.steps:06d}.png"))
            half = grid.shape[1] // 2
            photos = grid[:, :half]
            columns.append((label, grid[:, half:]))
    cells = [("photo", photos)] + columns
    width = photos.shape[1]
    bars = []
    for label, _ in cells:
        bar = np.full((26, width, 3), 255, np.uint8)
        cv2.putText(bar, label, (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        bars.append(bar)
    out = np.hstack([np.vstack([bar, img]) for bar, (_, img) in zip(bars, cells)])
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(a.out, out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
