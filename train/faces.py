"""Where the faces are in the training photos, for the trainer's face loss (--face-weight).

A painting's strokes may cover a face; on a video call that is the one thing a viewer must
still see. The trainer can weigh the content loss more inside faces, and this finds them once,
ahead of training: `python -m train.faces --content-dir DIR --out FILE` writes
{photo file name: [[x, y, w, h], ...]} in the photo's own pixels (photos without a face are
listed with none, so a file made for another folder is recognised as such).

It needs OpenCV's Haar cascades, which OpenCV 5 keeps in its contrib build (run it in the
evaluation venv, see README). It uses the `alt2` frontal-face cascade; the evaluation counts
faces with the `default` one, so the trainer is not shown the meter's own detector.
The boxes for ../shared/data/content are train/face_boxes.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

from livestyle.atomic import write_atomic

from .data import find_images

CASCADE = "haarcascade_frontalface_alt2.xml"


def find_faces(paths: list[Path]) -> dict[str, list[list[int]]]:
    if not hasattr(cv2, "CascadeClassifier"):
        raise RuntimeError("finding faces needs OpenCV's Haar cascades: run this in a venv with "
                           "opencv-contrib-python-headless (README, evaluation)")
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
    boxes = {}
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if bgr is None:
            continue
        gray = cv2.equalizeHist(bgr)
        side = max(24, min(gray.shape) // 20)
        found = cascade.detectMultiScale(gray, 1.1, 4, minSize=(side, side))
        boxes[path.name] = [[int(v) for v in r] for r in found]
    return boxes


def read_boxes(path: str | Path) -> dict[str, list[list[int]]]:
    """The boxes written by this module; ValueError for anything else."""
    try:
        boxes = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read face boxes from {path}: {e}") from None
    if not isinstance(boxes, dict) or not all(
            isinstance(v, list) and all(isinstance(b, list) and len(b) == 4 for b in v)
            for v in boxes.values()):
        raise ValueError(f"{path} is not a face-box file (python -m train.faces writes them)")
    return boxes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.faces", description=__doc__.split("\n")[0])
    ap.add_argument("--content-dir", required=True, help="the training photos")
    ap.add_argument("--out", required=True, help="JSON file to write (never overwritten)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        print(f"python -m train.faces: {out} exists; remove it or pick another --out",
              file=sys.stderr)
        return 2
    try:
        boxes = find_faces(find_images(args.content_dir))
    except (RuntimeError, ValueError) as e:
        print(f"python -m train.faces: {e}", file=sys.stderr)
        return 2
    write_atomic(out, json.dumps(boxes, indent=0, sort_keys=True) + "\n", overwrite=False)
    n = sum(1 for v in boxes.values() if v)
    print(f"{out}: {sum(map(len, boxes.values()))} faces in {n} of {len(boxes)} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
