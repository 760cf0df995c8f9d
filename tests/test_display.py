"""A display that cannot be opened (issue 20, row 8): `run` says so in one line instead of
Qt aborting the process, and `doctor` tells by really opening a test window. Real processes
on real X displays: one that no server holds, and Xvfb."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO
from tests.test_preview_window import display  # noqa: F401 - the Xvfb fixture


def livestyle(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livestyle", *args], capture_output=True,
                          text=True, timeout=240, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env})


def no_server() -> str:
    """An X display name that no server holds."""
    num = next(n for n in range(150 + os.getpid() % 50, 400)
               if not os.path.exists(f"/tmp/.X11-unix/X{n}")
               and not os.path.exists(f"/tmp/.X{n}-lock"))
    return f":{num}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X displays are Linux's")
def test_run_on_a_display_with_no_server_is_one_line_not_an_abort(tmp_path, styles_dir):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((32, 48, 3), 100, np.uint8))
    bad = no_server()
    r = livestyle("run", "--source", str(photo), "--style", str(styles_dir / "identity.onnx"),
                  env={"DISPLAY": bad}, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)  # was 134: Qt's abort
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [lines[0]] and lines[0].startswith("livestyle: cannot open a preview window")
    assert f"no X server answers on display {bad}" in lines[0] and "--no-preview" in lines[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X displays are Linux's")
def test_doctor_on_a_display_with_no_server_says_the_window_cannot_open(tmp_path):
    r = livestyle("doctor", env={"DISPLAY": no_server()}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (line,) = [ln for ln in r.stdout.splitlines() if "preview window" in ln]
    assert line.strip().startswith("-- preview window: no X server answers"), line


def test_doctor_opens_a_real_test_window_on_a_real_display(tmp_path, display):  # noqa: F811
    r = livestyle("doctor", env={"DISPLAY": display}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (line,) = [ln for ln in r.stdout.splitlines() if "preview window" in ln]
    assert line.strip() == "ok preview window: available (a test window opened and closed)"
