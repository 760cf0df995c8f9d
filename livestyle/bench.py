"""`livestyle bench`: what this machine can do, per backend, resolution and generator size.

Three measurements, each after a warm-up, reported as medians and p95:
- model: the backend alone on a frame at the processing size (no capture, no sinks);
- end to end: a synthetic 30 fps camera (real clip frames with the frame number stamped into
  the pixels) -> the real pipeline -> a sink that reads the number back from the stylized
  frame, giving capture-to-sink latency, per-stage times and dropped frames;
- reference: the classic full-size Johnson network in PyTorch eager, the usual way.
Achieved GFLOP/s stands next to the machine's measured peak (a large float32 matrix product).
Speed is only ever reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from livestyle import backends, stamp
from livestyle.atomic import write_atomic
from livestyle.camera import LiveSource
from livestyle.config import RunConfig, SourceConfig
from livestyle.frames import CPU_PIXELS, auto_scale, processing_size
from livestyle.gpu import gpu_memory_used_mib
from livestyle.pipeline import Pipeline
from livestyle.sinks.base import Sink
from livestyle.styles import BUNDLED_DIR, Style, read_style, style_files
from livestyle.timers import STAGES

RESOLUTIONS = {"480p": (640, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
MAX_SIDE = 8192
CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "person_on_camera_office.mp4"


def resolution_size(label: str) -> tuple[int, int]:
    """480p, 720p, 1080p or WxH (e.g. 800x600) -> (width, height); ValueError naming the flag."""
    if label in RESOLUTIONS:
        return RESOLUTIONS[label]
    m = re.fullmatch(r"(\d+)x(\d+)", label)
    if not m:
        raise ValueError(f"--resolutions: {label!r} is neither {', '.join(RESOLUTIONS)} nor WxH "
                         "(for example 800x600)")
    w, h = int(m[1]), int(m[2])
    if not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE):
        raise ValueError(f"--resolutions: {label} is out of range (16 to {MAX_SIDE} a side)")
    return w, h


def parse_resolutions(text: str) -> list[str]:
    """A comma list of resolutions -> their labels (WxH spelled lower case), checked, in order."""
    labels: list[str] = []
    for item in text.split(","):
        label = item.strip().lower()
        if label and label not in labels:
            resolution_size(label)
            labels.append(label)
    if not labels:
        raise ValueError(f"--resolutions {text!r} names no resolution: use "
                         f"{', '.join(RESOLUTIONS)} or WxH, comma-separated")
    return labels


def load_compare(path: str) -> dict:
    """An earlier `livestyle bench` JSON, checked before any benchmarking: ValueError (exit 2)
    for a file that is missing, unreadable, not JSON or not a bench result."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--compare {path}: no such file" if not p.exists()
                         else f"--compare {path}: not a file")
    try:
        old = json.loads(p.read_text())
    except OSError as e:
        raise ValueError(f"--compare {path}: cannot read it: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"--compare {path} is not JSON ({e}); pass a file written by "
                         "`livestyle bench`") from None
    rows_ok = isinstance(old, dict) and all(
        isinstance(old.get(kind), list) and all(
            isinstance(r, dict) and {"backend", "resolution", "fps"} <= r.keys()
            for r in old[kind])
        for kind in ("model", "end_to_end"))
    if not rows_ok:
        raise ValueError(f"--compare {path} is not a livestyle bench result (it needs 'model' "
                         "and 'end_to_end' lists of rows with backend, resolution and fps); "
                         "pass a file written by `livestyle bench`")
    return old


def output_path(out: str | None, now: datetime) -> Path:
    """Where the JSON goes: --out (a file, or a folder: one that exists or ends with /), else
    bench-<time>.json in the current folder; made and checked writable before benchmarking."""
    name = f"bench-{now.strftime('%Y%m%d-%H%M%S')}.json"
    path = Path.cwd() / name if out is None else Path(out)
    if out is not None and (path.is_dir() or out.endswith(("/", os.sep))):
        path = path / name
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out {out}: cannot make the folder {folder}: {e.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"cannot write the results into {folder}: it is not writable; "
                         "pass --out with a folder you can write")
    return path


def percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"median_ms": round(float(np.median(a)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3),
            "n": int(a.size)}


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from livestyle.gpu import cuda_device_count

    info = {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "cuda_devices": cuda_device_count()[0], "gpu": None}
    if info["cuda_devices"]:
        try:
            import torch

            info["gpu"] = torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001 - the name is nice to have
            pass
    return info


def versions() -> dict:
    out = {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__}
    from livestyle.backends.openvino import decline_telemetry

    decline_telemetry()  # before the import below
    for mod in ("onnxruntime", "openvino", "torch", "tensorrt"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - absent is a fine answer
            out[mod] = None
    return out


def peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """float32 matrix product: the machine's practical peak, timed like everything else.
    OpenVINO may compute in bfloat16 (AMX, AVX-512 BF16), which has a higher peak: see
    precision_peak."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.T.copy()
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def precision_peak(backend: str, precision: str, f32_peak: float, n: int = 2048,
                   repeats: int = 5) -> float:
    """The peak a model row is measured against: the float32 one, or for OpenVINO in a
    lower precision (bf16, f16), a matrix product that OpenVINO computes in that precision,
    timed the same way (the higher of the two)."""
    if backend != "openvino" or "32" in precision:
        return f32_peak
    try:
        import openvino as ov
        from openvino import opset13 as ops

        a = ops.parameter([n, n], np.float32)
        b = ops.constant(np.random.default_rng(0).random((n, n), dtype=np.float32))
        model = ov.Model([ops.matmul(a, b, False, False)], [a])
        compiled = ov.Core().compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        x = np.random.default_rng(1).random((n, n), dtype=np.float32)
        request.infer({0: x})  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            request.infer({0: x})
            times.append(time.perf_counter() - t)
    except Exception:  # noqa: BLE001 - without it, the float32 peak stands
        return f32_peak
    return max(f32_peak, 2 * n**3 / statistics.median(times) / 1e9)


def of_peak(gflops: float, peak: float) -> float:
    """Achieved / peak, never above 1: a row that beat the peak measured minutes apart on a
    shared machine is at the peak (the row records `above_peak`)."""
    return round(min(1.0, gflops / peak), 3)


def clip_frames(size: tuple[int, int], count: int = 30) -> list[np.ndarray]:
    """Real frames from the shared clip at `size`, or textured noise when it is absent."""
    frames = []
    cap = cv2.VideoCapture(str(CLIP))
    while len(frames) < count:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(f, size, interpolation=cv2.INTER_LINEAR))
    cap.release()
    if not frames:
        rng = np.random.default_rng(0)
        base = cv2.GaussianBlur(rng.integers(0, 256, (size[1], size[0], 3), np.uint8), (0, 0), 3)
        frames = [np.roll(base, i, axis=1) for i in range(count)]
    return frames


class Progress:
    def __init__(self, total: int):
        self.total, self.done = total, 0

    def step(self, label: str) -> None:
        self.done += 1
        fill = int(20 * self.done / self.total)
        print(f"\r[{'#' * fill}{'-' * (20 - fill)}] {self.done}/{self.total} {label:<48}",
              end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        print(file=sys.stderr)


# -- model only ------------------------------------------------------------------------------

def bench_model(backend: backends.Backend, frame: np.ndarray, warmup: int, frames: int) -> list[float]:
    for _ in range(warmup):
        backend.infer(frame)
    times = []
    for _ in range(frames):
        t = time.perf_counter()
        backend.infer(frame)
        times.append((time.perf_counter() - t) * 1e3)
    for _ in backend.flush():
        pass
    return times


def gpu_memory(backend_name: str, before: float | None) -> dict:
    """A model row's GPU memory, for a GPU backend: in use on the device after the row
    (NVML: every process's, the CUDA context included) and how much of it came with this
    backend (`before` is the reading before it was created), in MiB; None without NVML."""
    if backend_name not in backends.GPU_BACKENDS:
        return {}
    used = gpu_memory_used_mib()
    grown = None if used is None or before is None else round(used - before, 1)
    return {"gpu_memory_mib": used, "gpu_memory_backend_mib": grown}


def bench_reference(size: tuple[int, int], warmup: int, frames: int) -> list[float] | None:
    """pytorch/examples' fast_neural_style network, float NCHW in PyTorch eager."""
    try:
        import torch

        from livestyle.generator import SIZES, Generator
    except ImportError:
        return None
    net = Generator(SIZES["johnson"]).eval()
    x = torch.rand(1, 3, size[1], size[0])
    times = []
    with torch.inference_mode():
        for i in range(warmup + frames):
            t = time.perf_counter()
            net(x)
            if i >= warmup:
                times.append((time.perf_counter() - t) * 1e3)
    return times


def johnson_macs_per_pixel() -> int | None:
    try:
        from livestyle.generator import SIZES, macs_per_pixel
    except ImportError:
        return None
    return macs_per_pixel(SIZES["johnson"])


# -- end to end ------------------------------------------------------------------------------

class StampedCamera:
    """A cv2.VideoCapture look-alike delivering clip frames at `fps`, numbered in the pixels."""

    def __init__(self, frames: list[np.ndarray], fps: float, captured: dict[int, float]):
        self._frames, self._fps, self._captured = frames, fps, captured
        self._n = 0
        self._t0 = time.perf_counter()

    def isOpened(self) -> bool:  # noqa: N802 - cv2's spelling
        return True

    def read(self):
        due = self._t0 + self._n / self._fps
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # the camera's own pace: frames come no faster than fps
        frame = self._frames[self._n % len(self._frames)].copy()
        stamp.write(frame, self._n)
        self._captured[self._n % (1 << stamp.BITS)] = time.perf_counter()
        self._n += 1
        return True, frame

    def get(self, prop) -> float:
        return self._fps if prop == cv2.CAP_PROP_FPS else 0.0

    def set(self, *args) -> bool:
        return True

    def release(self) -> None:
        pass


class LatencySink(Sink):
    """Reads each frame's number back and records capture-to-sink time."""

    name = "latency"

    def __init__(self, captured: dict[int, float]):
        self._captured = captured
        self.latency_ms: list[float] = []
        self.unreadable = 0

    def send(self, frame: np.ndarray) -> None:
        now = time.perf_counter()
        n = stamp.read(frame)
        if n is None or n not in self._captured:
            self.unreadable += 1
        else:
            self.latency_ms.append((now - self._captured[n]) * 1e3)


def bench_end_to_end(style: Style, backend: str, size: tuple[int, int], scale: float,
                     seconds: float, fps: float = 30.0) -> dict:
    """The product's own Pipeline, `backend` by the name the model row measured, fed by a
    stamped camera at `fps` for `seconds` after a warm-up."""
    captured: dict[int, float] = {}
    frames = clip_frames(size)
    # the stamped camera stands in for camera 0
    cfg = RunConfig(styles=(str(style.path),), source=SourceConfig("0", *size, fps),
                    backend=backend, scale=scale, preview=False)
    quiet = lambda m: None  # noqa: E731
    source = LiveSource(cfg.source, opener=lambda c: StampedCamera(frames, fps, captured),
                        log=quiet)
    sink = LatencySink(captured)
    with Pipeline(cfg, log=quiet, source=source, sinks=[sink]) as pipeline:
        pipeline.warm_up(10)  # the first frames pay for compilation and allocation
        offered_before = len(captured)
        stop = threading.Timer(seconds, pipeline.controls.request_stop)
        stop.start()
        stats = pipeline.run()
        stop.cancel()
        offered = len(captured) - offered_before
    return {
        "fps": round(stats.fps, 2), "frames": stats.frames, "offered": offered,
        "dropped": stats.dropped, "unreadable_stamps": sink.unreadable,
        "latency": percentiles(sink.latency_ms) if sink.latency_ms else None,
        "stages": {s: percentiles(stats.stage_ms[s]) for s in STAGES if stats.stage_ms[s]},
        "processing_size": list(stats.processing_size),
    }


# -- report ----------------------------------------------------------------------------------

def bundled_sizes() -> dict[str, Style]:
    """One bundled style per distinct generator configuration (speed ignores the weights):
    only the styles that ship in engines/, never the user's own (--style measures those)."""
    seen: dict[str, Style] = {}
    for path in style_files([BUNDLED_DIR]).values():
        try:
            s = read_style(path)
        except ValueError:
            continue
        key = json.dumps(s.generator, sort_keys=True)
        seen.setdefault(key, s)
    return {f"{s.name} ({s.macs_per_pixel} MAC/px)": s for s in seen.values()}


def style_fields(s: Style) -> dict:
    """What every result row says about the model: the style, its generator size, its cost."""
    # the size the trainer chose ("generator_size"; older exports record only --size, which
    # may be "auto"); a model made outside the trainer has none
    size = s.training.get("generator_size") or s.training.get("size") or "custom"
    return {"style": s.name, "size": size,
            "macs_per_pixel": s.macs_per_pixel,
            "model_kb": round(s.path.stat().st_size / 1024) if s.path.exists() else None}


STYLE_COLS = [("style", "style"), ("size", "size"), ("macs_per_pixel", "MAC/px")]


def _cell(row: dict, key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value)  # a value not measured: blank, not "None"


def table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    widths = [max([len(title), 7] + [len(_cell(r, key)) for r in rows])
              for key, title in cols]
    head = "  ".join(f"{title:>{w}}" for (_, title), w in zip(cols, widths))
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append("  ".join(f"{_cell(r, key):>{w}}" for (key, _), w in zip(cols, widths)))
    return "\n".join(lines)


def series_colors(n: int) -> list[tuple[int, int, int]]:
    """`n` BGR colours, all different: hues spread around the circle, alternately darker,
    so neighbours in the legend differ in hue and in brightness."""
    if n == 0:
        return []
    hsv = np.array([[[int(180 * k / max(n, 1)), 255, 200 if k % 2 else 150]
                     for k in range(n)]], np.uint8)
    return [tuple(int(c) for c in bgr) for bgr in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]]


def plot(report: dict, path: Path) -> None:
    """FPS against resolution, one line per backend and measurement, drawn with OpenCV; the
    legend sits below the axes, where it cannot hide a line."""
    series: dict[str, list[tuple[int, float]]] = {}
    names = list(report["settings"]["resolutions"])
    for kind, rows in (("model", report["model"]), ("e2e", report["end_to_end"])):
        for r in rows:
            series.setdefault(f"{kind} {r['backend']} {r.get('style', '')}", []).append(
                (names.index(r["resolution"]), r["fps"]))
    w, pad, plot_h, row = 720, 60, 420, 18
    legend_h = row * len(series) + 20
    h = plot_h + legend_h
    img = np.full((h, w, 3), 255, np.uint8)
    top = max([v for s in series.values() for _, v in s] + [30.0]) * 1.15
    X = lambda i: (pad + int(i * (w - 2 * pad) / (len(names) - 1)) if len(names) > 1  # noqa: E731
                   else w // 2)
    Y = lambda v: plot_h - pad - int(v / top * (plot_h - 2 * pad))  # noqa: E731
    cv2.line(img, (pad, plot_h - pad), (w - pad, plot_h - pad), (0, 0, 0), 1)
    cv2.line(img, (pad, pad), (pad, plot_h - pad), (0, 0, 0), 1)
    cv2.line(img, (pad, Y(30)), (w - pad, Y(30)), (180, 180, 180), 1)
    cv2.putText(img, "30 fps", (w - pad - 50, Y(30) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (120,) * 3)
    for i, n in enumerate(names):
        cv2.putText(img, n, (X(i) - 4 * len(n), plot_h - pad + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0))
    for v in np.linspace(0, top, 6)[1:]:
        cv2.putText(img, f"{v:.0f}", (8, Y(v) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0))
    colors = series_colors(len(series))
    for k, (name, pts) in enumerate(sorted(series.items())):
        color = colors[k]
        pts = sorted(pts)
        for (i0, v0), (i1, v1) in zip(pts, pts[1:]):
            cv2.line(img, (X(i0), Y(v0)), (X(i1), Y(v1)), color, 2, cv2.LINE_AA)
        for i, v in pts:
            cv2.circle(img, (X(i), Y(v)), 4, color, -1)
        y = plot_h + 10 + row * k  # the legend, under the axes and their labels
        cv2.line(img, (pad, y), (pad + 24, y), color, 2, cv2.LINE_AA)
        cv2.putText(img, name, (pad + 32, y + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color)
    cv2.putText(img, "frames per second (median)", (pad, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0,) * 3)
    cv2.imwrite(str(path), img)


def compare(new: dict, old: dict, old_path: str) -> str:
    """new / old fps for the rows both have (same backend, resolution and generator)."""
    lines = [f"compared with {old_path} ({old.get('created', '?')}): new / old fps"]
    for kind in ("model", "end_to_end", "reference"):
        before = {(r["backend"], r["resolution"], r.get("generator")): r for r in old.get(kind, [])}
        for r in new.get(kind, []):
            o = before.get((r["backend"], r["resolution"], r.get("generator")))
            if o and o.get("fps"):
                lines.append(f"  {kind:<10} {r.get('style', '-'):<16} {r['backend']:<12} "
                             f"{r['resolution']:<9} {r['fps']:8.1f} / {o['fps']:8.1f} = "
                             f"{r['fps'] / o['fps']:.2f}x")
    if len(lines) == 1:
        lines.append("  no row in common (backend, resolution and generator differ)")
    return "\n".join(lines)


def run_bench(backend_names: list[str], resolutions: list[str], frames: int, warmup: int,
              seconds: float, reference: bool, style: str | None = None) -> dict:
    if style:  # one or several, comma-separated: measured side by side in one run
        from livestyle.styles import resolve

        sizes = {}
        for one in style.split(","):
            s = resolve(one)
            sizes[f"{s.name} ({s.macs_per_pixel} MAC/px, {s.path})"] = s
    else:
        sizes = bundled_sizes()
    if not sizes:
        raise ValueError("no styles installed to benchmark; pass --style PATH.onnx")
    report = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "versions": versions(),
              "settings": {"backends": backend_names, "resolutions": resolutions,
                           "frames": frames, "warmup": warmup, "e2e_seconds": seconds,
                           "camera_fps": 30.0, "cpu_pixels_budget": CPU_PIXELS},
              "model": [], "end_to_end": [], "reference": []}
    report["peak_gflops"] = round(peak_gflops(), 1)  # float32; see precision_peak
    report["peak_gflops_by_precision"] = {}
    steps = len(backend_names) * len(resolutions) * len(sizes) * 2 + (len(resolutions) if reference else 0)
    bar = Progress(steps)
    for label, style_ in sizes.items():
        for name in backend_names:
            gpu_before = gpu_memory_used_mib()  # None without an NVIDIA driver
            try:
                backend = backends.create(name, style_.path)
            except (backends.BackendUnavailable, backends.NoBackendError) as e:
                print(f"\nskipping backend {name}: {e}", file=sys.stderr)
                bar.done += 2 * len(resolutions)
                continue
            actual = backend.name
            for res in resolutions:
                size = resolution_size(res)
                scale = auto_scale(*size, gpu=actual in backends.GPU_BACKENDS,
                                   native_side=style_.native_side)
                proc = processing_size(*size, scale)
                frame = cv2.resize(clip_frames(size, 1)[0], proc)
                bar.step(f"model {actual} {res} {label}")
                ms = bench_model(backend, frame, warmup, frames)
                p = percentiles(ms)
                gflops = 2 * style_.macs_per_pixel * proc[0] * proc[1] / (p["median_ms"] / 1e3) / 1e9
                report["model"].append({
                    "backend": actual, "resolution": res, "generator": label,
                    **style_fields(style_),
                    "precision": getattr(backend, "precision", "f32"),
                    "processing_size": list(proc), "fps": round(1e3 / p["median_ms"], 1),
                    **p, "gflops": round(gflops, 2),
                    **peak_fields(report, actual, getattr(backend, "precision", "f32"), gflops),
                    **gpu_memory(actual, gpu_before)})
                bar.step(f"end to end {actual} {res}")
                e2e = bench_end_to_end(style_, actual, size, scale, seconds)
                report["end_to_end"].append({"backend": actual,
                                             "resolution": res, "generator": label,
                                             **style_fields(style_),
                                             "scale": round(scale, 3), **e2e})
            backend.close()
    if reference and report["model"]:  # nothing to compare with when no backend ran
        for res in resolutions:
            bar.step(f"reference johnson {res}")
            ms = bench_reference(resolution_size(res), 1, max(2, frames // 20))
            if ms is None:
                break
            p = percentiles(ms)
            report["reference"].append({"backend": "torch-eager", "resolution": res,
                                        "generator": "johnson (pytorch/examples)",
                                        "style": "(random weights)", "size": "johnson",
                                        "macs_per_pixel": johnson_macs_per_pixel(),
                                        "fps": round(1e3 / p["median_ms"], 2), **p})
    bar.close()
    return report


def peak_fields(report: dict, backend: str, precision: str, gflops: float) -> dict:
    """A model row's "of_peak" (0-1) against the peak of the precision it computed in. The
    peaks are the CPU's: a GPU backend's row has none (None, a blank in the table), rather
    than a ratio to the CPU's float32 peak clamped to 1 and marked above it."""
    if backend in backends.GPU_BACKENDS:
        return {"peak_gflops": None, "of_peak": None}
    key = f"{backend} {precision}"
    peaks = report["peak_gflops_by_precision"]
    if key not in peaks:
        peaks[key] = round(precision_peak(backend, precision, report["peak_gflops"]), 1)
    fields = {"peak_gflops": peaks[key], "of_peak": of_peak(gflops, peaks[key])}
    if gflops > peaks[key]:
        fields["above_peak"] = True
    return fields


def summary(report: dict) -> str:
    peak = report["peak_gflops"]
    out = [f"{report['machine']['cpu']} ({report['machine']['cores']} cores), "
           f"measured peak {peak} GFLOP/s (float32)"
           + "".join(f"; {k}: {v}" for k, v in report.get("peak_gflops_by_precision", {}).items()
                     if v != peak),
           "", "model only (backend alone, at processing size; of peak: against the peak in "
           "the precision it computes in):"]
    out.append(table(report["model"], [*STYLE_COLS, ("backend", "backend"), ("resolution", "res"),
                                        ("processing_size", "runs at"), ("fps", "fps"),
                                        ("median_ms", "median ms"), ("p95_ms", "p95 ms"),
                                        ("gflops", "GFLOP/s"), ("of_peak", "of peak"),
                                        ("gpu_memory_backend_mib", "GPU MiB")]))
    rows = []
    for r in report["end_to_end"]:
        lat = r["latency"] or {}
        st = r["stages"]
        rows.append({**r, "lat50": lat.get("median_ms"), "lat95": lat.get("p95_ms"),
                     **{f"st_{k}": v["median_ms"] for k, v in st.items()}})
    out += ["", "end to end (30 fps stamped camera -> pipeline -> sink):"]
    out.append(table(rows, [*STYLE_COLS, ("backend", "backend"), ("resolution", "res"),
                            ("scale", "scale"),
                            ("fps", "fps"), ("lat50", "latency p50"), ("lat95", "latency p95"),
                            ("dropped", "dropped"), ("st_preprocess", "pre ms"),
                            ("st_inference", "infer ms"), ("st_postprocess", "post ms"),
                            ("st_sinks", "sinks ms"), ("unreadable_stamps", "unread")]))
    if report["reference"]:
        out += ["", "reference (classic Johnson network, PyTorch eager, full resolution):"]
        out.append(table(report["reference"], [*STYLE_COLS, ("backend", "backend"),
                                                ("resolution", "res"),
                                                ("fps", "fps"), ("median_ms", "median ms")]))
        best: dict[str, float] = {}
        for r in report["end_to_end"]:  # the fastest backend at each resolution
            best[r["resolution"]] = max(best.get(r["resolution"], 0.0), r["fps"])
        for r in report["reference"]:
            if r["resolution"] in best and r["fps"]:
                out.append(f"  speed-up at {r['resolution']}: {best[r['resolution']] / r['fps']:.0f}x")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="livestyle bench", description=__doc__.split("\n")[0])
    p.add_argument("--backends", default="auto",
                   help="comma list, or auto (the CPU runtimes here, plus GPU ones if present)")
    p.add_argument("--resolutions", default="480p,720p,1080p", metavar="LIST",
                   help="camera frame sizes to measure, comma-separated: 480p (640x480), 720p "
                        "(1280x720), 1080p (1920x1080) or any WxH such as 800x600 "
                        "(default: 480p,720p,1080p)")
    p.add_argument("--style", default=None,
                   help="benchmark this style, a name or .onnx path, or several comma-separated "
                        "side by side (default: one bundled style per generator size, from "
                        "engines/; your own styles only when named here)")
    p.add_argument("--frames", type=int, default=30, help="timed frames per model row (default 30)")
    p.add_argument("--warmup", type=int, default=10,
                   help="untimed frames before each model row (default 10)")
    p.add_argument("--seconds", type=float, default=3.0,
                   help="end-to-end seconds per row (default 3)")
    p.add_argument("--no-reference", dest="reference", action="store_false",
                   help="skip the classic Johnson network in PyTorch (the slowest part)")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="the JSON file, or a folder for bench-<date>.json; the plot goes beside "
                        "it as .png (default: bench-<date>.json in the current folder)")
    p.add_argument("--compare", default=None, metavar="OLD.json",
                   help="an earlier `livestyle bench` JSON: print new/old fps ratios (checked "
                        "before the benchmark starts)")
    a = p.parse_args(argv)
    # everything a user can get wrong fails here, before minutes of benchmarking
    if a.frames < 1:
        raise ValueError(f"--frames must be at least 1 (timed frames per row), got {a.frames}")
    if a.warmup < 0:
        raise ValueError(f"--warmup must be 0 or more, got {a.warmup}")
    if not 0 < a.seconds <= 3600:
        raise ValueError(f"--seconds must be more than 0 and at most 3600 (end-to-end seconds "
                         f"per row), got {a.seconds:g}")
    resolutions = parse_resolutions(a.resolutions)
    old = load_compare(a.compare) if a.compare else None
    out = output_path(a.out, datetime.now())
    if a.backends == "auto":  # GPU backends only where a device is; each CPU runtime
        from livestyle.gpu import has_cuda

        names = [n for n in backends.AUTO_ORDER if has_cuda() or n not in backends.GPU_BACKENDS]
    else:
        names = a.backends.split(",")
    report = run_bench(names, resolutions, a.frames, a.warmup, a.seconds, a.reference, a.style)
    if not report["model"]:
        # every backend asked for was skipped (the lines above say why): no numbers, no file
        raise backends.NoBackendError(
            f"no backend could run here ({', '.join(names)}); nothing was measured and nothing "
            "was written. `livestyle doctor` says which backends this machine has")
    print(summary(report))
    write_atomic(out, json.dumps(report, indent=2))  # output_path made its folder
    plot(report, out.with_suffix(".png"))
    print(f"\nwrote {out} and {out.with_suffix('.png')}")
    if old is not None:
        print(compare(report, old, a.compare))
    return 0
