"""The real preview window on a real X display (Xvfb), driven by real key presses (xdotool)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from livestyle import backends
from tests.conftest import CLIP, need, read_all

TOOLS = ("Xvfb", "xdotool", "import")


@pytest.fixture(scope="module")
def display():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install xvfb xdotool imagemagick; "
                    ".ci/run installs them)")
    num = 90 + os.getpid() % 9
    proc = subprocess.Popen(["Xvfb", f":{num}", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = f"/tmp/.X11-unix/X{num}"
    for _ in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.skip("Xvfb did not start")
    yield f":{num}"
    proc.terminate()
    proc.wait(timeout=10)


def x(display, *args) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30,
                          env={**os.environ, "DISPLAY": display}).stdout.strip()


def screenshot(display, window: str) -> np.ndarray:
    """What the X server shows inside the window (ImageMagick's import reads the screen)."""
    png = subprocess.run(["import", "-window", window, "png:-"], capture_output=True,
                         timeout=30, env={**os.environ, "DISPLAY": display}).stdout
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def nearest(shot: np.ndarray, frames: list[np.ndarray]) -> float:
    """Mean absolute difference to the most similar of `frames`."""
    h, w = frames[0].shape[:2]
    shot = shot[:h, :w].astype(int)
    return min(np.abs(shot - f.astype(int)).mean() for f in frames)


def wait_for(predicate, timeout=30.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_window_shows_styles_switches_toggles_and_quits(display, styles_dir, tmp_path):
    clip = need(CLIP)
    src = read_all(clip)
    styled = {}
    for name in ("rand-a", "rand-b"):
        with backends.create("onnxruntime", styles_dir / f"{name}.onnx") as b:
            styled[name] = [b.infer(f).copy() for f in src]
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "livestyle", "run", "--source", str(clip), "--loop",
             "--style", str(styles_dir / "rand-a.onnx"), "--style", str(styles_dir / "rand-b.onnx"),
             "--snapshot-dir", str(tmp_path), "--backend", "onnxruntime"],
            stderr=err, stdout=subprocess.DEVNULL, env={**os.environ, "DISPLAY": display})
    try:
        wait_for(lambda: x(display, "xdotool", "search", "--name", "^livestyle$"), what="window")
        window = x(display, "xdotool", "search", "--name", "^livestyle$").split()[0]
        x(display, "xdotool", "windowfocus", window)

        def press(key):
            x(display, "xdotool", "key", "--window", window, key)
            time.sleep(0.6)  # a few frames at 12.5 fps

        # the window exists before the first frame reaches it: wait for a picture
        wait_for(lambda: screenshot(display, window).max() > 0, what="a frame in the window")
        press("h")  # HUD off, so the screenshot is the picture alone
        shot = screenshot(display, window)
        assert nearest(shot, styled["rand-a"]) < 3, "window does not show style rand-a"
        assert nearest(shot, src) > 20, "window shows the unstyled frame"

        press("n")
        wait_for(lambda: "style: rand-b" in log.read_text(), what="switch to rand-b")
        time.sleep(0.5)
        shot = screenshot(display, window)
        assert nearest(shot, styled["rand-b"]) < 3, "after n, the window does not show rand-b"

        press("space")  # show the original
        assert nearest(screenshot(display, window), src) < 3, "space did not show the original"

        press("s")  # snapshot of what is shown: the original frame
        wait_for(lambda: list(tmp_path.glob("livestyle-*.png")), what="snapshot")
        snap = cv2.imread(str(next(tmp_path.glob("livestyle-*.png"))))
        assert snap.shape == src[0].shape and nearest(snap, src) < 1

        press("q")
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "Traceback" not in text and "frames in" in text, text
