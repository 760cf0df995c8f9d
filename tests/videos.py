"""Small test videos made with PyAV: constant or variable frame rate, with or without sound,
and what a written file holds (timestamps, audio)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

MS = Fraction(1, 1000)


def make_clip(path, times_ms=None, frames: int = 24, fps: int = 12, size=(96, 64),
              audio: str | None = None, sample_rate: int = 16000) -> None:
    """A clip of moving bars at `fps`, or with frames at `times_ms` (variable frame rate);
    `audio`: an audio codec ("aac", "pcm_s16le"...) for a 440 Hz tone as long as the video."""
    times = times_ms if times_ms is not None else [round(i * 1000 / fps) for i in range(frames)]
    end = times[-1] + (times[-1] - times[-2] if len(times) > 1 else 100)
    w, h = size
    with av.open(os.fspath(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.codec_context.time_base = MS
        a = None
        if audio:
            a = out.add_stream(audio, rate=sample_rate)
            a.layout = "mono"
        for i, t in enumerate(times):
            img = np.zeros((h, w, 3), np.uint8)
            img[:, (i * 7) % w:(i * 7) % w + 8] = (40 * i % 256, 255, 128)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = t, MS
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode(None):
            out.mux(packet)
        if a is not None:
            n = sample_rate * end // 1000
            tone = (np.sin(np.arange(n) * 2 * np.pi * 440 / sample_rate) * 8000).astype(np.int16)
            step = 1024
            for start in range(0, n, step):
                chunk = tone[start:start + step].reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
                frame.sample_rate, frame.pts = sample_rate, start
                frame.time_base = Fraction(1, sample_rate)
                for packet in a.encode(frame):
                    out.mux(packet)
            for packet in a.encode(None):
                out.mux(packet)


@dataclass
class Contents:
    video_ms: list[float]  # each video frame's presentation time, in order
    audio_codec: str | None
    audio_ms: tuple[float, float] | None  # (start, end) of the audio
    audio_packets: list[bytes]
    audio_starts_ms: list[float]  # each audio packet's time


def contents(path) -> Contents:
    """What the file at `path` holds."""
    with av.open(os.fspath(path)) as c:
        video_ms = [float(f.time) * 1000 for f in c.decode(video=0)]
    with av.open(os.fspath(path)) as c:
        if not c.streams.audio:
            return Contents(video_ms, None, None, [], [])
        s = c.streams.audio[0]
        packets = [p for p in c.demux(s) if p.size]
        start = min(float(p.pts * p.time_base) for p in packets)
        end = max(float((p.pts + p.duration) * p.time_base) for p in packets)
        return Contents(video_ms, s.codec_context.name, (start * 1000, end * 1000),
                        [bytes(p) for p in packets],
                        [float(p.pts * p.time_base) * 1000 for p in packets])
