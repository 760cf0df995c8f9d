"""Soak: the real loop for minutes at full speed, every sink that can run here, memory and
speed sampled all along. Does anything grow or slow down over a long run?

    python benchmarks/soak.py --style cartoon                  # 10 minutes
    python benchmarks/soak.py --style /tmp/rand-a.onnx --seconds 60

Source: a clip on loop, not paced (full speed). Sinks: a video file (in a temporary folder,
deleted at the end unless --keep-video), a virtual camera through a pyvirtualcam backend
registered here that discards frames (a real device needs the v4l2loopback kernel module),
and a null sink. Every --interval seconds: resident memory (VmRSS, /proc/self/status) and
the frame rate over the interval. Writes benchmarks/results/soak-<date>.json and prints
whether RSS and FPS stayed flat: least-squares slope per minute, and the first window
against the last (a minute each, or a third of the run when it is shorter than 3 minutes).
The first sample covers warm-up (allocations for the first frames) and is left out of both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from pyvirtualcam.camera import register_backend  # noqa: E402

from livestyle.atomic import write_atomic  # noqa: E402
from livestyle.config import RunConfig, SourceConfig  # noqa: E402
from livestyle.pipeline import Pipeline  # noqa: E402
from livestyle.sinks.null import NullSink  # noqa: E402

DEFAULT_CLIP = REPO.parent / "shared" / "data" / "video" / "person_on_camera_office.mp4"
# flat means: memory grows by less than RSS_GROWTH_MB from the first window to the last, and
# either less than RSS_SLOPE_MB_PER_MIN (a leak of 15 MB an hour shows) or by less than
# RSS_NOISE_MB in all (allocator noise, which a short run would extrapolate into a slope);
# speed within FPS_CHANGE (meaningless when other work competes for the CPU: see loadavg)
RSS_SLOPE_MB_PER_MIN = 0.25
RSS_GROWTH_MB = 5.0
RSS_NOISE_MB = 1.0
FPS_CHANGE = 0.10


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class DiscardCamera:
    """A pyvirtualcam backend that takes every frame and keeps none."""

    frames = 0

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.nbytes = width * height * 3

    def send(self, frame):
        assert frame.nbytes == self.nbytes
        DiscardCamera.frames += 1

    def device(self):
        return "soak-discard"

    def close(self):
        pass


register_backend("soak-discard", DiscardCamera)


class Sampler:
    """Called after every frame (Pipeline.run's on_frame): samples memory and speed every
    `interval` s, and ends the run at `seconds`."""

    def __init__(self, pipeline: Pipeline, seconds: float, interval: float):
        self.pipeline = pipeline
        self.seconds, self.interval = seconds, interval
        self.samples: list[dict] = []
        self.frames = 0
        self.t0 = None

    def __call__(self, frames: int) -> None:
        now = time.perf_counter()
        self.frames = frames
        if self.t0 is None:  # the clock starts at the first frame out (after warm-up)
            self.t0 = self._last_t = now
            self._last_frames = frames
            self._next = now + self.interval
            return
        if now >= self._next:
            fps = (self.frames - self._last_frames) / (now - self._last_t)
            sample = {"t": round(now - self.t0, 2), "frames": self.frames, "fps": round(fps, 2),
                      "rss_mb": round(rss_mb(), 2), "dropped": self.pipeline.source.dropped}
            self.samples.append(sample)
            print(f"  t={sample['t']:7.1f} s  frames {self.frames:7d}  {fps:6.1f} fps  "
                  f"RSS {sample['rss_mb']:7.1f} MB", flush=True)
            self._last_t, self._last_frames = now, self.frames
            self._next += self.interval
        if now - self.t0 >= self.seconds:
            self.pipeline.controls.request_stop()


def slope_per_min(ts: list[float], ys: list[float]) -> float:
    if len(ts) < 2:
        return 0.0
    return float(np.polyfit(np.asarray(ts) / 60.0, np.asarray(ys), 1)[0])


def summarize(samples: list[dict], seconds: float) -> dict:
    window = min(60.0, seconds / 3)
    if len(samples) >= 3:
        samples = samples[1:]  # warm-up
    t = [s["t"] for s in samples]
    first = [s for s in samples if s["t"] <= t[0] + window - 1e-6] or samples[:1]
    last = [s for s in samples if s["t"] > t[-1] - window + 1e-6] or samples[-1:]

    def mean(rows, key):
        return round(float(np.mean([r[key] for r in rows])), 2)

    rss = {"first_mb": mean(first, "rss_mb"), "last_mb": mean(last, "rss_mb"),
           "slope_mb_per_min": round(slope_per_min(t, [s["rss_mb"] for s in samples]), 3)}
    rss["growth_mb"] = round(rss["last_mb"] - rss["first_mb"], 2)
    rss["flat"] = bool(rss["growth_mb"] <= RSS_GROWTH_MB
                       and (rss["slope_mb_per_min"] <= RSS_SLOPE_MB_PER_MIN
                            or rss["growth_mb"] < RSS_NOISE_MB))
    fps = {"first": mean(first, "fps"), "last": mean(last, "fps"),
           "slope_fps_per_min": round(slope_per_min(t, [s["fps"] for s in samples]), 3)}
    fps["change"] = round(fps["last"] / fps["first"] - 1, 4) if fps["first"] else 0.0
    fps["flat"] = bool(abs(fps["change"]) <= FPS_CHANGE)
    return {"window_s": window, "from_t": t[0], "rss": rss, "fps": fps}


def video_check(path: Path) -> tuple[int, bool]:
    """(frame count in the file's index, whether its last frame decodes)."""
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok = False
    if n > 0:
        cap.set(cv2.CAP_PROP_POS_FRAMES, n - 1)
        ok = cap.read()[0]
    cap.release()
    return n, ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--style", required=True, help="style name or .onnx path")
    p.add_argument("--seconds", type=float, default=600.0, help="how long (default 600)")
    p.add_argument("--interval", type=float, default=10.0, help="sample every N s (default 10)")
    p.add_argument("--clip", default=str(DEFAULT_CLIP), help="the looping source clip")
    p.add_argument("--backend", default="auto")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--results-dir", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--keep-video", action="store_true", help="keep the video file it writes")
    a = p.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="livestyle-soak-"))
    video_path = workdir / "soak.mp4"
    cfg = RunConfig(styles=(a.style,), source=SourceConfig(a.clip, loop=True, realtime=False),
                    backend=a.backend, scale=a.scale, threads=a.threads, preview=False,
                    output=str(video_path), vcam=True, vcam_backend="soak-discard")
    load_start = os.getloadavg()
    null = NullSink()
    try:
        with Pipeline(cfg, log=print, sinks=[null]) as pipeline:
            rss_start = rss_mb()
            info, style = pipeline.source.info, pipeline.switcher.style
            sampler = Sampler(pipeline, a.seconds, a.interval)
            print(f"soak: {style.name} on {pipeline.switcher.backend.name}, "
                  f"{info.width}x{info.height} {Path(a.clip).name} on loop, {a.seconds:g} s, "
                  f"sampling every {a.interval:g} s; RSS {rss_start:.1f} MB", flush=True)
            stats = pipeline.run(on_frame=sampler)
        video = pipeline.output
        video_bytes = video_path.stat().st_size if video_path.exists() else 0
        frames_in_file, last_frame_ok = video_check(video_path)
    finally:
        if not a.keep_video:
            video_path.unlink(missing_ok=True)
            workdir.rmdir()

    summary = summarize(sampler.samples, a.seconds) if sampler.samples else {}
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "style": style.name, "style_path": str(style.path), "backend": stats.backend,
        "clip": a.clip, "clip_size": [info.width, info.height], "scale": a.scale,
        "processing_size": list(stats.processing_size),
        "seconds": a.seconds, "interval": a.interval, "frames": stats.frames,
        "mean_fps": round(stats.fps, 2), "dropped": stats.dropped,
        "rss_start_mb": round(rss_start, 2), "rss_end_mb": round(rss_mb(), 2),
        "video": {"frames": video.frames, "frames_read_back": frames_in_file,
                  "last_frame_decodes": last_frame_ok, "bytes": video_bytes,
                  "kept": str(video_path) if a.keep_video else None},
        "vcam_frames": DiscardCamera.frames, "null_frames": null.frames,
        "samples": sampler.samples, "summary": summary,
        "host": {"cpus": os.cpu_count(), "loadavg_start": load_start,
                 "loadavg_end": os.getloadavg(), "python": platform.python_version(),
                 "opencv": cv2.__version__, "platform": platform.platform()},
    }
    out_dir = Path(a.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_atomic(out, json.dumps(result, indent=1) + "\n")

    print(f"{stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.1f} fps); video "
          f"{frames_in_file} frames ({video_bytes / 1e6:.1f} MB), last frame decodes: "
          f"{last_frame_ok}; vcam {DiscardCamera.frames}, null {null.frames}")
    if summary:
        r, f, w = summary["rss"], summary["fps"], summary["window_s"]
        print(f"RSS: {r['first_mb']:.1f} MB -> {r['last_mb']:.1f} MB (first vs last {w:g} s, "
              f"{r['growth_mb']:+.1f} MB), slope {r['slope_mb_per_min']:+.3f} MB/min: "
              f"{'flat' if r['flat'] else 'NOT flat'}")
        print(f"FPS: {f['first']:.1f} -> {f['last']:.1f} ({f['change']:+.1%}), slope "
              f"{f['slope_fps_per_min']:+.2f} fps/min: {'flat' if f['flat'] else 'NOT flat'}")
    la0, la1 = result["host"]["loadavg_start"][0], result["host"]["loadavg_end"][0]
    print(f"load average {la0:.1f} -> {la1:.1f} on {os.cpu_count()} CPUs"
          + ("  (other work competed for the CPU: FPS figures are not comparable)"
             if la0 > 0.5 * (os.cpu_count() or 1) else ""))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
