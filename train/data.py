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

from .faces import face_map

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


def truncated_jpeg(path: str | Path) -> bool:
    """A JPEG whose end-of-image marker is missing: cut short (a broken download or copy).
    libjpeg decodes what is there with a warning and grey below; training must not see it."""
    if Path(path).suffix.lower() not in (".jpg", ".jpeg"):
        return False
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":  # not a JPEG at all: the decoder says so
            return False
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 4096))
        tail = f.read().rstrip(b"\x00")
    return b"\xff\xd9" not in tail  # entropy-coded data never holds FF D9 (FFs are stuffed)


def read_rgb(path: str | Path, long_side: int | None = None) -> np.ndarray:
    """uint8 RGB HxWx3; optionally shrunk (never enlarged) to `long_side`. ValueError for a
    file that is not a whole image (unreadable, undecodable or a truncated JPEG)."""
    try:
        if truncated_jpeg(path):
            raise ValueError(f"truncated JPEG (no end marker): {path}")
    except OSError as e:
        raise ValueError(f"cannot read image {path} ({e.strerror})") from None
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
                 long_side: int = 0, jitter: float = 1.5, progress: Callable | None = None,
                 faces: dict | None = None):
        """`long_side`: photos are resized to it (0: to a short side of 1.5 crops). A teacher
        with `parts` (the cartoon) also yields its layers: targets then have 7 channels,
        RGB result, RGB flat colours, ink coverage. `faces` (photo name -> boxes, as
        train/faces.py's load_boxes gives) adds a face map to every crop. `progress(done,
        total)` is called as the photos (and the teacher's targets) are prepared."""
        self.crop, self.jitter = crop, jitter
        self.images: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []
        self.faces: list[np.ndarray] | None = [] if faces is not None else None
        paths = split_images(folder)[0]
        parts = getattr(teacher, "parts", None)
        self.skipped: list[tuple[Path, str]] = []  # (photo, why) for each unusable file
        for n, path in enumerate(paths):
            try:
                rgb = read_rgb(path)
            except ValueError as e:
                self.skipped.append((path, str(e).replace(str(path), "").strip(" :")))
                if progress is not None:
                    progress(n + 1, len(paths))
                continue
            s = (long_side / max(rgb.shape[:2])) if long_side else int(crop * 1.5) / min(rgb.shape[:2])
            rgb = cv2.resize(rgb, None, fx=s, fy=s,
                             interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
            self.images.append(rgb)
            if self.faces is not None:
                self.faces.append(face_map(*rgb.shape[:2], faces.get(path.name, []))[..., None])
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # teachers speak OpenCV's BGR
            if parts is not None:
                flat, cover = parts(bgr)
                out = cv2.cvtColor(teacher(bgr), cv2.COLOR_BGR2RGB)
                self.targets.append(np.dstack([out, cv2.cvtColor(flat, cv2.COLOR_BGR2RGB),
                                               np.rint(cover * 255).astype(np.uint8)]))
            elif teacher is not None:
                self.targets.append(cv2.cvtColor(teacher(bgr), cv2.COLOR_BGR2RGB))
            if progress is not None:
                progress(n + 1, len(paths))
        if not self.images:
            raise ValueError(f"none of the {len(paths)} photos under {folder} could be read; "
                             "pass --content-dir with a folder of JPEG or PNG photos")

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, rng: np.random.Generator, batch: int):
        """(content, target, faces) float NCHW batches; target is None without a teacher,
        faces (N,1,H,W in [0,1]) without face boxes."""
        xs, ys, fs = [], [], []
        for _ in range(batch):
            i = int(rng.integers(len(self.images)))
            img = self.images[i]
            h, w = img.shape[:2]
            side = min(h, w, int(self.crop * rng.uniform(1.0, self.jitter)))
            y0, x0 = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
            flip = bool(rng.integers(2))
            layers = [(img, xs)] + ([(self.targets[i], ys)] if self.targets else []) \
                + ([(self.faces[i], fs)] if self.faces is not None else [])
            for src, dst in layers:
                c = src[y0:y0 + side, x0:x0 + side]
                if side != self.crop:  # OpenCV resizes at most 4 channels at a time
                    c = np.dstack([cv2.resize(c[..., i:i + 3], (self.crop, self.crop),
                                              interpolation=cv2.INTER_AREA)
                                   for i in range(0, c.shape[2], 3)])
                dst.append(c[:, ::-1] if flip else c)
        return tuple(to_tensor(np.stack(b)) if b else None for b in (xs, ys, fs))
