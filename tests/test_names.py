"""File names that are not UTF-8 (issue 20 row 1): a Latin-1 `café.mp4` from an old archive,
as source and output, in a folder of the same kind, through H.264 (PyAV) and Motion JPEG
(OpenCV). It used to crash OpenCV (exit 139); now the run works and its messages print the
name's own bytes, as `ls` does into a pipe."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from livestyle.sinks.video import playable_frames
from tests.videos import make_clip

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX names are bytes")


def livestyle(*args: bytes | str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livestyle", *args], capture_output=True,
                          env={**os.environ, "DISPLAY": ""}, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("ext", [b".mp4", b".avi"])
def test_latin1_names_as_source_and_output(tmp_path, styles_dir, ext):
    folder = os.fsencode(tmp_path) + b"/archiv\xe9"  # Latin-1: not valid UTF-8
    os.mkdir(folder)
    source = folder + b"/caf\xe9.mp4"
    output = folder + b"/caf\xe9-styl\xe9" + ext
    make_clip(os.fsdecode(source), frames=10)
    r = livestyle("run", "--source", source, "--style", os.fsencode(styles_dir / "rand-a.onnx"),
                  "--output", output, "--no-preview")
    assert r.returncode == 0, r.stderr
    assert playable_frames(os.fsdecode(output)) == 10
    assert b"wrote " + output in r.stderr, r.stderr  # the name's own bytes, not \udce9
    assert b"\\udc" not in r.stderr and b"Traceback" not in r.stderr, r.stderr
    assert sorted(os.listdir(folder)) == sorted([b"caf\xe9.mp4", b"caf\xe9-styl\xe9" + ext])

    again = livestyle("run", "--source", source, "--style",
                      os.fsencode(styles_dir / "rand-a.onnx"), "--output", output, "--no-preview")
    assert again.returncode == 2 and output + b" exists" in again.stderr, again.stderr

    cams = livestyle("cameras", source)
    assert cams.returncode == 0 and b"caf\xe9.mp4" in cams.stdout, cams
