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
from tests.test_reliability import count_frames, frames_reported

TOOLS = ("Xvfb", "xdotool", "import", "openbox", "wmctrl")


@pytest.fixture(scope="module")
def display():
    """An X display with a window manager, as on a desktop. Without one, Qt 5 left the new
    window black for good in 6 of 40 runs of a 20-line OpenCV script while both cores were
    busy (mapped, viewable, the right size, every imshow returning); with openbox, 0 of 40."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install xvfb xdotool imagemagick "
                    "openbox wmctrl; .ci/run installs them)")
    num = next((n for n in range(90 + os.getpid() % 9, 200)  # one no server holds
                if not os.path.exists(f"/tmp/.X{n}-lock")), None)
    # -noreset: by default the server resets whenever its last client leaves and refuses a
    # client that connects meanwhile ("could not connect"); openbox stays connected, but the
    # display must not depend on that
    proc = subprocess.Popen(["Xvfb", f":{num}", "-screen", "0", "1024x768x24", "-nolisten", "tcp",
                             "-noreset"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # ready when it answers a client, not when its socket file appears
    env = {**os.environ, "DISPLAY": f":{num}"}
    for _ in range(100):
        if subprocess.run(["xdotool", "getdisplaygeometry"], capture_output=True,
                          env=env).returncode == 0:
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"Xvfb is installed but did not start on :{num} within 10 s")
    wm = subprocess.Popen(["openbox"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env=env)
    wait_for(lambda: subprocess.run(["wmctrl", "-m"], capture_output=True,
                                    env=env).returncode == 0, what="the window manager")
    yield f":{num}"
    wm.terminate()
    wm.wait(timeout=10)
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


def wait_for(predicate, timeout=30.0, what="condition", proc=None, log=None):
    """Poll `predicate` until it holds; fail at `timeout`, or at once if `proc` (writing its
    stderr to `log`) has ended, with what the process printed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"livestyle ended (exit {proc.returncode}) before {what}:\n"
                                 f"{log.read_text() if log else ''}")
        time.sleep(0.1)
    if proc is None:
        raise AssertionError(f"timed out waiting for {what}")
    state = "running" if proc.poll() is None else f"exit {proc.returncode}"
    raise AssertionError(f"timed out waiting for {what} (livestyle {state}); its stderr:\n"
                         f"{log.read_text() if log else '(not captured)'}")


def wait_shows(display, window, frames, what, proc, log):
    """Wait (a loaded machine may take a while to draw the next frame) until the window shows
    one of `frames`; fail naming `what` and the closest it came."""
    seen = []

    def close_enough():
        seen.append(nearest(screenshot(display, window), frames))
        return seen[-1] < 3

    try:
        wait_for(close_enough, timeout=15, what=what, proc=proc, log=log)
    except AssertionError as e:
        raise AssertionError(f"{e}\nclosest mean difference: {min(seen, default=None)}") from None


def test_window_shows_styles_switches_toggles_and_quits(display, styles_dir, tmp_path):
    clip = need(CLIP)
    src = read_all(clip)
    styled = {}
    for name in ("rand-a", "rand-b"):
        with backends.create("onnxruntime", styles_dir / f"{name}.onnx") as b:
            styled[name] = [b.infer(f).copy() for f in src]
    proc, log, window = run_window(display, styles_dir, tmp_path, "--snapshot-dir",
                                   str(tmp_path), styles=("rand-a", "rand-b"))
    try:
        x(display, "xdotool", "windowfocus", window)

        def press(key):
            x(display, "xdotool", "key", "--window", window, key)

        def shows(frames, what):
            wait_shows(display, window, frames, what, proc, log)

        press("h")  # HUD off, so the screenshot is the picture alone
        shows(styled["rand-a"], "the window showing style rand-a")
        assert nearest(screenshot(display, window), src) > 20, "window shows the unstyled frame"

        press("n")
        wait_for(lambda: "style: rand-b" in log.read_text(), what="switch to rand-b",
                 proc=proc, log=log)
        shows(styled["rand-b"], "the window showing rand-b after n")

        press("space")  # show the original
        shows(src, "the window showing the original after space")

        press("s")  # snapshot of what is shown: the original frame
        wait_for(lambda: list(tmp_path.glob("livestyle-*.png")), what="snapshot", proc=proc,
                 log=log)
        snap = cv2.imread(str(next(tmp_path.glob("livestyle-*.png"))))
        assert snap.shape == src[0].shape and nearest(snap, src) < 1

        press("q")
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "Traceback" not in text and "frames in" in text, text


# -- issue 11: snapshots (row 4) and the window's close button (row 6) -------------------------

def run_window(display, styles_dir, tmp_path, *extra, styles=("identity",)):
    """`livestyle run` of the looped clip through `styles` (of styles_dir) into a window on
    `display`; (process, stderr file, window id) once a frame shows (the window exists
    before the first frame reaches it)."""
    log = tmp_path / f"stderr-{time.monotonic_ns()}.txt"
    style_args = [a for name in styles for a in ("--style", str(styles_dir / f"{name}.onnx"))]
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "livestyle", "run", "--source", str(need(CLIP)), "--loop",
             *style_args, "--backend", "onnxruntime",
             # what the window shows is compared with each style's own output, frame for frame
             "--steady", "0", *extra],
            stderr=err, stdout=subprocess.DEVNULL, env={**os.environ, "DISPLAY": display})
    try:
        wait_for(lambda: x(display, "xdotool", "search", "--name", "^livestyle$"), what="window",
                 proc=proc, log=log)
        window = x(display, "xdotool", "search", "--name", "^livestyle$").split()[0]

        def shows_a_frame():
            try:  # `import` gives nothing while the window manager is still framing it
                return screenshot(display, window).max() > 0
            except cv2.error:
                return False

        wait_for(shows_a_frame, what="a frame in the window", proc=proc, log=log)
    except BaseException:
        proc.kill()
        raise
    return proc, log, window


def red_pixels(shot: np.ndarray) -> int:
    """Pixels of the HUD's error red; the HUD's own text is white on a darkened band."""
    b, g, r = (shot[:120, :, i].astype(int) for i in range(3))
    return int(((r > 180) & (g < 110) & (b < 110)).sum())


@pytest.fixture()
def read_only_dir(tmp_path):
    """A folder no one can write to: a read-only tmpfs (root writes anywhere else), or a
    mode-555 folder for an ordinary user."""
    d = tmp_path / "read-only"
    d.mkdir()
    if os.geteuid() != 0:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(d)],
                      capture_output=True).returncode != 0:
        pytest.skip("running as root without permission to mount a read-only folder")
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)


def test_snapshots_never_collide_and_unwritable_folders_are_reported(display, styles_dir,
                                                                    tmp_path, read_only_dir):
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    missing = tmp_path / "no-such-folder"
    for folder in (snaps, read_only_dir, missing):
        proc, log, window = run_window(display, styles_dir, tmp_path, "--snapshot-dir",
                                       str(folder))
        try:
            x(display, "xdotool", "windowfocus", window)
            before = red_pixels(screenshot(display, window))
            x(display, "xdotool", "key", "--delay", "150", "--window", window, "s", "s", "s")  # in 0.3 s
            wait_for(lambda: log.read_text().count("snapshot ") >= 3, what="three snapshots")
            if folder is snaps:  # nothing to wait for: a few frames, then no red must show
                time.sleep(0.5)
                assert red_pixels(screenshot(display, window)) - before < 30, "error shown"
            else:  # the failure shows in red for 4 s: a frame must show it meanwhile
                wait_for(lambda: red_pixels(screenshot(display, window)) - before > 30,
                         timeout=3.5, what="the HUD showing the failed snapshot in red",
                         proc=proc, log=log)
            x(display, "xdotool", "key", "--window", window, "q")
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        text = log.read_text()
        assert "Traceback" not in text, text
        if folder is snaps:
            files = sorted(snaps.glob("livestyle-identity-*.png"))
            assert len(files) == 3 == text.count("snapshot saved to"), (files, text)
            assert all(cv2.imread(str(f)).shape == (270, 480, 3) for f in files)
        else:
            assert "snapshot saved" not in text and text.count("snapshot NOT saved") == 3, text
            assert not folder.exists() if folder is missing else not list(folder.iterdir())


def test_close_button_quits_like_q_and_finalizes_the_output(display, styles_dir, tmp_path):
    out = tmp_path / "out.mp4"
    proc, log, window = run_window(display, styles_dir, tmp_path, "-o", str(out))
    try:
        time.sleep(1.0)
        # what the title bar's close button sends: a polite close request from the WM
        x(display, "wmctrl", "-c", "livestyle")
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert rc == 0, text
    assert "Traceback" not in text and "guiReceiver" not in text, text
    n = frames_reported(text)
    assert n > 0 and count_frames(out) == n, text
