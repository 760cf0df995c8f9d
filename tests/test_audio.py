"""A video output keeps its source's sound (issue 20 row 3): copied as it is where the container
takes the codec, else re-encoded, in sync with the frames (each frame keeps its source time;
the sound keeps its time relative to the first frame), ending where the video ends when the
run is cut short; `--no-audio` leaves it out. Real `livestyle` runs on clips made here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.videos import contents, make_clip

FPS = 12
# a clip cut from a longer recording: its video starts 0.5 s into the sound
LATE_MS = [500 + round(i * 1000 / FPS) for i in range(24)]


def livestyle(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livestyle", *args], capture_output=True,
                          text=True, env={**os.environ, "DISPLAY": ""}, timeout=300)


def run_args(src, out, styles_dir, *more) -> list[str]:
    return ["run", "--source", str(src), "--style", str(styles_dir / "rand-a.onnx"),
            "--output", str(out), "--no-preview", *more]


def assert_in_sync(src, out, copied: bool) -> None:
    """Each frame at its source time, the sound that played with the first frame with the
    output's first frame (within a packet, and a re-encoder's priming), and the sound ending
    where the video does (within a packet).
    (Times from the output's first frame: Matroska, which has no negative times, starts
    everything a little later when the sound's first packet is before the first frame.)"""
    s, o = contents(src), contents(out)
    zero = o.video_ms[0]
    n = len(o.video_ms)  # a run cut short has the first n
    assert o.video_ms == pytest.approx([t - s.video_ms[0] + zero for t in s.video_ms[:n]], abs=1)
    assert o.audio_codec is not None, "the output has no sound"
    video_end = o.video_ms[-1] + 1000 / FPS
    start, end = o.audio_ms
    assert -130 <= start - zero <= 1, (o.audio_ms, zero)  # a packet, and AAC's priming
    assert video_end - 1 <= end <= video_end + 70, (o.audio_ms, video_end)
    if copied:  # the very packets of the source, from the one sounding at the first frame
        i = s.audio_packets.index(o.audio_packets[0])
        assert s.audio_packets[i:i + len(o.audio_packets)] == o.audio_packets
        assert s.audio_starts_ms[i] - s.video_ms[0] == pytest.approx(start - zero, abs=1)


@pytest.mark.parametrize("src_name, codec, ext, done", [
    ("talk.mp4", "aac", ".mp4", "AAC, copied"),
    ("talk.mp4", "aac", ".mov", "AAC, copied"),
    ("talk.mp4", "aac", ".mkv", "AAC, copied"),
    ("talk.mov", "pcm_s16le", ".mp4", "PCM_S16LE, re-encoded to AAC"),  # .mp4 players: no PCM
    ("talk.mov", "pcm_s16le", ".avi", "PCM_S16LE, copied"),
])
def test_the_sound_is_kept_in_sync(tmp_path, styles_dir, src_name, codec, ext, done):
    src, out = tmp_path / src_name, tmp_path / f"out{ext}"
    make_clip(src, times_ms=LATE_MS, audio=codec)
    r = livestyle(*run_args(src, out, styles_dir))
    assert r.returncode == 0, r.stderr
    assert f"24 frames, audio {done}" in r.stderr, r.stderr
    if ext != ".avi":  # .avi holds one constant rate: no times to compare
        assert_in_sync(src, out, copied="copied" in done)
    assert contents(out).audio_codec == ("aac" if "AAC" in done.split(",")[-1] else codec)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, out.name])


def test_a_run_cut_short_ends_its_sound_with_its_last_frame(tmp_path, styles_dir):
    src, out = tmp_path / "talk.mp4", tmp_path / "out.mp4"
    make_clip(src, times_ms=LATE_MS, audio="aac")
    r = livestyle(*run_args(src, out, styles_dir, "--max-frames", "10"))
    assert r.returncode == 0, r.stderr
    assert len(contents(out).video_ms) == 10
    assert_in_sync(src, out, copied=True)


def test_a_run_stopped_by_a_signal_keeps_its_sound(tmp_path, styles_dir):
    src, out = tmp_path / "talk.mp4", tmp_path / "out.mp4"
    make_clip(src, frames=48, fps=FPS, audio="aac")
    proc = subprocess.Popen([sys.executable, "-m", "livestyle",
                             *run_args(src, out, styles_dir, "--loop")],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "DISPLAY": ""})
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith("out.livestyle-partial-") for p in tmp_path.iterdir()) \
                and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        # past the first pass (48 frames) even on a loaded machine, which may draw only ~20 a
        # second: the assertion below wants the whole first pass's sound
        time.sleep(3.0)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "audio AAC, copied" in stderr, stderr
    o = contents(out)
    assert o.audio_ms[0] <= 1 and o.audio_ms[1] >= 4000 - 70, o.audio_ms  # the whole first pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "talk.mp4"]


def test_no_audio_leaves_the_sound_out(tmp_path, styles_dir):
    src, out = tmp_path / "talk.mp4", tmp_path / "out.mp4"
    make_clip(src, times_ms=LATE_MS, audio="aac")
    r = livestyle(*run_args(src, out, styles_dir, "--no-audio"))
    assert r.returncode == 0, r.stderr
    assert ", audio" not in r.stderr, r.stderr
    assert contents(out).audio_codec is None and len(contents(out).video_ms) == 24


# a screen recording's kind of variable frame rate: 12 fps, a one-second pause, 12 fps again
PAUSED_MS = [round(i * 1000 / FPS) for i in range(12)] + \
    [2000 + round(i * 1000 / FPS) for i in range(12)]


def write_with_sink(src, out, monkeypatch=None, prefer=None):
    """`src`'s frames through a VideoFileSink at their own times (as `run` sends them), with
    `src`'s sound; `prefer`: the encoders open_encoder tries. (sink, log lines)."""
    import av

    from livestyle import encoders
    from livestyle.sinks import video

    if prefer is not None:
        monkeypatch.setattr(video, "open_encoder",
                            lambda p, s, f: encoders.open_encoder(p, s, f, prefer=prefer))
    logs: list[str] = []
    sink = video.VideoFileSink(out, fps=FPS, log=logs.append)
    sink.audio_from = str(src)
    with av.open(os.fspath(src)) as c:
        frames = [(f.to_ndarray(format="bgr24"), float(f.time)) for f in c.decode(video=0)]
    for img, t in frames:
        sink.send(img, t - frames[0][1])
    sink.close()
    return sink, logs


def test_a_remux_that_loses_frames_keeps_the_whole_video_without_sound(tmp_path, monkeypatch):
    """The file with sound replaces the video only once it plays every frame: a remux that
    dropped video packets would otherwise lose the finished video too (nothing saved)."""
    import livestyle.audio

    src, out = tmp_path / "talk.mp4", tmp_path / "out.mp4"
    make_clip(src, times_ms=LATE_MS, audio="aac")

    def losing(video, source, dest):  # a remux that kept 3 of the 24 frames
        make_clip(dest, frames=3, fps=FPS, audio="aac")
        return "AAC, copied"

    monkeypatch.setattr(livestyle.audio, "add_audio", losing)
    sink, logs = write_with_sink(src, out)
    assert sink.written == out and sink.audio == ""
    o = contents(out)
    assert len(o.video_ms) == 24 and o.audio_codec is None
    assert any("without the source's sound" in m and "3 of the 24 frames" in m for m in logs), logs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "talk.mp4"]


@pytest.mark.parametrize("times, prefer, kept", [
    (LATE_MS, ("pyav",), True),  # frames at their own times: always in sync
    (PAUSED_MS, ("pyav",), True),
    (LATE_MS, ("mp4v",), True),  # one constant rate, the source's: in sync
    (PAUSED_MS, ("mp4v",), False),  # one constant rate, a variable source: it would drift
])
def test_the_sound_is_added_only_where_it_stays_in_sync(tmp_path, monkeypatch, times, prefer,
                                                         kept):
    src, out = tmp_path / "talk.mp4", tmp_path / "out.mp4"
    make_clip(src, times_ms=times, audio="aac")
    sink, logs = write_with_sink(src, out, monkeypatch, prefer)
    o = contents(out)
    assert len(o.video_ms) == 24
    if kept:
        assert sink.audio == "AAC, copied" and o.audio_codec == "aac", logs
        if prefer == ("pyav",):
            assert o.video_ms == pytest.approx([t - times[0] for t in times], abs=1)
    else:
        assert sink.audio == "" and o.audio_codec is None
        assert any("without the source's sound" in m and "variable frame rate" in m
                   for m in logs), logs


def test_a_variable_frame_rate_source_into_avi_is_written_without_sound(tmp_path, styles_dir):
    src, out = tmp_path / "talk.mov", tmp_path / "out.avi"
    make_clip(src, times_ms=PAUSED_MS, audio="pcm_s16le")
    r = livestyle(*run_args(src, out, styles_dir))
    assert r.returncode == 0, r.stderr
    assert "without the source's sound" in r.stderr and "drift" in r.stderr, r.stderr
    assert "24 frames" in r.stderr and ", audio" not in r.stderr, r.stderr
    assert contents(out).audio_codec is None and len(contents(out).video_ms) == 24


def test_steady_rate(tmp_path):
    from livestyle.audio import steady_rate

    steady, paused = tmp_path / "steady.mp4", tmp_path / "paused.mp4"
    make_clip(steady, times_ms=LATE_MS)
    make_clip(paused, times_ms=PAUSED_MS)
    assert steady_rate(steady, FPS, 24)
    assert not steady_rate(steady, 15, 24)  # the file would be written at another rate
    assert not steady_rate(paused, FPS, 24)
    assert steady_rate(paused, FPS, 12)  # a run cut short before the pause
    assert not steady_rate(tmp_path / "missing.mp4", FPS, 24)


def test_only_a_regular_file_source_is_opened_for_its_sound(tmp_path):
    from livestyle.config import RunConfig, SourceConfig
    from livestyle.pipeline import audio_source

    clip = tmp_path / "talk.mp4"
    make_clip(clip, audio="aac")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def of(source):
        return audio_source(RunConfig(source=SourceConfig(source=source)))

    assert of(str(clip)) == str(clip)
    # a camera, a URL, a device (/dev/video0's kind), a pipe, a folder: no file to reopen
    for other in ("0", "rtsp://camera.local/stream", os.devnull, str(fifo), str(tmp_path)):
        assert of(other) is None, other
