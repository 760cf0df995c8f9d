"""The loop: source -> preprocess -> backend -> postprocess -> sinks, one frame at a time.

Real-time policy: at most one frame is in flight per stage (two with a pipelined GPU backend,
whose results come back one call late and are paired with their source frame here); a live
source keeps only its newest frame, so when inference is slow frames are dropped at the
source, counted, and shown on the HUD, instead of queueing up latency.

Stopping: `Controls.request_stop()` (the CLI calls it on Ctrl-C and SIGTERM) ends the loop
after the frame it is on, as if the source had ended, so every sink gets whole frames and is
closed.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from livestyle import backends
from livestyle.atomic import write_atomic
from livestyle.camera import open_source
from livestyle.config import RunConfig
from livestyle.frames import (auto_scale, fit_size, postprocess, preprocess, processing_size,
                              to_bgr8)
from livestyle.sinks.base import Sink
from livestyle.sinks.preview import HELP, PreviewWindow
from livestyle.styles import Style, StyleError, read_style, resolve, style_files

STAGES = ("capture", "preprocess", "inference", "postprocess", "sinks")
KEEP = 4096  # per-stage samples kept for the final report, however long the run

class StageTimers:
    """Per-stage durations of the last `window` frames, in milliseconds, and for the final
    report a uniform sample of every frame's (all of them up to `keep`, so memory stays flat
    on a run of hours)."""

    def __init__(self, window: int = 120, keep: int = KEEP):
        self.samples = {s: deque(maxlen=window) for s in STAGES}
        self.all: dict[str, list[float]] = {s: [] for s in STAGES}
        self.frame_times: deque[float] = deque(maxlen=window)
        self._counts = dict.fromkeys(STAGES, 0)
        self._keep = keep
        self._rng = random.Random(0)

    def add(self, stage: str, seconds: float) -> None:
        ms = seconds * 1e3
        self.samples[stage].append(ms)
        self._counts[stage] += 1
        kept = self.all[stage]
        if len(kept) < self._keep:
            kept.append(ms)
        else:  # reservoir sampling: every sample so far stays equally likely to be kept
            j = self._rng.randrange(self._counts[stage])
            if j < self._keep:
                kept[j] = ms

    def recent_ms(self, stage: str) -> float:
        s = self.samples[stage]
        return statistics.median(s) if s else 0.0

    def fps(self) -> float:
        t = self.frame_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0


class StyleSwitcher:
    """Holds one backend per loaded style; loads the next one on a thread, so switching never
    stalls the stream: the old style keeps running until the new one is ready."""

    def __init__(self, styles: list[Style], backend: str, threads: int = 0, log=print):
        self.styles = styles
        self._backend_name, self._threads, self._log = backend, threads, log
        self._loaded: dict[int, backends.Backend] = {}
        self._loading: dict[int, threading.Thread] = {}
        self._errors: dict[int, Exception] = {}
        self._lock = threading.Lock()
        self.index = 0
        self.wanted = 0
        self._load(0)  # the first style loads in the foreground: its errors stop the run
        if 0 in self._errors:
            raise self._errors.pop(0)

    def _load(self, i: int) -> None:
        try:
            b = backends.create(self._backend_name, self.styles[i].path, threads=self._threads)
        except Exception as e:  # noqa: BLE001 - reported to the user, the run goes on
            with self._lock:
                self._errors[i] = e
            return
        with self._lock:
            self._loaded[i] = b

    @property
    def backend(self) -> backends.Backend:
        return self._loaded[self.index]

    @property
    def style(self) -> Style:
        return self.styles[self.index]

    def request(self, i: int) -> None:
        i %= len(self.styles)
        self.wanted = i
        with self._lock:
            busy = i in self._loaded or (i in self._loading and self._loading[i].is_alive())
        if not busy:
            t = threading.Thread(target=self._load, args=(i,), daemon=True,
                                 name=f"livestyle-load-{i}")
            self._loading[i] = t
            t.start()

    def poll(self) -> backends.Backend | None:
        """Switch to the wanted style if it is loaded; returns the backend switched away from
        (the caller drains its in-flight results), else None."""
        if self.wanted == self.index:
            return None
        with self._lock:
            err = self._errors.pop(self.wanted, None)
            ready = self.wanted in self._loaded
        if err is not None:
            self._log(f"cannot load style {self.styles[self.wanted].name}: {err}")
            self.wanted = self.index
            return None
        if ready:
            old, self.index = self.backend, self.wanted
            return old
        return None

    def close(self) -> None:
        for t in self._loading.values():
            t.join(timeout=30)
        with self._lock:
            for b in self._loaded.values():
                b.close()
            self._loaded.clear()


@dataclass
class Controls:
    """What the keys (and signals) change while running."""

    blend: float = 1.0
    stroke: float = 1.0  # the generator runs at 1/stroke of the processing size: larger
    # strokes and outlines, and faster ([ and ] change it live)
    show_original: bool = False
    hud: bool = True
    quit: bool = False
    snapshot: int = 0  # snapshots asked for (s pressed) and not yet taken
    running: bool = False  # set by run_loop while it checks `quit` every frame
    on_stop: list = field(default_factory=list)  # called by request_stop (source.interrupt)

    def request_stop(self) -> bool:
        """Ask the running loop to end after the frame it is on (safe in a signal handler);
        a source waiting for a frame stops waiting.

        False when no loop is running or a stop was already asked for: the caller should then
        interrupt harder (the CLI raises KeyboardInterrupt)."""
        if not self.running or self.quit:
            return False
        self.quit = True
        for hook in self.on_stop:
            hook()
        return True


@dataclass
class RunStats:
    frames: int = 0
    dropped: int = 0
    seconds: float = 0.0
    stage_ms: dict[str, list[float]] = field(default_factory=dict)
    processing_size: tuple[int, int] = (0, 0)
    backend: str = ""
    incomplete: str = ""  # why the source ended before its end (a truncated file)
    outputs: list[str] = field(default_factory=list)  # what was written: "out.mp4: H.264 ..."

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# the stroke scales [ and ] step through
STROKES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)


def apply_action(action: str, controls: Controls, switcher: StyleSwitcher) -> None:
    if action == "quit":
        controls.quit = True
    elif action == "next":
        switcher.request(switcher.wanted + 1)
    elif action == "previous":
        switcher.request(switcher.wanted - 1)
    elif action.startswith("style:"):
        i = int(action.split(":")[1])
        if i < len(switcher.styles):
            switcher.request(i)
    elif action == "original":
        controls.show_original = not controls.show_original
    elif action == "more":
        controls.blend = min(1.0, round(controls.blend + 0.1, 2))
    elif action == "less":
        controls.blend = max(0.0, round(controls.blend - 0.1, 2))
    elif action in ("bigger", "finer"):
        i = STROKES.index(min(STROKES, key=lambda v: abs(v - controls.stroke)))
        i = min(i + 1, len(STROKES) - 1) if action == "bigger" else max(i - 1, 0)
        controls.stroke = STROKES[i]
    elif action == "snapshot":
        controls.snapshot += 1
    elif action == "hud":
        controls.hud = not controls.hud


def hud_lines(switcher: StyleSwitcher, timers: StageTimers, controls: Controls, dropped: int,
              size: tuple[int, int]) -> list[str]:
    name = "ORIGINAL" if controls.show_original else switcher.style.name
    loading = f" (loading {switcher.styles[switcher.wanted].name})" if (
        switcher.wanted != switcher.index) else ""
    stages = " ".join(f"{s[:5]} {timers.recent_ms(s):.1f}" for s in STAGES[1:])
    return [
        f"{name}{loading}  [{switcher.index + 1}/{len(switcher.styles)}]  blend {controls.blend:.1f}"
        f"  stroke {controls.stroke:g}x",
        f"{timers.fps():5.1f} fps  {switcher.backend.name} @ {size[0]}x{size[1]}  "
        f"dropped {dropped}",
        f"ms: {stages}",
        HELP,
    ]


def run_loop(source, switcher: StyleSwitcher, sinks: list[Sink], scale: float | None,
             controls: Controls, preview: PreviewWindow | None = None, max_frames: int = 0,
             snapshot_dir: str = ".", log=print, on_frame=None) -> RunStats:
    """Drive frames from `source` through the current style into every sink until the source
    ends, `q` is pressed or `max_frames` have been shown. `scale` None picks one per frame
    size (frames.auto_scale). `on_frame(n)` is called after the n-th frame is delivered."""
    timers = StageTimers()
    stats = RunStats(backend=switcher.backend.name)
    pending: deque = deque()  # (frame, bgr) awaiting a delayed backend's result
    t_start = time.perf_counter()
    size, last_shape = None, None

    def deliver(bgr: np.ndarray, styled: np.ndarray) -> None:
        t = time.perf_counter()
        blend = 0.0 if controls.show_original else controls.blend
        out = postprocess(styled, bgr, blend)
        t2 = time.perf_counter()
        timers.add("postprocess", t2 - t)
        for sink in sinks:
            sink.send(out)
        if preview is not None:
            preview.show_hud = controls.hud
            if controls.hud:  # the text costs string formatting every frame: only when shown
                preview.hud_lines = hud_lines(switcher, timers, controls, source.dropped, size)
            preview.send(out)
            for action in preview.poll():
                apply_action(action, controls, switcher)
        while controls.snapshot:  # each press is a picture, however fast they come
            controls.snapshot -= 1
            try:
                path = save_snapshot(out, snapshot_dir, switcher.style.name)
            except OSError as e:
                message = f"snapshot NOT saved: {snapshot_dir}: {e.strerror or e}"
                log(message)
                if preview is not None:
                    preview.notice(message, error=True)
            else:
                log(f"snapshot saved to {path}")
                if preview is not None:
                    preview.notice(f"snapshot saved: {path.name}")
        timers.add("sinks", time.perf_counter() - t2)
        timers.frame_times.append(time.perf_counter())
        stats.frames += 1
        if on_frame is not None:
            on_frame(stats.frames)

    interrupt = getattr(source, "interrupt", None)
    if interrupt is not None:
        controls.on_stop.append(interrupt)
    controls.running = True
    try:
        while not (controls.quit or (max_frames and stats.frames >= max_frames)):
            t0 = time.perf_counter()
            frame = source.read()
            if frame is None:
                break
            t1 = time.perf_counter()
            timers.add("capture", t1 - t0)
            bgr = to_bgr8(frame.image)
            if (bgr.shape[:2], controls.stroke) != last_shape:
                last_shape = (bgr.shape[:2], controls.stroke)
                s = scale if scale is not None else auto_scale(
                    bgr.shape[1], bgr.shape[0], gpu=switcher.backend.name in backends.GPU_BACKENDS)
                size = processing_size(bgr.shape[1], bgr.shape[0], s / controls.stroke)
            small = preprocess(bgr, size)
            t2 = time.perf_counter()
            timers.add("preprocess", t2 - t1)
            old = switcher.poll()
            if old is not None:  # a pipelined backend still holds frames: show them first
                for styled in old.flush():
                    deliver(pending.popleft(), styled)
                log(f"style: {switcher.style.name}")
            pending.append(bgr)
            styled = switcher.backend.infer(small)
            timers.add("inference", time.perf_counter() - t2)
            if styled is not None:
                deliver(pending.popleft(), styled)
        for styled in switcher.backend.flush():
            deliver(pending.popleft(), styled)
    finally:
        controls.running = False
        if interrupt is not None:
            controls.on_stop.remove(interrupt)

    stats.seconds = time.perf_counter() - t_start
    stats.dropped = source.dropped
    stats.incomplete = getattr(source, "truncated", "")
    stats.stage_ms = timers.all
    stats.processing_size = size or (0, 0)
    return stats


def save_snapshot(image: np.ndarray, folder: str | Path, style: str) -> Path:
    """`image` as a new PNG in `folder`, whole or not at all; never over another file
    (two snapshots in one millisecond get -2, -3...). OSError says why it could not."""
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"cannot encode a {image.shape} frame as PNG")
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    base = Path(folder) / f"livestyle-{style}-{stamp}"
    for n in range(1, 1000):
        path = base.with_name(base.name + (f"-{n}" if n > 1 else "") + ".png")
        try:
            return write_atomic(path, png.tobytes(), overwrite=False)
        except FileExistsError:
            continue
    raise OSError(f"too many snapshots named {base.name}*")


def installed_styles(exclude: set[Path]) -> list[Style]:
    """Every other readable installed style, so n/p/1-9 reach them all (loaded on demand)."""
    found = []
    for path in style_files().values():
        if path.resolve() not in exclude:
            try:
                found.append(read_style(path))
            except StyleError:
                continue  # `livestyle styles` reports it; the run does not need it
    return found


def run(cfg: RunConfig, log=print, controls: Controls | None = None,
        progress=None) -> RunStats:
    """Build everything `cfg` asks for, run the loop, release everything on every exit path.

    Pass `controls` to stop the run from outside (Controls.request_stop), and `progress`
    (livestyle.progress.Progress) for a progress line on a file or image source. An image
    source (a photo, a folder of them) with an output opens no window: it writes and ends."""
    from livestyle.images import ImageSink, ImageSource, list_images
    from livestyle.sinks.resize import Resized
    from livestyle.sinks.vcam import VirtualCameraSink
    from livestyle.sinks.video import VideoFileSink

    cfg.validate()
    styles = [resolve(s) for s in cfg.styles]  # unknown styles fail before the camera opens
    styles += installed_styles(exclude={s.path.resolve() for s in styles})
    with ExitStack() as stack:
        sinks: list[Sink] = []
        images = cfg.source.is_images
        out = None
        if cfg.output:  # claimed first: a busy or existing output fails before anything opens
            if images:
                folder = Path(cfg.source.source).is_dir()
                names = [p.name for p in list_images(Path(cfg.source.source))] if folder else ()
                out = ImageSink(cfg.output, folder=folder, overwrite=cfg.overwrite,
                                source_names=names, log=log)
            else:
                out = VideoFileSink(cfg.output, overwrite=cfg.overwrite, log=log)
            stack.enter_context(out)
            sinks.append(Resized(out, cfg.output_size) if cfg.output_size else out)
        switcher = StyleSwitcher(styles, cfg.backend, cfg.threads, log=log)
        stack.callback(switcher.close)
        show = cfg.preview and not (images and cfg.output)
        preview = stack.enter_context(PreviewWindow()) if show else None
        if images:  # with no output, the photo stays in the window/vcam until q
            source = stack.enter_context(ImageSource(cfg.source, repeat=not cfg.output,
                                                     log=log))
        else:
            source = stack.enter_context(
                open_source(cfg.source, watched=bool(show or cfg.vcam), log=log))
        info = source.info
        log(f"source: {info.description} {info.width}x{info.height} @ {info.fps:g} fps; "
            f"style {styles[0].name} on {switcher.backend.name}")
        if isinstance(out, VideoFileSink):
            out.fps = info.fps
        elif isinstance(out, ImageSink):
            out.names = source.names
        if cfg.vcam:
            size = (fit_size(cfg.output_size, info.width, info.height) if cfg.output_size
                    else (info.width, info.height))
            vcam = stack.enter_context(VirtualCameraSink(*size, info.fps, cfg.vcam_device,
                                                         cfg.vcam_backend))
            log(f"virtual camera: {vcam.device}")
            sinks.append(Resized(vcam, size) if cfg.output_size else vcam)
        controls = controls or Controls()
        controls.blend, controls.stroke = cfg.blend, cfg.stroke
        on_frame = None
        finite = not cfg.source.loop and not (images and not cfg.output)
        if progress is not None and finite and hasattr(source, "announced"):
            total = source.announced
            if cfg.max_frames:
                total = min(total, cfg.max_frames) if total else cfg.max_frames
            progress.start(total, "images" if images else "frames")
            on_frame = progress.update
            if images and not cfg.max_frames:  # a file that is not an image is not counted
                def on_frame(n):
                    progress.update(n, source.announced - len(source.skipped))
        stats = run_loop(source, switcher, sinks, cfg.scale, controls, preview,
                         cfg.max_frames, cfg.snapshot_dir, log=log, on_frame=on_frame)
    # the sinks are closed: what they published is whole
    if isinstance(out, VideoFileSink) and out.written:
        stats.outputs.append(f"{out.written}: {out.encoder}, {out.frames} frames")
    elif isinstance(out, ImageSink) and out.written:
        stats.outputs.append(str(out.written[0]) if not out.folder else
                             f"{out.path}{os.sep}: {len(out.written)} images")
    return stats
