"""A video output keeps its source's timing (issue 20 row 12): a variable-frame-rate clip
(a phone's, a screen recording's) is written with every frame at its own time, not re-timed
to one constant rate where fast parts slow down and slow parts speed up; a looped clip's
clock runs on from pass to pass."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.videos import contents, make_clip

# bursts at 25 fps with pauses between: the average rate (about 6 fps) fits none of it
TIMES_MS = [0, 40, 80, 120, 700, 740, 780, 1500, 1540, 2000]


def livestyle(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livestyle", *args], capture_output=True,
                          text=True, env={**os.environ, "DISPLAY": ""}, timeout=300)


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov"])
def test_variable_frame_rate_keeps_each_frames_time(tmp_path, styles_dir, ext):
    clip, out = tmp_path / "vfr.mp4", tmp_path / f"out{ext}"
    make_clip(clip, times_ms=TIMES_MS)
    assert contents(clip).video_ms == TIMES_MS
    r = livestyle("run", "--source", str(clip), "--style", str(styles_dir / "rand-a.onnx"),
                  "--output", str(out), "--no-preview")
    assert r.returncode == 0, r.stderr
    assert contents(out).video_ms == pytest.approx(TIMES_MS, abs=1)


def test_a_looped_clip_runs_on_at_its_own_times(tmp_path, styles_dir):
    clip, out = tmp_path / "vfr.mp4", tmp_path / "out.mp4"
    make_clip(clip, times_ms=TIMES_MS)
    n = 3 * len(TIMES_MS) + 2
    r = livestyle("run", "--source", str(clip), "--style", str(styles_dir / "rand-a.onnx"),
                  "--output", str(out), "--no-preview", "--loop", "--max-frames", str(n))
    assert r.returncode == 0, r.stderr
    period = TIMES_MS[-1] + (TIMES_MS[-1] - TIMES_MS[-2])  # the last frame lasts as the one before
    expected = [k * period + t for k in range(4) for t in TIMES_MS][:n]
    assert contents(out).video_ms == pytest.approx(expected, abs=1)
