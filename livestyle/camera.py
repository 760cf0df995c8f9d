"""Frame sources: webcams and URLs on a capture thread (newest frame wins), files in order.

Real-time policy: a live source never queues. The capture thread overwrites a one-frame slot,
so a slow consumer sees the newest frame and the frames it never saw are counted as dropped.
A file is different: every frame is delivered in order (an output video keeps every frame),
paced at the file's own rate only when someone is watching. A URL is a file when its
container announces a frame count (a clip over HTTP): read in order, it ends at its end;
only a live stream (no frame count) reconnects. A file that ends before the frame count its
container announces is reported as truncated.

Nothing here blocks the main thread in a driver or network call: opening and reading happen
on worker threads, waited for in short slices, so Ctrl-C is handled within a fraction of a
second even when a server accepts the connection and never answers, and `interrupt()` ends
a `read()` that is waiting.
"""

from __future__ import annotations

import glob
import queue
import sys
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from livestyle.config import SourceConfig
from livestyle.paths import for_opencv


class SourceError(RuntimeError):
    """A source that cannot be opened; the message says what was tried and what to do."""


@dataclass
class Frame:
    image: np.ndarray
    index: int  # position in the source's own sequence (gaps = dropped frames)
    t_capture: float  # time.perf_counter() when it was read
    pts: float | None = None  # a file's: when the frame is shown, seconds from its first
    # frame (a variable-frame-rate file's gaps included); None for a live source


@dataclass(frozen=True)
class SourceInfo:
    description: str
    width: int
    height: int
    fps: float


OPEN_TIMEOUT_MS = 10_000  # a URL that does not answer fails after this long...
READ_TIMEOUT_MS = 5_000  # ...and one that stops sending, after this long without data
POLL = 0.05  # seconds the main thread waits at a time, so signals are handled promptly


def interruptible(fn, *args):
    """fn(*args) on a worker thread, waited for in slices so Ctrl-C (KeyboardInterrupt from
    the signal handler) is not held up by a call stuck in a driver or the network. If the
    wait is interrupted, a capture fn returns later is released by the worker."""
    result: list = []
    error: list[BaseException] = []
    abandoned = threading.Event()

    def work():
        try:
            value = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            error.append(e)
            return
        result.append(value)
        if abandoned.is_set() and hasattr(value, "release"):
            value.release()

    t = threading.Thread(target=work, name="livestyle-open", daemon=True)
    t.start()
    try:
        while t.is_alive():
            t.join(POLL)
    except BaseException:
        abandoned.set()
        if result and hasattr(result[0], "release"):
            result[0].release()
        raise
    if error:
        raise error[0]
    return result[0]


def _open_capture(cfg: SourceConfig) -> cv2.VideoCapture:
    if cfg.is_url:
        return cv2.VideoCapture(cfg.source, cv2.CAP_FFMPEG,
                                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS,
                                 cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS])
    if cfg.is_camera:
        # OpenCV logs its own errors for an index with no camera behind it (obsensor's
        # "Camera index out of range" on Linux); the run says that in its own words after
        quiet = cv2.utils.logging
        level = quiet.getLogLevel()
        quiet.setLogLevel(quiet.LOG_LEVEL_SILENT)
        try:
            cap = cv2.VideoCapture(int(cfg.source))
        finally:
            quiet.setLogLevel(level)
        if cap.isOpened():
            # MJPG first: most USB cameras deliver 30 fps at 640x480+ only compressed
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
            cap.set(cv2.CAP_PROP_FPS, cfg.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's queue adds latency, not frames
    else:
        cap = _open_file(cfg.source)
    return cap


def _open_file(path: str) -> cv2.VideoCapture:
    with for_opencv(path) as name:  # a file name that is not UTF-8 crashes OpenCV
        return cv2.VideoCapture(name)


def _no_camera_message(index: str) -> str:
    devices = sorted(glob.glob("/dev/video*")) if sys.platform.startswith("linux") else []
    probed = f"devices present: {', '.join(devices)}" if devices else "no /dev/video* devices"
    if not sys.platform.startswith("linux"):
        probed = "the OS camera API found nothing there"
    return (f"no camera at index {index} ({probed}). Try another index (--source 1), "
            "a video file or URL (--source talk.mp4), and `livestyle doctor` to list cameras.")


class LiveSource:
    """A camera or stream read on its own thread; `read()` returns the newest frame.

    When the device stops delivering (unplugged, stream stalled) the thread reopens it with
    backoff, printing what it does, and gives up once no frame has come for `give_up_after`
    seconds (a device that reopens but delivers nothing does not reset that clock).
    """

    def __init__(self, cfg: SourceConfig, give_up_after: float = 10.0, log=print,
                 opener=_open_capture, cap=None):
        """`opener(cfg)` returns a cv2.VideoCapture-like object (the benchmark passes a
        synthetic camera that stamps each frame's number into its pixels); `cap` is one
        already opened."""
        self.cfg = cfg
        self._log = log
        self._give_up_after = give_up_after
        self._opener = opener
        self._cap = cap if cap is not None else interruptible(opener, cfg)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(_no_camera_message(cfg.source) if cfg.is_camera
                              else f"cannot open stream {cfg.source}: check the URL and network")
        try:
            ok, first = interruptible(self._cap.read)
        except BaseException:
            self._cap.release()
            raise
        if not ok:
            self._cap.release()
            raise SourceError(f"{cfg.source} opened but delivered no frame; is another program "
                              "using the camera?")
        h, w = first.shape[:2]
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        fps = fps if 0 < fps < 1000 else cfg.fps  # streams report 0, NaN or 90000
        self.info = SourceInfo(f"camera {cfg.source}" if cfg.is_camera else cfg.source, w, h, fps)
        self.dropped = 0  # captured frames overwritten before anyone read them
        self._slot: Frame | None = Frame(first, 0, time.perf_counter())
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ended = False
        self._interrupted = False
        self._thread = threading.Thread(target=self._run, name="livestyle-capture", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        index = 1
        outage_since = None  # when the current outage began; None while frames flow
        try:
            while not self._stop.is_set():
                ok, image = self._cap.read()
                if not ok:
                    if outage_since is None:
                        outage_since = time.monotonic()
                    if not self._reconnect(outage_since + self._give_up_after):
                        break
                    continue
                if outage_since is not None:
                    outage_since = None
                    self._log(f"source {self.cfg.source} is back")
                with self._cond:
                    if self._slot is not None:
                        self.dropped += 1  # the consumer never saw the previous frame
                    self._slot = Frame(image, index, time.perf_counter())
                    self._cond.notify()
                index += 1
        finally:
            # the capture is only ever touched on this thread: releasing it from close()
            # while a read() hangs here would free it under the driver's feet
            self._cap.release()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _reconnect(self, deadline: float) -> bool:
        """Reopen with backoff until the source opens (True) or `deadline` passes (False)."""
        delay = 0.25
        while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
            wait = min(delay, left)
            self._log(f"source {self.cfg.source} stopped delivering; reconnecting in {wait:.2f} s")
            if self._stop.wait(wait):
                return False
            self._cap.release()
            self._cap = self._opener(self.cfg)
            if self._cap.isOpened():
                return True
            delay = min(delay * 2, 2.0)
        if not self._stop.is_set():
            self._log(f"source {self.cfg.source} gone for {self._give_up_after:g} s; stopping")
        return False

    def read(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet returned; None once the source has ended.

        Waits while the capture thread reconnects; `timeout` (default: `give_up_after` plus
        5 s) only bounds a device that hangs inside a read without ever failing."""
        if timeout is None:
            timeout = self._give_up_after + 5.0
        with self._cond:
            end = time.monotonic() + timeout
            while self._slot is None and not self._ended:
                if self._interrupted:
                    return None
                left = end - time.monotonic()
                if left <= 0:
                    self._log(f"source {self.cfg.source} delivered nothing for {timeout:g} s; "
                              "stopping")
                    return None
                self._cond.wait(min(left, POLL))
            frame, self._slot = self._slot, None
            return frame

    def interrupt(self) -> None:
        """Make a waiting (and every later) read() return None at once; safe in a signal
        handler (it takes no lock)."""
        self._interrupted = True

    def close(self) -> None:
        """Stop the capture thread; returns within about half a second even if the device
        hangs (the thread then releases it when the driver lets go)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FileSource:
    """Every frame of a video file (or a finite stream), in order; optionally looped and
    paced at its frame rate. Decoding runs on a thread a few frames ahead of the reader.

    Each frame carries its presentation time (Frame.pts), so an output keeps the file's own
    timing, a variable frame rate's included: the decoder's timestamp, from the video
    stream's start; where a file has none (or one that does not advance), the last one plus
    one frame at the file's rate. A looped pass continues where the last one ended."""

    AHEAD = 4  # frames decoded ahead of the reader

    def __init__(self, cfg: SourceConfig, realtime: bool = False, cap=None, log=print):
        self.cfg = cfg
        self._log = log
        self._cap = cap if cap is not None else interruptible(_open_file, cfg.source)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"cannot decode video {cfg.source}: not a video file OpenCV's "
                              "FFmpeg can read (try re-encoding it to H.264 MP4)")
        w = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.info = SourceInfo(cfg.source, w, h, fps if 0 < fps < 1000 else 30.0)
        self.announced = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        self.decoded = 0  # frames decoded in the first pass through the file
        self.truncated = ""  # why the file ended early, if it did
        self.dropped = 0  # a file source never drops
        self._realtime = realtime
        self._index = 0
        self._t0 = None
        self._queue: queue.Queue = queue.Queue(self.AHEAD)
        self._stop = threading.Event()
        self._interrupted = False
        self._done = False
        self._thread = threading.Thread(target=self._decode, name="livestyle-decode",
                                        daemon=True)
        self._thread.start()

    def _short(self) -> bool:
        """Fewer frames than announced, beyond the estimate's slack (Matroska's count is
        duration x rate; mp4 and avi index every frame)."""
        return self.announced > 0 and self.decoded < self.announced - (1 + self.announced // 100)

    def _pts(self, last: float | None, step: float) -> float:
        """The frame just read's presentation time, seconds (FileSource docstring)."""
        t = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if last is not None and not t > last:  # no timestamp in the file (OpenCV says 0)
            t = last + step
        return t

    def _decode(self) -> None:
        first_pass = True
        step = 1.0 / self.info.fps
        offset, last, previous = 0.0, None, None  # a looped pass continues the clock
        try:
            while not self._stop.is_set():
                ok, image = self._cap.read()
                if not ok:
                    if first_pass and self._short():
                        self.truncated = (
                            f"{self.cfg.source} ended after {self.decoded} of the "
                            f"{self.announced} frames its container announces: the file is "
                            "truncated or damaged (or the connection dropped)")
                        self._log(f"source {self.truncated}; stopping there")
                        break
                    if not (self.cfg.loop and (self.decoded or not first_pass)):
                        break
                    first_pass = False
                    self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, image = self._cap.read()
                    if not ok:
                        break
                    # the next pass starts one frame (the last one's length) after this one
                    offset = last + (last - previous if previous is not None else step)
                    last = previous = None
                if first_pass:
                    self.decoded += 1
                pts = self._pts(last - offset if last is not None else None, step) + offset
                previous, last = last, pts
                while not self._stop.is_set():
                    try:
                        self._queue.put((image, pts), timeout=POLL)
                        break
                    except queue.Full:
                        continue
        finally:
            self._cap.release()
            self._put_end()

    def _put_end(self) -> None:
        while True:
            try:
                self._queue.put(None, timeout=POLL)
                return
            except queue.Full:
                if self._stop.is_set():
                    return  # nobody reads any more
                continue

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame; None at the end (or after `interrupt()`). `timeout` (default: no
        limit; a stalled network read fails on its own after READ_TIMEOUT_MS) bounds the
        wait."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._interrupted or self._done:
                return None
            try:
                image = self._queue.get(timeout=POLL)
                break
            except queue.Empty:
                if end is not None and time.monotonic() > end:
                    return None
        if image is None:
            self._done = True
            return None
        image, pts = image
        now = time.perf_counter()
        if self._realtime:
            if self._t0 is None:
                self._t0 = now
            due = self._t0 + self._index / self.info.fps
            if due > now:
                time.sleep(due - now)
                now = time.perf_counter()
        frame = Frame(image, self._index, now, pts)
        self._index += 1
        return frame

    def interrupt(self) -> None:
        """Make a waiting (and every later) read() return None at once."""
        self._interrupted = True

    def close(self) -> None:
        """Stop decoding; returns at once even if a read hangs on the network (the thread
        then releases the capture when the read gives up, READ_TIMEOUT_MS at most)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=0.5 if not self._interrupted else 0.05)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_source(cfg: SourceConfig, watched: bool, log=print) -> LiveSource | FileSource:
    """The right source for `cfg.source`; files are paced when `watched` (window or vcam).

    A URL whose container announces a frame count is a file (read in order, ends at its
    end); one that does not is a live stream (newest frame wins, reconnects)."""
    realtime = watched if cfg.realtime is None else cfg.realtime
    if cfg.is_camera:
        return LiveSource(cfg, log=log)
    if cfg.is_url:
        cap = interruptible(_open_capture, cfg)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open stream {cfg.source}: check the URL and network "
                              f"(no answer within {OPEN_TIMEOUT_MS // 1000} s, or not a video)")
        if cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0:
            return FileSource(cfg, realtime=realtime, cap=cap, log=log)
        return LiveSource(cfg, log=log, cap=cap)
    return FileSource(cfg, realtime=realtime, log=log)
