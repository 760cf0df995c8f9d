"""The loop: source -> preprocess -> infer -> postprocess -> sinks, one frame at a time, and
the Pipeline that builds everything around it from a RunConfig.

Real-time policy: at most one frame is in flight per stage (two with a pipelined GPU backend,
whose results come back one call late; the StyleSwitcher pairs them with their source
frames); a live source keeps only its newest frame, so when inference is slow frames are
dropped at the source, counted, and shown on the HUD, instead of queueing up latency.

Stopping: `Controls.request_stop()` (the CLI calls it on Ctrl-C and SIGTERM) ends the loop
after the frame it is on, as if the source had ended, so every sink gets whole frames and is
closed.
"""

from __future__ import annotations

import os
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
from livestyle.keys import Controls, apply_action, hud_lines
from livestyle.sinks.base import Sink
from livestyle.sinks.preview import PreviewWindow
from livestyle.steady import Steadier
from livestyle.styles import Style, StyleError, read_style, resolve, style_files
from livestyle.switching import StyleSwitcher
from livestyle.timers import StageTimers


@dataclass
class RunStats:
    frames: int = 0
    dropped: int = 0  # frames the source dropped during this run
    seconds: float = 0.0
    stage_ms: dict[str, list[float]] = field(default_factory=dict)
    processing_size: tuple[int, int] = (0, 0)
    frame_size: tuple[int, int] = (0, 0)  # the last frame's (w, h)
    scale_reason: str = ""  # why the generator ran smaller than the frame ("" if it did not)
    backend: str = ""
    incomplete: str = ""  # why the source ended before its end (a truncated file)
    outputs: list[str] = field(default_factory=list)  # what was written: "out.mp4: H.264 ..."

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def scale_reason(width: int, height: int, scale: float | None, stroke: float, backend: str,
                 native_side: int | None) -> str:
    """Why the generator runs smaller than a `width` x `height` frame, in the user's terms."""
    if scale is not None:
        why = f"--scale {scale:g}"
    else:
        gpu = backend in backends.GPU_BACKENDS
        budget = auto_scale(width, height, gpu=gpu)
        native = auto_scale(width, height, gpu=gpu, native_side=native_side)
        why = (f"the style's {native_side}-px native side, where it learned its strokes"
               if native < budget else
               "on a CPU a frame larger than 640x480 runs at 640x360 worth of pixels"
               if budget < 1 else "")
    if stroke != 1:
        why = f"{why}, then --stroke {stroke:g}" if why else f"--stroke {stroke:g}"
    return why


def generator_size(bgr: np.ndarray, scale: float | None, stroke: float,
                   backend: str, native_side: int | None = None) -> tuple[int, int]:
    """(w, h) the generator runs at for this frame: `scale` (None: frames.auto_scale, full
    size on a GPU backend, at most the style's native side) divided by the stroke scale."""
    h, w = bgr.shape[:2]
    s = scale if scale is not None else auto_scale(w, h, gpu=backend in backends.GPU_BACKENDS,
                                                   native_side=native_side)
    return processing_size(w, h, s / stroke)


def run_loop(source, switcher: StyleSwitcher, sinks: list[Sink], scale: float | None,
             controls: Controls, preview: PreviewWindow | None = None, max_frames: int = 0,
             snapshot_dir: str = ".", log=print, on_frame=None,
             upscale: str = "style", steady: float = 0.0) -> RunStats:
    """Drive frames from `source` through the current style into every sink until the source
    ends, `q` is pressed or `max_frames` have been read (each is delivered). `scale` None
    picks one per frame size (frames.auto_scale); `upscale` "style" enlarges each result the
    current style's way (Style.upscale), a frames.UPSCALE_FLAGS name every style that way.
    `steady`: the strength of temporal steadying (steady.Steadier; 0 = off), started anew
    with each style.
    `on_frame(n)` is called after the n-th frame is delivered."""
    timers = StageTimers()
    stats = RunStats(backend=switcher.backend.name)
    dropped_before = source.dropped  # a source read before (a warm-up) counts its own drops
    t_start = time.perf_counter()
    size = None
    # each frame's presentation time (Frame.pts) and the generator's input made from it, until
    # it is delivered: the switcher gives back every frame it is handed, in order, so the
    # oldest entry here is the next result's
    pending: deque[tuple[float | None, np.ndarray]] = deque()
    steadier = Steadier(steady)
    steadied_style = switcher.style

    def deliver(bgr: np.ndarray, styled: np.ndarray) -> None:
        nonlocal steadied_style
        t = time.perf_counter()
        pts, small = pending.popleft()
        if switcher.style is not steadied_style:  # a new style is not mixed with the last
            steadier.reset()
            steadied_style = switcher.style
        styled = steadier(small, styled)
        blend = 0.0 if controls.show_original else controls.blend
        out = postprocess(styled, bgr, blend,
                          switcher.style.upscale if upscale == "style" else upscale)
        t2 = time.perf_counter()
        timers.add("postprocess", t2 - t)
        for sink in sinks:
            if getattr(sink, "timed", False):
                sink.send(out, pts)  # a video file keeps the source's timing
            else:
                sink.send(out)
        if preview is not None:
            preview.show_hud = controls.hud
            if controls.hud:  # the text costs string formatting every frame: only when shown
                preview.hud_lines = hud_lines(switcher, timers, controls,
                                              source.dropped - dropped_before, size)
            preview.send(out)
            for action in preview.poll():
                apply_action(action, controls, switcher)
        while controls.snapshot:  # each press is a picture, however fast they come
            controls.snapshot -= 1
            take_snapshot(out, snapshot_dir, switcher.style.name, preview, log)
        timers.add("sinks", time.perf_counter() - t2)
        timers.frame_times.append(time.perf_counter())
        stats.frames += 1
        if on_frame is not None:
            on_frame(stats.frames)

    interrupt = getattr(source, "interrupt", None)
    if interrupt is not None:
        controls.on_stop.append(interrupt)
    controls.running = True
    read = 0
    try:
        # a delayed backend's last frames are still in flight when the reading stops: counting
        # frames read, not delivered, is what makes max_frames exact
        while not (controls.quit or (max_frames and read >= max_frames)):
            t0 = time.perf_counter()
            frame = source.read()
            if frame is None:
                break
            read += 1
            t1 = time.perf_counter()
            timers.add("capture", t1 - t0)
            bgr = to_bgr8(frame.image)
            size = generator_size(bgr, scale, controls.stroke, switcher.backend.name,
                                  switcher.style.native_side)
            small = preprocess(bgr, size)
            pending.append((frame.pts, small))
            t2 = time.perf_counter()
            timers.add("preprocess", t2 - t1)
            ready = switcher.infer(bgr, small)
            timers.add("inference", time.perf_counter() - t2)
            for source_frame, styled in ready:
                deliver(source_frame, styled)
        for source_frame, styled in switcher.flush():
            deliver(source_frame, styled)
    finally:
        controls.running = False
        if interrupt is not None:
            controls.on_stop.remove(interrupt)

    stats.seconds = time.perf_counter() - t_start
    stats.dropped = source.dropped - dropped_before
    stats.incomplete = getattr(source, "truncated", "")
    stats.stage_ms = timers.all
    stats.processing_size = size or (0, 0)
    if size:
        h, w = bgr.shape[:2]
        stats.frame_size = (w, h)
        if size != (w, h):
            stats.scale_reason = scale_reason(w, h, scale, controls.stroke,
                                              switcher.backend.name, switcher.style.native_side)
    return stats


def take_snapshot(image: np.ndarray, folder: str | Path, style: str,
                  preview: PreviewWindow | None, log) -> None:
    """The s key: save `image`, and say where (or why not) in the log and on the window."""
    try:
        path = save_snapshot(image, folder, style)
    except OSError as e:
        message = f"snapshot NOT saved: {folder}: {e.strerror or e}"
        log(message)
        if preview is not None:
            preview.notice(message, error=True)
    else:
        log(f"snapshot saved to {path}")
        if preview is not None:
            preview.notice(f"snapshot saved: {path.name}")


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


def audio_source(cfg: RunConfig) -> str | None:
    """The file whose sound a video output gets: a regular file source only (a camera index,
    a URL, a device such as /dev/video0 or a pipe is not opened again for its sound)."""
    src = cfg.source.source
    if cfg.source.is_camera or cfg.source.is_url:
        return None
    try:
        return src if Path(src).is_file() else None
    except OSError:
        return None


class Pipeline:
    """Everything a RunConfig asks for, built once: the output (claimed first, so a busy or
    existing one fails before anything opens), the styles, the window, the source and the
    virtual camera. `livestyle run`, `livestyle bench` and benchmarks/soak.py all run this,
    so what they measure is what runs.

    `source`: an open source read instead of cfg.source (the bench's stamped camera);
    `sinks`: more sinks after the configured ones. The pipeline owns both and closes them.
    A context manager; `close()` releases everything, outputs first: they are whole and
    published before any wait for a style still loading (StyleSwitcher.close)."""

    def __init__(self, cfg: RunConfig, log=print, controls: Controls | None = None,
                 source=None, sinks: tuple[Sink, ...] | list[Sink] = ()):
        cfg.validate(more_sinks=bool(sinks))
        self.cfg, self.log = cfg, log
        self.controls = controls or Controls()
        self.controls.blend, self.controls.stroke = cfg.blend, cfg.stroke
        self.switcher: StyleSwitcher | None = None
        self.output = None  # the video or image sink of --output
        self.preview: PreviewWindow | None = None
        self.sinks: list[Sink] = []
        self._stack = ExitStack()
        for owned in (*sinks, *([source] if source is not None else [])):
            self._stack.callback(owned.close)
        try:
            self._build(source, list(sinks))
        except BaseException:
            self.close()
            raise

    def _build(self, source, extra_sinks: list[Sink]) -> None:
        from livestyle.images import ImageSink, ImageSource, list_images
        from livestyle.sinks.resize import Resized
        from livestyle.sinks.vcam import VirtualCameraSink
        from livestyle.sinks.video import VideoFileSink

        cfg, log, stack = self.cfg, self.log, self._stack
        styles = [resolve(s) for s in cfg.styles]  # unknown styles fail before the camera opens
        images = cfg.source.is_images
        show = cfg.preview and not (images and cfg.output)
        if show:  # the keys that reach every installed style come only from the window
            styles += installed_styles(exclude={s.path.resolve() for s in styles})
        if cfg.output:
            if images:
                folder = Path(cfg.source.source).is_dir()
                names = [p.name for p in list_images(Path(cfg.source.source))] if folder else ()
                self.output = ImageSink(cfg.output, folder=folder, overwrite=cfg.overwrite,
                                        source_names=names, log=log)
            else:
                self.output = VideoFileSink(cfg.output, overwrite=cfg.overwrite, log=log)
            stack.enter_context(self.output)
            self.sinks.append(Resized(self.output, cfg.output_size) if cfg.output_size
                              else self.output)
        self.switcher = StyleSwitcher(styles, cfg.backend, cfg.threads, log=log)
        if show:
            self.preview = stack.enter_context(PreviewWindow())
        if source is not None:
            self.source = source
        elif images:  # with no output, the photo stays in the window/vcam until q
            self.source = stack.enter_context(ImageSource(
                cfg.source, repeat=not cfg.output, log=log, output_suffix=self._image_suffix))
        else:
            self.source = stack.enter_context(
                open_source(cfg.source, watched=bool(show or cfg.vcam), log=log))
        info = self.source.info
        log(f"source: {info.description} {info.width}x{info.height} @ {info.fps:g} fps; "
            f"style {styles[0].name} on {self.switcher.backend.name}")
        if isinstance(self.output, VideoFileSink):
            self.output.fps = info.fps
            if cfg.audio and source is None:
                self.output.audio_from = audio_source(cfg)
        elif isinstance(self.output, ImageSink):
            self.output.names = self.source.names
            self.output.alphas = getattr(self.source, "alphas", [])
        if cfg.vcam:
            size = (fit_size(cfg.output_size, info.width, info.height) if cfg.output_size
                    else (info.width, info.height))
            vcam = stack.enter_context(VirtualCameraSink(*size, info.fps, cfg.vcam_device,
                                                         cfg.vcam_backend))
            log(f"virtual camera: {vcam.device}")
            self.sinks.append(Resized(vcam, size) if cfg.output_size else vcam)
        self.sinks += extra_sinks

    def _image_suffix(self, name: str) -> str | None:
        """The suffix of the file an image source's `name` is written to (None: shown only);
        a folder keeps each image's own name and so its format."""
        out = self.cfg.output
        if not out:
            return None
        return (Path(name) if Path(self.cfg.source.source).is_dir() else Path(out)).suffix.lower()

    def run(self, on_frame=None) -> RunStats:
        """The loop until the source ends, q, cfg.max_frames or controls.request_stop()."""
        cfg = self.cfg
        return run_loop(self.source, self.switcher, self.sinks, cfg.scale, self.controls,
                        self.preview, cfg.max_frames, cfg.snapshot_dir, log=self.log,
                        on_frame=on_frame, upscale=cfg.upscale,
                        # photos are pictures of their own: none is mixed with the one before
                        steady=0.0 if cfg.source.is_images else cfg.steady)

    def warm_up(self, frames: int) -> None:
        """The next `frames` frames of the source through the style to no sink and no
        window, uncounted: what the first frames pay (compilation, allocation) is paid before
        a measurement starts."""
        controls = Controls(blend=self.cfg.blend, stroke=self.cfg.stroke)
        run_loop(self.source, self.switcher, [], self.cfg.scale, controls, max_frames=frames,
                 log=self.log, upscale=self.cfg.upscale, steady=self.cfg.steady)

    def progress_hook(self, progress):
        """on_frame for `run` that drives `progress` (livestyle.progress.Progress) for a file
        or image source; None where there is no end to count towards (camera, stream, loop,
        a photo shown until q)."""
        cfg, source = self.cfg, self.source
        images = cfg.source.is_images
        finite = not cfg.source.loop and not (images and not cfg.output)
        if progress is None or not finite or not hasattr(source, "announced"):
            return None
        total = source.announced
        if cfg.max_frames:
            total = min(total, cfg.max_frames) if total else cfg.max_frames
        progress.start(total, "images" if images else "frames")
        if images and not cfg.max_frames:  # a file that is not an image is not counted
            return lambda n: progress.update(n, source.announced - len(source.skipped))
        return progress.update

    def written(self) -> list[str]:
        """What the output holds, once closed: "PATH: encoder, N frames" or the images."""
        from livestyle.images import ImageSink
        from livestyle.sinks.video import VideoFileSink

        out = self.output
        if isinstance(out, VideoFileSink) and out.written:
            sound = f", audio {out.audio}" if out.audio else ""
            return [f"{out.written}: {out.encoder}, {out.frames} frames{sound}"]
        if isinstance(out, ImageSink) and out.written:
            return [str(out.written[0]) if not out.folder else
                    f"{out.path}{os.sep}: {len(out.written)} images"]
        return []

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            if self.switcher is not None:
                self.switcher.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run(cfg: RunConfig, log=print, controls: Controls | None = None,
        progress=None) -> RunStats:
    """Build everything `cfg` asks for, run the loop, release everything on every exit path.

    Pass `controls` to stop the run from outside (Controls.request_stop), and `progress`
    (livestyle.progress.Progress) for a progress line on a file or image source. An image
    source (a photo, a folder of them) with an output opens no window: it writes and ends."""
    with Pipeline(cfg, log=log, controls=controls) as pipeline:
        stats = pipeline.run(on_frame=pipeline.progress_hook(progress))
    stats.outputs = pipeline.written()  # the sinks are closed: what they published is whole
    return stats
