"""A video file that appears whole or not at all.

Frames go to `<name>.livestyle-partial-<pid>.<ext>` beside the target; `close()` finalizes
the container, checks that it plays back with every frame written, and only then renames it
to the target (livestyle.atomic). So the target never holds a file without its index: not
after Ctrl-C (the file is finalized and renamed), not after a full disk (the run fails
naming the file and the cause, and the partial file is removed), not after SIGKILL (the
target is untouched; the next run on the same output removes the dead run's partial file).
An existing target is replaced only with `overwrite=True`, and two sinks (in two processes)
cannot write one target at once (atomic.OutputClaim).

A file has one frame size, its first frame's: frames of another size (a camera that
reconnects at another resolution, a source whose size changes) are resized to it rather
than dropped by the encoder. A file that never got a frame is not left behind.

The encoder is H.264 where the platform has one, else what works, said in the log
(livestyle.encoders); the log line names the one used. Frames keep the times they are sent
with (a variable frame rate stays variable) where the encoder can, and with `audio_from`
set the finished file gets that file's sound before it is published (livestyle.audio),
when it can be in sync and the file with it still plays every frame.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from livestyle.atomic import fsync_file, partial_path, publish, stale_partials
from livestyle.encoders import Encoder, EncoderUnavailable, open_encoder
from livestyle.interrupts import deferred_interrupts
from livestyle.paths import for_opencv
from livestyle.sinks.base import Sink, SinkError, claim_output

LOW_SPACE = 1 << 20  # below this many free bytes a failed file is put down to a full disk


def playable_frames(path: str | Path) -> int:
    """Frames the container of `path` announces, after checking its first frame decodes;
    0 when it does not open (no index: an interrupted or failed write)."""
    with for_opencv(path) as name:
        cap = cv2.VideoCapture(name)
    try:
        if not cap.isOpened() or not cap.read()[0]:
            return 0
        return max(1, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()


def _why_incomplete(folder: Path) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError as e:
        return f"its folder became unreadable ({e.strerror})"
    if free < LOW_SPACE:
        return f"no space left on the device ({free // 1024} KB free in {folder})"
    return "the encoder could not finish it (an I/O error?)"


def _cause(e: Exception, folder: Path) -> str:
    """What an encoder's exception means for the user: the OS error it carries, else a full
    disk or an I/O error as the folder shows."""
    errno = getattr(e, "errno", None)
    if errno:
        return os.strerror(errno).lower()
    return _why_incomplete(folder)


class VideoFileSink(Sink):
    name = "video"
    timed = True  # keeps the source's timing: a variable frame rate stays variable

    def __init__(self, path: str | Path, fps: float | None = None, overwrite: bool = False,
                 log=None):
        """`fps` may be set later (before the first frame). Raises SinkError when another
        run is writing `path`, or when it exists and `overwrite` is False."""
        self.path = Path(path)
        self.fps = fps
        self.encoder = ""  # what wrote the file, once it is open: "H.264 (libx264 via PyAV)"
        self.written: Path | None = None  # the published file, once it is
        self.overwrite = overwrite
        self.audio_from: str | None = None  # a file whose sound the video gets (livestyle.audio)
        self.audio = ""  # what was done with it, once it is: "AAC, copied"
        self._log = log or (lambda m: None)
        if self.path.exists() and not overwrite:
            raise SinkError(f"{self.path} exists; pass --overwrite (-y) to replace it, or pick "
                            "another --output")
        self._claim = claim_output(self.path, "video ")
        self._sweep()
        self.partial = partial_path(self.path)
        self._writer: Encoder | None = None
        self._size: tuple[int, int] | None = None  # (w, h) the file was opened at
        self._timed = False  # whether the encoder keeps each frame's time (Encoder.timed)
        self.frames = 0

    def _sweep(self) -> None:
        """Partial files of earlier runs on this output: their writers are gone (we hold the
        claim). One that does not play is removed; one that plays is kept, and named."""
        for p in stale_partials(self.path):
            if playable_frames(p):
                self._log(f"note: {p} is left from an interrupted run and plays; keeping it")
            else:
                p.unlink(missing_ok=True)
                self._log(f"removed {p.name}, the unplayable leftover of a killed run")

    def send(self, frame: np.ndarray, pts: float | None = None) -> None:
        """`pts`: when the frame is shown, seconds from the source's start (None: the next
        one at the rate); an encoder that can keeps it (encoders.Encoder.write)."""
        if self._writer is None:
            w, h = frame.shape[1::-1]
            fps = self.fps or 30.0
            try:
                writer, note = open_encoder(self.partial, (w, h), fps)
            except (EncoderUnavailable, OSError, ValueError) as e:
                self.partial.unlink(missing_ok=True)  # a failed open can leave an empty file
                raise SinkError(f"cannot write video {self.path} ({w}x{h} at {fps:g} fps): "
                                f"{e}; check the folder is writable and the extension is "
                                ".mp4, .mkv, .mov or .avi") from None
            if note:
                self._log(note)
            self._writer, self._size, self.encoder = writer, writer.size, writer.description
            self._timed = writer.timed
            self._log(f"writing {self.path}: {writer.description}, {writer.size[0]}x"
                      f"{writer.size[1]} at {fps:g} fps")
        fw, fh = frame.shape[1::-1]
        if (fw, fh) != self._size:
            if 0 <= fw - self._size[0] <= 1 and 0 <= fh - self._size[1] <= 1:
                frame = frame[:self._size[1], :self._size[0]]  # an odd side, for H.264
            else:
                frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA if fw >
                                   self._size[0] else cv2.INTER_LINEAR)
        try:
            # OpenCV's writer reports nothing, not even a full disk...
            self._writer.write(np.ascontiguousarray(frame), pts)
        except Exception as e:  # noqa: BLE001 - PyAV's errors: the disk, the encoder
            raise SinkError(f"cannot write video {self.path}: {_cause(e, self.path.parent)}; "
                            "stopping") from None
        self.frames += 1
        if self.frames % 30 == 0:  # ...so look at the free space about once a second
            try:
                free = shutil.disk_usage(self.partial.parent).free
            except OSError:
                free = LOW_SPACE
            if free < 64 << 10:  # the encoder buffers 32 KB: it is failing or about to
                raise SinkError(f"cannot write video {self.path}: "
                                f"{_why_incomplete(self.path.parent)}; stopping")

    def close(self) -> None:
        """Finalize and publish (SinkError if the file could not be completed)."""
        if self._claim is None:
            return
        try:
            with deferred_interrupts():  # Ctrl-C now would strand a finished file
                self._finish()
        finally:
            self._claim.release()
            self._claim = None

    def _needed_frames(self) -> int:
        """The frames the file must play to hold every frame written."""
        # mp4, mov and avi index every frame; Matroska's count is duration x rate
        exact = self.path.suffix.lower() in (".mp4", ".mov", ".avi")
        return self.frames - (0 if exact else 1 + self.frames // 50)

    def _add_audio(self) -> None:
        """The source's sound into the finished partial file (livestyle.audio), in sync: the
        encoder keeps each frame's time, or the source's frames are at the file's constant
        rate. The file with sound replaces the partial one only once it plays with every
        frame; otherwise the video stays as it is, without sound, and the log says why."""
        from livestyle.audio import add_audio, steady_rate

        def without(why: str) -> None:
            self.audio = ""
            self._log(f"note: {self.path} is written without the source's sound: {why}")

        if not self._timed and not steady_rate(self.audio_from, self.fps or 30.0, self.frames):
            without(f"{self.encoder} writes one constant frame rate and the source's frames "
                    f"are not at {self.fps or 30.0:g} fps (a variable frame rate), so the "
                    "sound would drift out of sync")
            return
        tmp = self.partial.with_name(f"{self.partial.stem}-audio{self.partial.suffix}")
        try:
            self.audio = add_audio(self.partial, self.audio_from, tmp)
            if self.audio:
                plays = playable_frames(tmp)
                if plays < self._needed_frames():
                    tmp.unlink(missing_ok=True)
                    without(f"the file with it plays {plays} of the {self.frames} frames "
                            "written, so the video is kept as it was")
                    return
                os.replace(tmp, self.partial)
        except Exception as e:  # noqa: BLE001 - PyAV's errors, the disk: the video is whole
            tmp.unlink(missing_ok=True)
            without(_cause(e, self.path.parent) if isinstance(e, OSError) else str(e))

    def _finish(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()  # writes the index: without it the file does not play
            except Exception as e:  # noqa: BLE001 - PyAV's errors: the disk, the encoder
                self.partial.unlink(missing_ok=True)
                raise SinkError(f"cannot write video {self.path}: "
                                f"{_cause(e, self.path.parent)}; nothing was saved") from None
        if self.frames == 0:  # nothing, or only a header, which no player opens
            self.partial.unlink(missing_ok=True)
            return
        if self.audio_from:
            self._add_audio()
        try:
            fsync_file(self.partial)
            ok = playable_frames(self.partial) >= self._needed_frames()
            cause = "" if ok else _why_incomplete(self.path.parent)
        except OSError as e:
            ok, cause = False, f"{e.strerror or e}"
        if not ok:
            self.partial.unlink(missing_ok=True)
            raise SinkError(f"cannot write video {self.path}: {cause}; nothing was saved")
        try:
            self.written = publish(self.partial, self.path, overwrite=self.overwrite)
        except FileExistsError:
            raise SinkError(f"{self.path} appeared while this run was writing it; this run's "
                            f"video is kept as {self.partial}") from None
        except OSError as e:
            self.partial.unlink(missing_ok=True)
            raise SinkError(f"cannot write video {self.path}: {e.strerror}") from None
