"""Training data: every image under a folder, decoded once, served as random crops.

Images are decoded and shrunk once at start (a 2-core machine cannot afford a JPEG decode per
sample). In teacher mode the teacher runs once per image, on the whole shrunk image (so its
outlines see real context, not a crop border), and the crop is cut from both at the same place.
All randomness comes from one numpy Generator whose state goes into checkpoints, so a resumed
run draws exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def find_images(folder: str | Path) -> list[Path]:
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return paths


HOLDOUT = 10  # one photo in this many never reaches training: it is for evaluation and grids


def is_holdout(path: Path) -> bool:
    """Decided by the file name alone, so every run and every machine splits alike."""
    return zlib.crc32(path.name.encode()) % HOLDOUT == 0


def split_images(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """(training photos, held-out photos) under `folder`."""
    paths = find_images(folder)
    held = [p for p in paths if is_holdout(p)]
    train = [p for p in paths if not is_holdout(p)]
    return (train, held) if train and held else (paths, paths)  # tiny folders: no split


def read_rgb(path: str | Path, long_side: int | None = None) -> np.ndarray:
    """uint8 RGB HxWx3; optionally shrunk (never enlarged) to `long_side`."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot decode image {path}")
    if long_side is not None:
        s = long_side / max(bgr.shape[:2])
        if s < 1:
            bgr = cv2.resize(bgr, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 RGB HxWx3 (or NxHxWx3) -> float [0,1] NCHW."""
    t = torch.from_numpy(np.ascontiguousarray(rgb)).float().div_(255.0)
    if t.ndim == 3:
        t = t.unsqueeze(0)
    return t.permute(0, 3, 1, 2).contiguous()


class CropSampler:
    """Random crops (with random scale and flips) from a preloaded image folder."""

    def __init__(self, folder: str | Path, crop: int, teacher: Callable | None = None,
                 shorter_side: int | None = None):
        self.crop = crop
        # decode at a size where a crop covers a face or a good part of a room
        short = shorter_side or int(crop * 1.5)
        self.images: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []
        for path in split_images(folder)[0]:
            rgb = read_rgb(path)
            s = short / min(rgb.shape[:2])
            rgb = cv2.resize(rgb, None, fx=s, fy=s,
                             interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
            self.images.append(rgb)
            if teacher is not None:
                # teachers speak OpenCV's BGR
                out = teacher(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                self.targets.append(cv2.cvtColor(out, cv2.COLOR_BGR2RGB))

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, rng: np.random.Generator, batch: int):
        """(content, target) float NCHW batches; target is None without a teacher."""
        xs, ys = [], []
        for _ in range(batch):
            i = int(rng.integers(len(self.images)))
            img = self.images[i]
            h, w = img.shape[:2]
            side = min(h, w, int(self.crop * rng.uniform(1.0, 1.5)))
            y0, x0 = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
            flip = bool(rng.integers(2))
            pair = [img] + ([self.targets[i]] if self.targets else [])
            for src, dst in zip(pair, (xs, ys)):
                c = cv2.resize(src[y0:y0 + side, x0:x0 + side], (self.crop, self.crop),
                               interpolation=cv2.INTER_AREA)
                dst.append(c[:, ::-1] if flip else c)
        return to_tensor(np.stack(xs)), (to_tensor(np.stack(ys)) if ys else None)
