"""Quality of the shipped styles, measured on photos and clips that training never saw.

Every frame goes the way `livestyle run` sends it on a CPU: held-out photos cropped to
640x480, the scale `--scale auto` picks, the `auto` backend (OpenVINO here), back to 640x480.
`python -m train.evaluate [--styles a,b]` writes docs/quality.md and docs/quality.json:
- painting styles: the look measured with a network the trainer never uses (train/lookmeter.py):
  style ratio (lower is more painting), scene similarity and faces kept;
- teacher styles: PSNR and SSIM of the student against its teacher on the same 640x480 frame
  (`--by-source STYLE`: on every held-out photo and on frames of the clips, by where they
  come from, to see which kinds of picture a teacher style fits worst);
- every style: temporal stability on the clips in ../shared/data/video: the flow-warped error
  between consecutive stylized frames (Lai et al. 2018), next to the same figure for the input,
  with run's default temporal steadying and without it (`--clips`: only these, again);
  and the output change for a 2 px shift and for sigma=2/255 noise, next to the input's.
Everything runs the exported ONNX through the backend `livestyle run` picks, as users get it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from livestyle import backends
from livestyle.atomic import write_atomic
from livestyle.frames import postprocess, preprocess
from livestyle.metrics import psnr
from livestyle.pipeline import generator_size
from livestyle.steady import DEFAULT_STRENGTH, Steadier
from livestyle.styles import BUNDLED_DIR, StyleError, read_style, resolve, style_files
from . import lookmeter
from .config import DEFAULT_CONTENT
from .data import read_rgb, split_images
from .teachers import get_teacher

REPO = Path(__file__).resolve().parents[1]
VIDEOS = DEFAULT_CONTENT.parent / "video"
EVAL_SIZE = (640, 480)  # held-out photos are evaluated at the camera size users run
MAX_FRAMES = 60  # per clip


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


def camera_frame(path: Path, size: tuple[int, int] = EVAL_SIZE) -> np.ndarray:
    """A photo as a camera of `size` (w, h) would frame it: scaled to cover, centre-cropped."""
    bgr = cv2.cvtColor(read_rgb(path), cv2.COLOR_RGB2BGR)
    h, w = bgr.shape[:2]
    s = max(size[0] / w, size[1] / h)
    bgr = cv2.resize(bgr, (max(size[0], round(w * s)), max(size[1], round(h * s))),
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    y0, x0 = (bgr.shape[0] - size[1]) // 2, (bgr.shape[1] - size[0]) // 2
    return np.ascontiguousarray(bgr[y0:y0 + size[1], x0:x0 + size[0]])


# the loss-network pilot's Starry Night grid (../shared/notes/pilot_effnet_starry.png): the
# painting, then six photos over their stylized versions, 240 px high; x where each cell ends
PILOT_GRID = DEFAULT_CONTENT.parents[1] / "notes" / "pilot_effnet_starry.png"
PILOT_CUTS = (606, 969, 1396, 1588, 1950, 2110, 2471)


def pilot_cells(grid_path: Path = PILOT_GRID) -> list[tuple[np.ndarray, np.ndarray]]:
    """(photo, the pilot's Starry Night of it) for each of the pilot grid's six photos."""
    grid = cv2.imread(str(grid_path))
    if grid is None:
        raise SystemExit(f"cannot read the pilot's grid {grid_path}")
    return [(grid[:240, x0:x1], grid[240:480, x0:x1]) for x0, x1 in zip(PILOT_CUTS, PILOT_CUTS[1:])]


def pilot_frame(photo: np.ndarray) -> np.ndarray:
    """One of the pilot's photos as a 640x480 camera frame (they are 240 px high in the grid)."""
    return cv2.resize(photo, EVAL_SIZE, interpolation=cv2.INTER_CUBIC)


def beside_pilot_figures(path: Path) -> str:
    """The meter's figures for the pilot's grid and for a Starry Night style on the pilot's
    own photos through `livestyle run`'s path: the two looks on the same pictures. All six are
    in our training set (the pilot drew them from ../shared/data/content), so this compares
    looks only; how a style does on unseen photos is the held-out table's job."""
    cells = pilot_cells()
    look = lookmeter.Look(lookmeter.LookMeter(),
                          cv2.imread(str(DEFAULT_CONTENT.parent / "styles" / "starry_night.jpg")))
    style = read_style(path)
    with backends.create("auto", path) as backend:
        run = product_runner(backend, style)
        ours = lookmeter.measure(look, [(pilot_frame(p), run(pilot_frame(p))) for p, _ in cells])
    pilot = lookmeter.measure(look, cells)
    return "\n".join(f"{name}: style ratio {m['style_ratio']}, scene {m['scene']}"
                     for name, m in (("pilot's grid", pilot), (style.name, ours)))


def painting_path(image: str) -> Path:
    """A style's recorded painting: as given, else relative to the repository (the bundled
    styles record ../shared/data/styles/..., relative to where they were trained)."""
    path = Path(image)
    return path if path.is_file() or path.is_absolute() else REPO / path


def product_runner(backend, style, steadier: Steadier | None = None):
    """frame -> styled frame, the way the pipeline does it (auto scale, the style's native
    side and upscale, blend 1); with a `steadier`, consecutive calls are frames of one video."""
    def run(bgr: np.ndarray) -> np.ndarray:
        small = preprocess(bgr, generator_size(bgr, None, 1.0, backend.name, style.native_side))
        styled = backend.infer(small)
        if steadier is not None:
            styled = steadier(small, styled)
        return postprocess(styled, bgr, upscale=style.upscale)
    return run


def model_ms(backend, frame: np.ndarray, n: int = 30) -> float:
    """Median milliseconds of the backend alone on `frame` (after 5 warm-up runs)."""
    import time

    times = []
    for i in range(n + 5):
        t = time.perf_counter()
        backend.infer(frame)
        if i >= 5:
            times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def face_photos() -> dict[str, np.ndarray]:
    """The held-out photos with faces in them (train/heldout_faces.json), framed at 640x480."""
    held = {p.name: p for p in split_images(DEFAULT_CONTENT)[1]}
    return {name: camera_frame(held[name]) for name in lookmeter.labelled_faces()}


def measure_real_faces(row: dict, run, photos: dict[str, np.ndarray]) -> str:
    kept, total, lost = lookmeter.real_faces_kept(run, photos)
    row.update({"real_faces_kept": kept, "real_faces": total, "real_faces_lost_in": lost})
    return f"{kept}/{total} faces kept" + (f", lost in {', '.join(lost)}" if lost else "")


def evaluate_style(path: Path, photos: list[np.ndarray], clips: dict[str, list[np.ndarray]],
                   meter: lookmeter.LookMeter, with_faces: dict[str, np.ndarray]) -> dict:
    style = read_style(path)
    training = style.training
    with backends.create("auto", path) as backend:
        run = product_runner(backend, style)
        size = generator_size(photos[0], None, 1.0, backend.name, style.native_side)
        row = {"style": style.name, "macs_per_pixel": style.macs_per_pixel,
               "backend": backend.name, "processing_size": list(size),
               "ms_640x480": round(model_ms(backend, preprocess(photos[0], size)), 1),
               "file_kb": round(path.stat().st_size / 1024), "steps": training.get("steps_done"),
               "train_seconds": training.get("seconds_this_run"),
               "stability_weight": training.get("stability_weight")}
        outputs = [run(p) for p in photos]
        if training.get("teacher"):
            teacher = get_teacher(training["teacher"])
            targets = [teacher(p) for p in photos]
            row["psnr_vs_teacher"] = round(float(np.mean([psnr(o, t) for o, t in zip(outputs, targets)])), 2)
            row["ssim_vs_teacher"] = round(float(np.mean([ssim(o, t) for o, t in zip(outputs, targets)])), 3)
        elif training.get("style_image"):
            image = training["style_image"].split(",")[training.get("style_index", 0)]
            look = lookmeter.Look(meter, cv2.imread(str(painting_path(image))))
            row.update(lookmeter.measure(look, list(zip(photos, outputs))))
        if with_faces:
            measure_real_faces(row, run, with_faces)
        row.update({k: round(v, 2) for k, v in perturbation_changes(run, photos[:8]).items()})
        row["clips"] = clip_stability(backend, style, clips)
    return row


def clip_stability(backend, style, clips: dict[str, list[np.ndarray]]) -> dict:
    """Per clip, the warped error of the output over the input's, with the temporal steadying
    `livestyle run` applies by default (steady.Steadier) and without it (`ratio_unsteadied`)."""
    rows = {}
    for name, frames in clips.items():
        steadied = list(map(product_runner(backend, style, Steadier(DEFAULT_STRENGTH)), frames))
        unsteadied = list(map(product_runner(backend, style), frames))
        out_err, in_err = warped_error(steadied, frames), warped_error(frames, frames)
        rows[name] = {"warped_error_out": round(out_err, 2), "warped_error_in": round(in_err, 2),
                      "ratio": round(out_err / in_err, 2),
                      "ratio_unsteadied": round(warped_error(unsteadied, frames) / in_err, 2)}
    return rows


def remeasure(out: Path, what: str, measure) -> int:
    """`measure(row, style, backend)` -> a line to print, for every row of the existing --out
    table whose style is installed (the rest kept as they are); the table rewritten."""
    rows = json.loads(out.with_suffix(".json").read_text())
    files = style_files()
    for row in rows:
        path = files.get(row["style"])
        if path is None:
            print(f"{row['style']}: not installed, its {what} kept", flush=True)
            continue
        with backends.create("auto", path) as backend:
            print(f"{row['style']}: {measure(row, read_style(path), backend)}", flush=True)
    write_atomic(out.with_suffix(".json"), json.dumps(rows, indent=2))
    write_atomic(out.with_suffix(".md"), markdown(rows))
    return 0


def restability(out: Path) -> int:
    """Measure the clips of every row in the existing --out table again, the rest kept
    (after a change to how `livestyle run` treats consecutive frames)."""
    clips = {v.stem: read_clip(v) for v in sorted(VIDEOS.glob("*.mp4"))}

    def measure(row, style, backend):
        row["clips"] = clip_stability(backend, style, clips)
        return ", ".join(f"{c} {v['ratio']} ({v['ratio_unsteadied']})" for c, v in row["clips"].items())
    return remeasure(out, "clip figures are", measure)


def refaces(out: Path) -> int:
    """Count the faces kept (train/heldout_faces.json) of every row in the existing --out
    table again, the rest kept."""
    photos = face_photos()
    return remeasure(out, "face figures are", lambda row, style, backend: measure_real_faces(
        row, product_runner(backend, style), photos))


def markdown(rows: list[dict]) -> str:
    clip_names = sorted({c for r in rows for c in r["clips"]})
    lines = ["# Quality of the bundled styles", "",
             "Measured by `python -m train.evaluate` on held-out photos (never used in training) "
             "cropped to 640x480 and on the clips in ../shared/data/video, each frame sent the way "
             "`livestyle run` sends it on a CPU (auto scale, the style's native side, auto backend).",
             "Paintings are judged with a network the trainer never uses (EfficientNet-Lite2, "
             "train/lookmeter.py): style ratio, the Gram distance of the output to the painting over "
             "that of the photo, frames viewed at 320x240 and 160x120 (1.0: not stylized; the "
             "loss-network pilot's Starry Night scores 0.35; floor: at most 0.40); scene, the cosine "
             "similarity of output and photo in its deep features (the pilot: 0.52); faces, those "
             "OpenCV's Haar detector finds in the photos that it also finds in the outputs: "
             "over its boxes in the 24 photos (8 of its 23 are not faces: a toilet floor, a shirt, "
             "a bag), and over the 57 boxes that are faces, by eye, in all 89 held-out photos "
             "(train/heldout_faces.json; floor: 95%).",
             "PSNR/SSIM: against the teacher on the same 640x480 frame (floor: 25 dB, 0.80). "
             "Warped error: flow-warped difference between consecutive frames (Lai et al. 2018), "
             "output / input = ratio (floor: at most 4), with the temporal steadying `livestyle run` "
             "applies by default; in brackets the ratio without it (`--steady 0`). Shift/noise: the output's mean change "
             "(0-255, re-aligned) for a 2 px shift and sigma=2/255 noise, the input's own in brackets. "
             "ms: the model alone on one 640x480 frame at the size it runs at (w x h), median of 30.",
             "",
             "| style | style ratio | scene | detections kept | faces kept | PSNR vs teacher | SSIM vs teacher | "
             "ms 640x480 | shift 2px out (in) | noise out (in) | "
             + " | ".join(f"warped err {c} (out / in = ratio)" for c in clip_names) + " |",
             "|---" * (10 + len(clip_names)) + "|"]
    for r in rows:
        faces = f"{r['faces_kept']}/{r['faces_found']}" if "faces_found" in r else ""
        real = (f"{r['real_faces_kept']}/{r['real_faces']} ({r['real_faces_kept'] / r['real_faces']:.1%})"
                if r.get("real_faces") else "")
        cells = [r["style"], r.get("style_ratio", ""), r.get("scene", ""), faces, real,
                 r.get("psnr_vs_teacher", ""), r.get("ssim_vs_teacher", ""),
                 f"{r.get('ms_640x480', '')} ({r.get('backend', '')}"
                 + (f", {'x'.join(map(str, r['processing_size']))})" if "processing_size" in r else ")"),
                 f"{r['shift_2px_out']} ({r['shift_2px_in']})", f"{r['noise_out']} ({r['noise_in']})"]
        cells += [clip_cell(r["clips"][c]) if c in r["clips"] else "" for c in clip_names]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def clip_cell(c: dict) -> str:
    cell = f"{c['warped_error_out']} / {c['warped_error_in']} = {c['ratio']}"
    return cell + (f" ({c['ratio_unsteadied']})" if "ratio_unsteadied" in c else "")


def retime(out: Path) -> int:
    """Measure `ms_640x480` of every row again, the rest kept: a table whose looks were
    measured beside a training run gets model times from a quiet machine."""
    frame = camera_frame(split_images(DEFAULT_CONTENT)[1][0])

    def measure(row, style, backend):
        size = generator_size(frame, None, 1.0, backend.name, style.native_side)
        row["ms_640x480"] = round(model_ms(backend, preprocess(frame, size)), 1)
        return f"{row['ms_640x480']} ms"
    return remeasure(out, "time is", measure)


def by_source(path: Path, out: Path) -> int:
    """A teacher style against its teacher on every held-out photo and on 8 frames of each
    clip, grouped by source (the photo's file-name prefix, the clip): the mean over 24 photos
    hides the kinds of picture it fits worst."""
    style = read_style(path)
    if not style.training.get("teacher"):
        raise SystemExit(f"--by-source: {path.name} has no teacher to compare with")
    teacher = get_teacher(style.training["teacher"])
    groups: dict[str, list[tuple[float, float]]] = {}
    frames = [(q.name.split("_")[0], camera_frame(q)) for q in split_images(DEFAULT_CONTENT)[1]]
    for clip in sorted(VIDEOS.glob("*.mp4")):
        shots = read_clip(clip)
        frames += [(f"clip {clip.stem}", cv2.resize(f, EVAL_SIZE, interpolation=cv2.INTER_AREA))
                   for f in shots[::max(1, len(shots) // 8)][:8]]
    with backends.create("auto", path) as backend:
        run = product_runner(backend, style)
        for source, frame in frames:
            o, t = run(frame), teacher(frame)
            groups.setdefault(source, []).append((psnr(o, t), ssim(o, t)))
    lines = [f"# {style.name} against its teacher, by source", "",
             "`python -m train.evaluate --by-source " + style.name + "`: every held-out photo of "
             "../shared/data/content (framed as a 640x480 camera frame) and 8 frames of each clip "
             "of ../shared/data/video, through `livestyle run`'s path.", "",
             "| source | frames | PSNR dB | SSIM |", "|---|---|---|---|"]
    everything = [v for vals in groups.values() for v in vals]
    for source, vals in sorted(groups.items()) + [("all", everything)]:
        lines.append(f"| {source} | {len(vals)} | {np.mean([v[0] for v in vals]):.2f} | "
                     f"{np.mean([v[1] for v in vals]):.3f} |")
    write_atomic(out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--styles", default=None, help="comma list of names or .onnx paths (default: engines/)")
    p.add_argument("--photos", type=int, default=24, help="held-out photos to use")
    p.add_argument("--out", default=str(REPO / "docs" / "quality"), help="output stem (.md/.json)")
    p.add_argument("--update", action="store_true",
                   help="replace only these styles' rows in the existing --out table")
    p.add_argument("--retime", action="store_true",
                   help="only measure the model time of every style in the existing --out "
                        "table again (on a quiet machine) and rewrite it")
    p.add_argument("--clips", action="store_true",
                   help="only measure the clips of every style in the existing --out table "
                        "again (after a change to how run treats consecutive frames)")
    p.add_argument("--faces", action="store_true",
                   help="only count the faces kept (train/heldout_faces.json) of every style in "
                        "the existing --out table again")
    p.add_argument("--beside-pilot", metavar="STYLE", default=None,
                   help="a Starry Night style (name or .onnx) and the loss-network pilot's grid, "
                        "measured on the pilot's six photos (printed)")
    p.add_argument("--by-source", metavar="STYLE", default=None,
                   help="a teacher style (name or .onnx) against its teacher on every held-out "
                        "photo and clip frames, by source, into <--out>-by-source.md")
    a = p.parse_args(argv)
    try:
        return _run(a)
    except StyleError as e:
        print(f"python -m train.evaluate: {e}", file=sys.stderr)
        return 2


def _run(a: argparse.Namespace) -> int:
    if a.beside_pilot:
        print(beside_pilot_figures(resolve(a.beside_pilot).path))
        return 0
    if a.by_source:
        return by_source(resolve(a.by_source).path, Path(str(a.out) + "-by-source.md"))
    if a.retime:
        return retime(Path(a.out))
    if a.clips:
        return restability(Path(a.out))
    if a.faces:
        return refaces(Path(a.out))
    paths = ([resolve(s).path for s in a.styles.split(",")]
             if a.styles else sorted(BUNDLED_DIR.glob("*.onnx")))
    held = split_images(DEFAULT_CONTENT)[1]
    picks = [held[int(i)] for i in np.linspace(0, len(held) - 1, min(a.photos, len(held)))]
    photos = [camera_frame(q) for q in picks]
    clips = {v.stem: read_clip(v) for v in sorted(VIDEOS.glob("*.mp4"))}
    meter = lookmeter.LookMeter()
    with_faces = face_photos()
    rows = []
    for path in paths:
        print(f"evaluating {path.stem} ...", flush=True)
        rows.append(evaluate_style(path, photos, clips, meter, with_faces))
    out = Path(a.out)
    if a.update and out.with_suffix(".json").exists():
        fresh = {r["style"] for r in rows}
        kept = [r for r in json.loads(out.with_suffix(".json").read_text())
                if r["style"] not in fresh]
        rows = sorted(kept + rows, key=lambda r: r["style"])
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out.with_suffix(".json"), json.dumps(rows, indent=2))
    write_atomic(out.with_suffix(".md"), markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
