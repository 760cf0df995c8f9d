"""Where the training photos show faces, for `livestyle train --face-weight`.

The boxes come from a face detector the look meter never uses (MediaPipe's BlazeFace, full
range; train/lookmeter.py counts faces with OpenCV's Haar cascade), so a style trained to keep
faces is not graded by the detector that taught it. Only training photos are listed: the
held-out ones never reach the trainer.

    python -m train.faces --content-dir ../shared/data/content --out train/content_faces.json

(needs mediapipe==0.10.14, best in an environment of its own) writes photo name -> boxes as
fractions of its width and height; `livestyle train --face-weight W --face-boxes FILE` needs
only that file, not MediaPipe (without --face-boxes: train/content_faces.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from livestyle.atomic import write_atomic

CONTENT_FACES = Path(__file__).with_name("content_faces.json")
MIN_SCORE = 0.6


def load_boxes(path: str | Path = CONTENT_FACES) -> dict[str, list[tuple[float, ...]]]:
    """Photo name -> face boxes (x, y, w, h as fractions of the photo's width and height)."""
    try:
        faces = json.loads(Path(path).read_text())["faces"]
        return {name: [tuple(float(v) for v in b) for b in boxes] for name, boxes in faces.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"cannot read the face boxes {path} ({e!r}); make them with "
                         "`python -m train.faces --content-dir DIR --out FILE`") from None


def face_map(h: int, w: int, boxes) -> np.ndarray:
    """uint8 (h, w) map, 255 inside each face's ellipse (the box, a little taller, to take in
    the forehead and chin the detector's box crops), soft at the edge; 0 elsewhere."""
    m = np.zeros((h, w), np.uint8)
    for bx, by, bw, bh in boxes:
        centre = (int(round((bx + bw / 2) * w)), int(round((by + bh * 0.45) * h)))
        axes = (max(1, int(round(bw * w * 0.55))), max(1, int(round(bh * h * 0.65))))
        cv2.ellipse(m, centre, axes, 0, 0, 360, 255, -1)
    k = max(3, (min(h, w) // 40) | 1)
    return cv2.GaussianBlur(m, (k, k), 0)


def detect(rgb: np.ndarray, detector) -> list[tuple[float, float, float, float]]:
    """BlazeFace boxes of an RGB photo, clipped to it, as fractions of its size."""
    found = detector.process(np.ascontiguousarray(rgb)).detections or []
    boxes = []
    for d in found:
        if d.score[0] < MIN_SCORE:
            continue
        b = d.location_data.relative_bounding_box
        x0, y0 = max(0.0, b.xmin), max(0.0, b.ymin)
        x1, y1 = min(1.0, b.xmin + b.width), min(1.0, b.ymin + b.height)
        if x1 > x0 and y1 > y0:
            boxes.append(tuple(round(v, 4) for v in (x0, y0, x1 - x0, y1 - y0)))
    return boxes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.faces", description=__doc__.split("\n")[0])
    ap.add_argument("--content-dir", required=True)
    ap.add_argument("--out", required=True, help="the JSON file to write (train/content_faces.json "
                    "is the one for ../shared/data/content)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise SystemExit(f"{out} exists; pass --overwrite to replace it")
    try:
        from mediapipe.python.solutions.face_detection import FaceDetection
    except ImportError:
        raise SystemExit("train.faces needs MediaPipe's bundled BlazeFace: "
                         "pip install mediapipe==0.10.14 (in a separate virtual environment)")
    from .data import read_rgb, split_images

    photos = split_images(args.content_dir)[0]
    faces = {}
    with FaceDetection(model_selection=1, min_detection_confidence=MIN_SCORE) as detector:
        for path in photos:
            try:
                rgb = read_rgb(path, long_side=1024)
            except ValueError:
                continue
            boxes = detect(rgb, detector)
            if boxes:
                faces[path.name] = boxes
    doc = {"about": [f"Faces BlazeFace (MediaPipe 0.10.14, full range, score >= {MIN_SCORE}) "
                     f"finds in the {len(photos)} training photos of {Path(args.content_dir).name}; "
                     "boxes (x, y, w, h) as fractions of each photo's width and height.",
                     "Made by `python -m train.faces`; read by `livestyle train --face-weight`."],
           "faces": faces}
    write_atomic(out, json.dumps(doc, indent=1) + "\n", overwrite=args.overwrite)
    print(f"{sum(map(len, faces.values()))} faces in {len(faces)} of {len(photos)} photos -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
