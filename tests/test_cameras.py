"""`livestyle cameras`: finding cameras and reading their modes. There is no camera on the
machines these tests were written on: the mode reading runs on real OpenCV captures of video
files written here with a known size, rate and pixel format; the V4L2 node listing runs on a
folder laid out like /dev and sysfs."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from livestyle.cameras import Mode, examine, fourcc_text, linux_devices, probe_modes
from tests.conftest import REPO


def livestyle(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "livestyle", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO)})


def write_clip(path, size, fps, fourcc, frames=6) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        pytest.skip(f"OpenCV here cannot write {fourcc}")
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(cv2.GaussianBlur(rng.integers(0, 256, (size[1], size[0], 3), np.uint8),
                                      (0, 0), 2))
    writer.release()


@pytest.mark.parametrize("name,size,fps,fourcc,reads_as", [
    ("clip.avi", (96, 64), 10.0, "MJPG", "MJPG"),
    ("clip.mp4", (160, 120), 25.0, "mp4v", "FMP4"),  # FFmpeg's name for MPEG-4 part 2
])
def test_probe_reads_back_the_one_mode_a_capture_has(tmp_path, name, size, fps, fourcc, reads_as):
    """A file, like a camera asked for a size it lacks, answers every request with the mode it
    is in: 22 requests give one mode, read back from the capture, not echoed from the asks."""
    path = tmp_path / name
    write_clip(path, size, fps, fourcc)
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    try:
        assert probe_modes(cap) == [Mode(size[0], size[1], fps, reads_as)]
    finally:
        cap.release()


def test_fourcc_numbers_become_their_letters():
    assert fourcc_text(cv2.VideoWriter_fourcc(*"YUYV")) == "YUYV"
    assert fourcc_text(float(cv2.VideoWriter_fourcc(*"MJPG"))) == "MJPG"
    assert fourcc_text(0) == "" and fourcc_text(-1) == ""
    assert fourcc_text(0x01020304) == ""  # not characters


def test_cameras_lists_a_given_source_with_its_mode(tmp_path):
    path = tmp_path / "clip.avi"
    write_clip(path, (96, 64), 10.0, "MJPG")
    r = livestyle("cameras", str(path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"source {path}", "  96x64     10 fps           MJPG"]


def test_a_source_that_does_not_open_is_said_and_exits_1():
    r = livestyle("cameras", "63")
    assert r.returncode == 1, r.stderr
    assert "camera 63\n  -- cannot be opened" in r.stdout, r.stdout
    assert "no camera here gives a picture" in r.stderr and "WARN" not in r.stderr, r.stderr
    cam = examine("63")
    assert cam.modes == [] and cam.problem.startswith("cannot be opened")


@pytest.mark.skipif(not sys.platform.startswith("linux") or glob.glob("/dev/video*"),
                    reason="this machine has V4L2 devices (or is not Linux)")
def test_no_camera_here_says_so_and_exits_1():
    r = livestyle("cameras")
    assert r.returncode == 1 and r.stdout == "", r.stdout
    assert "no camera found (looked at /dev/video*)" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_linux_nodes_in_index_order_named_by_sysfs_without_metadata_nodes(tmp_path):
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    dev.mkdir()
    for n in ("video0", "video1", "video2", "video10", "video-loop", "vbi0"):
        (dev / n).touch()
    for n, name, index in (("video0", "Integrated Camera: Integrated C\n", "0\n"),
                           ("video1", "Integrated Camera: Integrated C\n", "1\n"),
                           ("video10", "livestyle\n", "0\n")):
        (sysfs / n).mkdir(parents=True)
        (sysfs / n / "name").write_text(name)
        (sysfs / n / "index").write_text(index)
    assert linux_devices(dev, sysfs) == [
        (0, str(dev / "video0"), "Integrated Camera: Integrated C"),
        (2, str(dev / "video2"), ""),  # no sysfs entry: listed, unnamed
        (10, str(dev / "video10"), "livestyle"),
    ]
    assert linux_devices(tmp_path / "none", sysfs) == []
