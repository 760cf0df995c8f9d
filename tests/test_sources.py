"""Sources (issue 11): a finite clip over HTTP ends at its end, in order; a server that
stalls never holds up Ctrl-C; a truncated file says how many frames it had of how many.

Real HTTP servers on 127.0.0.1 (the standard library's, serving the shared clip), a real
listening socket that never answers, real truncated files, real `livestyle run` processes.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from livestyle import stamp
from tests.conftest import CLIP, CLIP_640, need, read_all
from tests.test_reliability import count_frames, frames_reported, livestyle


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class RangeHandler(QuietHandler):
    """Also answers byte-range requests (206), as any real web server does: FFmpeg needs
    them for an mp4 whose index is at the end, as OpenCV writes it."""

    def send_head(self):
        spec = self.headers.get("Range", "")
        if not spec.startswith("bytes="):
            return super().send_head()
        path = self.translate_path(self.path)
        data = open(path, "rb").read()
        first, _, last = spec[len("bytes="):].partition("-")
        first, last = int(first or 0), int(last) if last else len(data) - 1
        body = data[first:last + 1]
        self.send_response(206)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {first}-{first + len(body) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


class StallingHandler(QuietHandler):
    """Sends the headers and the first twentieth of the file (its index and about seven
    frames), then nothing (a server that hung mid-stream); the connection stays open until
    the test ends."""

    release = threading.Event()

    def copyfile(self, source, outputfile):
        data = source.read()
        outputfile.write(data[: len(data) // 20])
        outputfile.flush()
        self.release.wait(60)


@pytest.fixture()
def http_server():
    """Start a server for a folder with a handler class; yields a function that does it and
    returns the base URL."""
    servers = []

    def serve(folder, handler=QuietHandler):
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    StallingHandler.release.set()
    for s in servers:
        s.shutdown()
        s.server_close()
    StallingHandler.release.clear()


@pytest.fixture()
def silent_server():
    """A port that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)  # here, not in the thread: a quick test could close it first
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", held
    stop.set()
    thread.join()  # before the listener closes under it
    for c in held:
        c.close()
    listener.close()


# -- row 7: a finite file over HTTP --------------------------------------------------------

def numbered_clip(path, n=60, size=(320, 240)) -> None:
    """A clip whose frame i carries the number i in its pixels (livestyle.stamp)."""
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)
    for i in range(n):
        frame = rng.integers(60, 200, (size[1], size[0], 3), dtype=np.uint8)
        stamp.write(frame, i)
        writer.write(frame)
    writer.release()


def test_clip_over_http_ends_at_its_end_with_every_frame_in_order(tmp_path, styles_dir,
                                                                 http_server):
    served = tmp_path / "www"
    served.mkdir()
    numbered_clip(served / "clip.mp4")
    url = f"{http_server(served, RangeHandler)}/clip.mp4"
    out = tmp_path / "from-http.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "livestyle", "run", "--source", url, "--style",
         str(styles_dir / "identity.onnx"), "-o", str(out), "--no-preview"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "DISPLAY": ""})
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        stderr = proc.communicate()[1]
        pytest.fail(f"a 60-frame clip over HTTP did not end in 120 s:\n{stderr[-2000:]}")
    assert proc.returncode == 0, stderr
    assert "reconnecting" not in stderr, stderr
    assert frames_reported(stderr) == 60, stderr
    assert [stamp.read(f) for f in read_all(out)] == list(range(60))  # each once, in order


# -- row 8: a server that stalls -----------------------------------------------------------

def _interrupt_after(proc, seconds):
    time.sleep(seconds)
    assert proc.poll() is None, proc.stderr.read()
    t = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    return time.monotonic() - t


@pytest.mark.parametrize("where", ["at-connect", "mid-stream"])
def test_ctrl_c_is_prompt_while_the_server_stalls(where, tmp_path, styles_dir, silent_server,
                                                  http_server):
    out = tmp_path / "out.mp4"
    if where == "at-connect":
        url, connections = silent_server
        url += "/clip.mp4"
    else:
        clip = need(CLIP_640)
        url = f"{http_server(clip.parent, StallingHandler)}/{clip.name}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "livestyle", "run", "--source", url, "--style",
         str(styles_dir / "rand-a.onnx"), "-o", str(out), "--no-preview"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "DISPLAY": ""})
    end = time.monotonic() + 60
    if where == "at-connect":  # signal once livestyle is connected and waiting for an answer
        while not connections and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
        assert connections, "livestyle never connected"
    else:  # once frames flow: the data runs out soon after, and a read waits up to 5 s
        while not (out.exists() or list(tmp_path.glob("out.livestyle-partial-*.mp4"))) \
                and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
    took = _interrupt_after(proc, 1.0 if where == "at-connect" else 2.0)
    stderr = proc.stderr.read()
    assert took < 1.5, f"Ctrl-C took {took:.1f} s to end the run\n{stderr}"
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    if where == "at-connect":
        assert [ln for ln in stderr.splitlines() if ln.strip()] == [
            "livestyle: stopped; camera and outputs released"], stderr
        assert not out.exists()
    else:  # what came before the stall is kept, whole
        assert count_frames(out) == frames_reported(stderr) > 0, stderr


# -- row 9: a truncated file ---------------------------------------------------------------

def test_truncated_file_stops_saying_how_many_frames_of_how_many(tmp_path, styles_dir):
    clip = need(CLIP_640)  # 331 frames, index at the front: a cut leaves it readable
    cut = tmp_path / "cut.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    out = tmp_path / "out.mp4"
    r = livestyle("run", "--source", str(cut), "--style", str(styles_dir / "rand-a.onnx"),
                  "-o", str(out), "--no-preview")
    assert r.returncode == 1, r.stderr
    n = frames_reported(r.stderr)
    assert 0 < n < 331
    assert f"{cut} ended after {n} of the 331 frames its container announces" in r.stderr
    assert "truncated or damaged" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert count_frames(out) == n  # what was read is written, whole


def test_whole_file_is_not_reported_as_truncated(tmp_path, styles_dir):
    clip = tmp_path / "whole.mp4"
    shutil.copy(need(CLIP), clip)
    r = livestyle("run", "--source", str(clip), "--style", str(styles_dir / "rand-a.onnx"),
                  "-o", str(tmp_path / "out.mp4"), "--no-preview")
    assert r.returncode == 0 and "truncated" not in r.stderr, r.stderr
    assert count_frames(tmp_path / "out.mp4") == 62
