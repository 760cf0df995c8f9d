"""`python -m train.gallery`: docs/gallery.jpg, rows = held-out photos, columns = styles.

The photos (faces and rooms) come from the held-out part of ../shared/data/content, so the
gallery shows the styles on pictures their training never saw. Each is framed as a 640x480
camera frame and stylized the way `livestyle run` does it on a CPU (auto scale and backend);
the cells show the results at half size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from livestyle import backends
from livestyle.atomic import write_atomic
from livestyle.frames import resize_to
from livestyle.styles import BUNDLED_DIR, read_style
from .config import DEFAULT_CONTENT
from .data import split_images
from .evaluate import camera_frame, pilot_cells, pilot_frame, product_runner

REPO = Path(__file__).resolve().parents[1]
# faces first (what a webcam sees), then rooms and a scene
ROWS = [("caltech101faces_", 3), ("intel_", 1), ("whitehouse_", 1), ("kodak_", 1), ("coco128", 1)]
CELL = (320, 240)  # half of the 640x480 frame each style runs on


def pick_photos() -> list[Path]:
    held = split_images(DEFAULT_CONTENT)[1]
    picks = []
    for prefix, n in ROWS:
        matches = [p for p in held if p.name.startswith(prefix)]
        picks += [matches[int(i)] for i in np.linspace(0, len(matches) - 1, n)] if matches else []
    return picks


def label(text: str, width: int) -> np.ndarray:
    bar = np.full((28, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def beside_pilot(style_path: Path, out: Path) -> None:
    """Rows: the pilot's photo | the pilot's Starry Night | ours through `livestyle run`'s path
    (the photo framed as a 640x480 camera frame, stylized, shown at the pilot's cell size).
    The pilot's six photos are all in our training set: this compares looks, not how a style
    does on photos it never saw (docs/gallery.jpg does that)."""
    style = read_style(style_path)
    rows = []
    with backends.create("auto", style_path) as backend:
        run = product_runner(backend, style)
        for photo, pilot in pilot_cells():
            ours = cv2.resize(run(pilot_frame(photo)), photo.shape[1::-1],
                              interpolation=cv2.INTER_AREA)
            cells = [cv2.resize(c, (320, 240), interpolation=cv2.INTER_AREA)
                     for c in (photo, pilot, ours)]
            rows.append(np.hstack(cells))
    head = np.hstack([label(t, 320) for t in ("photo (a training photo)",
                                                "pilot (29.7 KMAC/px, full size)",
                                                f"{style.name} (livestyle run, 640x480)")])
    ok, data = cv2.imencode(".jpg", np.vstack([head] + rows), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise SystemExit(f"cannot encode {out}")
    write_atomic(out, data.tobytes())
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.gallery", description=__doc__.split("\n")[0])
    # JPEG: the 10-style grid is 7 MB as PNG and 1 MB at quality 90
    p.add_argument("--out", default=None,
                   help="the image to write (default: docs/gallery.jpg, with --beside-pilot "
                        "docs/beside-pilot.jpg)")
    p.add_argument("--beside-pilot", metavar="STYLE.onnx",
                   help="instead: this style next to the loss-network pilot's Starry Night, on "
                        "the pilot's photos (docs/beside-pilot.jpg)")
    a = p.parse_args(argv)
    if a.beside_pilot:
        beside_pilot(Path(a.beside_pilot), Path(a.out or REPO / "docs" / "beside-pilot.jpg"))
        return 0
    models = sorted(BUNDLED_DIR.glob("*.onnx"))
    if not models:
        raise SystemExit(f"no styles in {BUNDLED_DIR}")
    frames = [camera_frame(q) for q in pick_photos()]
    columns = [("original", [resize_to(f, CELL) for f in frames])]
    for path in models:
        style = read_style(path)
        with backends.create("auto", path) as backend:
            run = product_runner(backend, style)
            columns.append((style.name, [resize_to(run(f), CELL) for f in frames]))
    grid = np.hstack([np.vstack([label(name, CELL[0])] + cells) for name, cells in columns])
    out = Path(a.out or REPO / "docs" / "gallery.jpg")
    out.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(out.suffix or ".jpg", grid, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise SystemExit(f"cannot encode {out}")
    write_atomic(out, data.tobytes())
    print(f"wrote {out} ({len(frames)} photos x {len(models)} styles)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
