"""Video encoders for the file sink, best first.

- H.264 through PyAV (`av`, a dependency): its wheels bundle FFmpeg with libx264 on Linux,
  macOS and Windows, so every install gets an encoder that browsers, phones and editors play.
- H.264 through OpenCV (`avc1`): only where OpenCV's own FFmpeg has an H.264 encoder; the
  opencv-python wheels do not (no licence for it), so this serves builds of OpenCV that do.
- MPEG-4 Part 2 through OpenCV (`mp4v`): in every OpenCV; plays in VLC and ffmpeg but not in
  every browser, so choosing it is announced with the reason.

`.avi` is Motion JPEG through OpenCV (what that container is used for). Every encoder writes
whole frames at one size; H.264 in 4:2:0 needs even sides, so an odd side is rounded down
by one (the sink crops that last row or column), and at least 2 pixels.

Timing: PyAV writes each frame at the time it is given (a variable-frame-rate source stays
variable); OpenCV's writers, and so `.avi`, hold one constant rate (`Encoder.timed` says
which, and so whether the source's sound can be added in sync: livestyle.audio).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from livestyle.paths import for_opencv

H264_PRESET = "veryfast"  # x264: among its fastest presets, still small files
H264_CRF = "20"  # x264 quality: 18 is visually lossless, 23 its default
# 90 kHz, MPEG's clock: whole ticks for a frame at 24, 25, 30, 50, 60 and 30000/1001 fps, and
# fine enough for a variable frame rate's own times
TIME_BASE = Fraction(1, 90000)


class EncoderUnavailable(RuntimeError):
    """This encoder cannot write here; the message says why."""


class Encoder:
    description = "?"  # for the log line: "H.264 (libx264 via PyAV)"
    codec = "?"  # the four characters a reader reports: h264, mp4v, MJPG
    timed = False  # True: each frame is written at the time it is given (else one constant rate)

    def __init__(self, size: tuple[int, int]):
        self.size = size  # (w, h) of the frames `write` takes

    def write(self, frame: np.ndarray, pts: float | None = None) -> None:
        """`pts`: seconds from the first frame; None (or an encoder with one constant rate)
        is the next frame at the rate."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def even(size: tuple[int, int]) -> tuple[int, int]:
    return tuple(v - v % 2 for v in size)


class PyAVEncoder(Encoder):
    description = "H.264 (libx264 via PyAV)"
    codec = "h264"
    timed = True

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        try:
            import av
        except ImportError as e:
            raise EncoderUnavailable(f"PyAV is not installed ({e.name}); pip install av") from None
        try:
            av.codec.Codec("libx264", "w")
        except Exception:  # noqa: BLE001 - a PyAV built against an FFmpeg without x264
            raise EncoderUnavailable("this PyAV's FFmpeg has no libx264") from None
        super().__init__(even(size))
        if min(self.size) < 2:
            raise EncoderUnavailable(f"H.264 cannot encode {size[0]}x{size[1]} frames")
        self._av = av
        # faststart: the index goes at the front, so players start before the whole file loads
        options = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov") else {}
        try:
            self._container = av.open(str(path), "w", options=options)
        except Exception as e:  # noqa: BLE001 - PyAV's own errors; OpenCV may still manage
            raise EncoderUnavailable(f"PyAV cannot write {path.name}: {e}") from None
        try:
            rate = Fraction(fps).limit_denominator(1001)
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = self.size
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.time_base = TIME_BASE  # frames at their own times
            # sliced threads: no frames held per thread, so Ctrl-C's final flush is short
            # (same size and PSNR as frame threads on our 640x480 test clip)
            self._stream.options = {"preset": H264_PRESET, "crf": H264_CRF,
                                    "x264-params": "sliced-threads=1"}
        except Exception as e:  # noqa: BLE001 - an older PyAV's API
            self._container.close()
            path.unlink(missing_ok=True)
            raise EncoderUnavailable(f"PyAV cannot set up libx264: {e}") from None
        # the file and its header now, not at the first packet: x264 holds a dozen frames
        # before its first one, and the partial file should be there from the first frame
        # (a second run sees the claim either way)
        try:
            self._container.start_encoding()
        except Exception as e:  # noqa: BLE001 - the encoder refused these settings
            self._container.close()
            path.unlink(missing_ok=True)
            raise EncoderUnavailable(f"libx264 refused {self.size[0]}x{self.size[1]} at "
                                     f"{fps:g} fps: {e}") from None
        self._n = 0
        self._fps = fps
        self._last = -1  # the last frame's pts, in TIME_BASE ticks

    def write(self, frame: np.ndarray, pts: float | None = None) -> None:
        vf = self._av.VideoFrame.from_ndarray(frame, format="bgr24")
        t = pts if pts is not None else self._n / self._fps
        # x264 refuses a time that does not advance: a tick later at least
        vf.pts = self._last = max(round(t / TIME_BASE), self._last + 1)
        vf.time_base = TIME_BASE
        self._n += 1
        for packet in self._stream.encode(vf):
            self._container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):  # the frames x264 still holds
                self._container.mux(packet)
        finally:
            self._container.close()


class OpenCVEncoder(Encoder):
    NAMES = {"avc1": "H.264 (OpenCV avc1)", "mp4v": "MPEG-4 Part 2 (OpenCV mp4v)",
             "MJPG": "Motion JPEG (OpenCV MJPG)"}

    def __init__(self, path: Path, size: tuple[int, int], fps: float, fourcc: str):
        super().__init__(even(size) if fourcc == "avc1" else size)
        self.codec = "h264" if fourcc == "avc1" else fourcc
        self.description = self.NAMES[fourcc]
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # a failed probe
        try:
            with for_opencv(path) as name:  # opened here: the link may go after
                self._writer = cv2.VideoWriter(name, cv2.VideoWriter_fourcc(*fourcc),
                                               fps, self.size)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self._writer.isOpened():
            self._writer.release()
            path.unlink(missing_ok=True)  # a failed open can leave an empty file
            raise EncoderUnavailable(f"OpenCV cannot encode {fourcc} into {path.suffix} here")

    def write(self, frame: np.ndarray, pts: float | None = None) -> None:
        # `pts` is not kept: frame i is at i / fps (Encoder.timed is False)
        self._writer.write(frame)  # reports nothing, not even a full disk (the sink checks)

    def close(self) -> None:
        self._writer.release()  # writes the index: without it the file does not play


def open_encoder(path: Path, size: tuple[int, int], fps: float,
                 prefer: tuple[str, ...] = ("pyav", "avc1", "mp4v")) -> tuple[Encoder, str]:
    """(the first encoder of `prefer` that opens `path` at `size`, a note when it is not
    the first choice); EncoderUnavailable when none does. `.avi` is always Motion JPEG."""
    path = Path(path)
    if path.suffix.lower() == ".avi":
        return OpenCVEncoder(path, size, fps, "MJPG"), ""
    why = []
    for name in prefer:
        try:
            if name == "pyav":
                enc = PyAVEncoder(path, size, fps)
            else:
                enc = OpenCVEncoder(path, size, fps, name)
        except EncoderUnavailable as e:
            why.append(str(e))
            continue
        note = ""
        if why:
            note = (f"note: H.264 is not available here ({'; '.join(why)}); writing "
                    f"{enc.description} instead" + (", which not every browser plays"
                                                    if enc.codec == "mp4v" else ""))
        return enc, note
    raise EncoderUnavailable("; ".join(why))
