"""The source's sound in a video output.

The frames are written first (livestyle.encoders); when the file is complete, `add_audio`
writes it once more beside the source's first audio stream: the video's packets as they
are, the audio's copied without re-encoding when the container takes its codec (AAC into
.mp4, anything into .mkv), else re-encoded (to AAC; to PCM in .avi). One pass over the two
files, no video decoding: a few seconds for an hour of video.

Sync: the output's time 0 is the source video's first frame (the frames carry the source's
own times, camera.Frame.pts), so each audio packet keeps its time relative to that frame.
The audio ends where the video does: a run cut short (Ctrl-C, --max-frames) has the sound
up to its last frame, not the rest of the talk. A looped source's sound is its first pass.
That holds for an encoder that keeps each frame's time (encoders.Encoder.timed); one with a
constant rate (OpenCV's, so .avi) gets the sound only when the source's frames are at that
rate (`steady_rate`): a variable-frame-rate source's sound would drift (the sink says so).
"""

from __future__ import annotations

import heapq
import os
from pathlib import Path

import av

# the codecs copied into each container as they are: those its players play (FFmpeg would
# also put PCM into .mp4, which browsers and phones do not play); .mkv takes any
COPY = {".mp4": {"aac", "mp3", "opus", "flac", "alac", "ac3", "eac3"},
        ".mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s16be", "pcm_s24le",
                 "pcm_f32le"},
        ".avi": {"mp3", "ac3", "pcm_s16le", "pcm_u8"}}
# what the others are re-encoded to
REENCODE = {".avi": "pcm_s16le"}  # Motion JPEG's container: plain PCM plays everywhere
DEFAULT_REENCODE = "aac"


def steady_rate(source: str | Path, fps: float, frames: int) -> bool:
    """Whether the first `frames` frames of `source`'s video are at `fps`, one after the
    other: each within half a frame of its place at that rate from the first. An encoder
    with one constant rate (OpenCV's, so .avi) puts frame i at i / fps; the sound is at the
    source's own times, so it stays in sync only then. False when it cannot tell."""
    try:
        with av.open(os.fspath(source)) as c:
            v = c.streams.video[0]
            times = sorted(_seconds(p.pts, p.time_base) for p in c.demux(v) if p.pts is not None)
    except (av.FFmpegError, OSError, IndexError):
        return False
    if not times or fps <= 0:
        return False
    return all(abs(t - times[0] - i / fps) <= 0.5 / fps
               for i, t in enumerate(times[:max(frames, 1)]))


def add_audio(video: Path, source: str | Path, out: Path) -> str:
    """Write `out`: `video`'s video stream and `source`'s first audio stream (module
    docstring). Returns what was done for the log ("AAC, copied"; "PCM_S16LE, re-encoded
    to AAC"); "" when `source` has no audio (then `out` is not written). Raises
    av.FFmpegError or OSError when it cannot; `out` is then removed."""
    with av.open(os.fspath(source)) as src:
        if not src.streams.audio:
            return ""
        name = src.streams.audio[0].codec_context.name
        try:
            if name not in COPY.get(out.suffix.lower(), {name}):
                raise av.FFmpegError(0, f"{name} is re-encoded for {out.suffix}")
            return _remux(video, src, out, copy=True)
        except av.FFmpegError:
            # the container does not take this codec (PCM in .mp4, Vorbis in .mov): re-encode
            out.unlink(missing_ok=True)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
    with av.open(os.fspath(source)) as src:
        try:
            return _remux(video, src, out, copy=False)
        except BaseException:
            out.unlink(missing_ok=True)
            raise


def _seconds(value, time_base) -> float:
    return float(value * time_base)


def _remux(video: Path, src, out: Path, copy: bool) -> str:
    ain = src.streams.audio[0]
    vsrc = src.streams.video[0] if src.streams.video else None
    # the source video's first frame is the output's time 0 (OpenCV counts from there)
    zero = _seconds(vsrc.start_time, vsrc.time_base) if vsrc and vsrc.start_time else 0.0
    name = ain.codec_context.name
    options = {"movflags": "+faststart"} if out.suffix.lower() in (".mp4", ".mov") else {}
    end = _video_end(video)
    with av.open(os.fspath(video)) as vin, av.open(os.fspath(out), "w", options=options) as dst:
        vstream = vin.streams.video[0]
        vout = dst.add_stream_from_template(vstream)
        if copy:
            aout = dst.add_stream_from_template(ain)
            done = f"{name.upper()}, copied"
        else:
            codec = REENCODE.get(out.suffix.lower(), DEFAULT_REENCODE)
            aout = dst.add_stream(codec, rate=ain.codec_context.sample_rate)
            # the usual layout for its channel count (a file may name none, which AAC refuses)
            channels = ain.codec_context.layout.nb_channels
            aout.layout = {1: "mono", 2: "stereo"}.get(channels, ain.codec_context.layout)
            done = f"{name.upper()}, re-encoded to {codec.split('_')[0].upper()}"
        dst.start_encoding()  # raises here when the container refuses the codec

        def video_packets():
            for p in vin.demux(vstream):
                t = p.dts if p.dts is not None else p.pts  # Matroska stores no dts
                if t is not None:
                    p.stream = vout
                    yield _seconds(t, p.time_base), 0, p

        def audio_packets():
            for p in src.demux(ain):
                if p.pts is None:
                    continue
                t = _seconds(p.pts, p.time_base) - zero
                if t + _seconds(p.duration or 0, p.time_base) < 0:
                    continue  # sound before the first frame
                if t >= end:
                    break  # the video ends here (a run cut short)
                shift = round(zero / p.time_base)
                p.pts -= shift
                p.dts = p.dts - shift if p.dts is not None else p.pts
                if copy:
                    p.stream = aout  # else it is decoded first, by its own stream
                yield t, 1, p

        audio = audio_packets() if copy else _reencoded(audio_packets(), aout, end)
        # one stream after the other would make the muxer hold all of one in memory
        for _, _, packet in heapq.merge(video_packets(), audio, key=lambda x: (x[0], x[1])):
            dst.mux(packet)
        if not copy:
            for packet in aout.encode(None):
                dst.mux(packet)
    return done


def _video_end(video: Path) -> float:
    """When the last frame of `video` stops being shown, seconds."""
    end = 0.0
    with av.open(os.fspath(video)) as vin:
        for p in vin.demux(vin.streams.video[0]):
            if p.pts is not None:
                end = max(end, _seconds(p.pts + (p.duration or 0), p.time_base))
    return end


def _reencoded(packets, aout, end: float):
    """The audio `packets` (time, order, packet) decoded and encoded for `aout`."""
    for _, order, packet in packets:
        for frame in packet.decode():
            t = _seconds(frame.pts, frame.time_base) if frame.pts is not None else 0.0
            for p in aout.encode(frame):
                p_t = _seconds(p.pts, p.time_base) if p.pts is not None else t
                yield min(p_t, end), order, p
