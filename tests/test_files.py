"""Files in and out like a video tool (issue 13): H.264 output (or the fallback, named), images
and folders of images in and out, --output-size, the progress line and the path written,
and a closed stdout pipe. Real `livestyle` subprocesses on tiny images and clips made here."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from livestyle.progress import Progress
from livestyle.sinks.video import VideoFileSink


def livestyle(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livestyle", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env={**os.environ, "DISPLAY": ""})


def ident(styles_dir: Path) -> str:
    """The identity style: output pixels = input pixels (up to the codec)."""
    return str(styles_dir / "identity.onnx")


def picture(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A smooth picture with edges (a gradient and a disc), not noise: what a codec keeps."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
    img = np.dstack([x, y, 255 - x]).astype(np.uint8)
    c = tuple(int(v) for v in rng.integers(0, 255, 3))
    cv2.circle(img, (w // 2, h // 2), min(w, h) // 3, c, -1)
    return img


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """20 frames of 160x90 at 10 fps, MPEG-4 Part 2 (what OpenCV writes everywhere)."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 90))
    for i in range(20):
        w.write(np.roll(picture(160, 90), 4 * i, axis=1))
    w.release()
    return path


def fourcc(path: Path) -> str:
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower()
    finally:
        cap.release()


def frames_of(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while (r := cap.read())[0]:
        out.append(r[1])
    cap.release()
    return out


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if "partial" in p.name or p.name.startswith(".")]


# -- H.264 ---------------------------------------------------------------------------------

def test_mp4_output_is_h264_and_the_log_names_the_encoder(tmp_path, clip, styles_dir):
    out = tmp_path / "styled.mp4"
    r = livestyle("run", "--source", str(clip), "--style", str(styles_dir / "rand-a.onnx"),
                  "-o", str(out), "--no-preview")
    assert r.returncode == 0, r.stderr
    assert fourcc(out) == "h264", fourcc(out)
    import av  # the encoder's own reading of the file, besides OpenCV's

    with av.open(str(out)) as f:
        assert f.streams.video[0].codec_context.name == "h264"
    assert f"writing {out}: H.264 (libx264 via PyAV)" in r.stderr, r.stderr
    assert len(frames_of(out)) == 20 and not leftovers(tmp_path)


def test_without_pyav_the_sink_falls_back_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now fails as if not installed
    said: list[str] = []
    out = tmp_path / "fallback.mp4"
    with VideoFileSink(out, fps=10.0, log=said.append) as sink:
        for i in range(6):
            sink.send(picture(64, 48, seed=i))
    assert "PyAV" not in sink.encoder
    assert any("note: H.264 is not available here" in m and "pip install av" in m
               for m in said), said
    # what was written is what the log says: MPEG-4 Part 2 here (OpenCV's wheel), H.264
    # where OpenCV has an H.264 encoder
    monkeypatch.undo()
    import av

    with av.open(str(out)) as f:
        codec = f.streams.video[0].codec_context.name
    assert codec == ("h264" if sink.encoder.startswith("H.264") else "mpeg4"), sink.encoder
    assert len(frames_of(out)) == 6


# -- images --------------------------------------------------------------------------------

def test_image_in_image_out(tmp_path, styles_dir):
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), picture(121, 83))
    out = tmp_path / "photo-styled.png"
    r = livestyle("run", "--source", str(photo), "--style", str(styles_dir / "rand-a.onnx"),
                  "-o", str(out))  # no --no-preview: an image with an output opens no window
    assert r.returncode == 0, r.stderr
    got, src = cv2.imread(str(out)), cv2.imread(str(photo))
    assert got.shape == src.shape == (83, 121, 3)
    assert np.abs(got.astype(int) - src).mean() > 10, "the image was not stylized"
    assert f"wrote {out}" in r.stderr and "1/1 images" in r.stderr, r.stderr
    # identity style through PNG: the pixels of the source, exactly
    same = tmp_path / "same.png"
    r = livestyle("run", "--source", str(photo), "--style", str(styles_dir / "identity.onnx"),
                  "-o", str(same))
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(cv2.imread(str(same)), src)
    # an existing output is kept unless -y; the source is never the output
    before = out.read_bytes()
    r = livestyle("run", "--source", str(photo), "--style", str(styles_dir / "rand-b.onnx"),
                  "-o", str(out))
    assert r.returncode == 2 and "exists; pass --overwrite" in r.stderr, r.stderr
    assert out.read_bytes() == before
    r = livestyle("run", "--source", str(photo), "--style", ident(styles_dir), "-o", str(photo),
                  "-y")
    assert r.returncode == 2 and "is the source image itself" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo-styled.png", "photo.jpg",
                                                          "same.png"]


def test_folder_of_images_to_a_folder(tmp_path, styles_dir):
    src = tmp_path / "in"
    src.mkdir()
    sizes = {"a.png": (64, 48), "b.jpg": (100, 60), "c.png": (33, 35)}
    for name, (w, h) in sizes.items():
        cv2.imwrite(str(src / name), picture(w, h, seed=len(name) + w))
    (src / "notes.txt").write_text("not an image")
    (src / "broken.png").write_bytes(b"not a png either")
    out = tmp_path / "out"
    r = livestyle("run", "--source", str(src), "--style", str(styles_dir / "identity.onnx"),
                  "-o", str(out), "--backend", "onnxruntime")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(sizes)
    for name, (w, h) in sizes.items():
        got = cv2.imread(str(out / name))
        assert got.shape == (h, w, 3), name
        # identity style: each output is its own source (JPEG re-encoded: close, not equal)
        assert np.abs(got.astype(int) - cv2.imread(str(src / name))).mean() < 3, name
    assert "skipped" in r.stderr and "broken.png" in r.stderr, r.stderr
    assert "3/3 images" in r.stderr and f"wrote {out}{os.sep}: 3 images" in r.stderr, r.stderr
    # into the source folder itself: refused, nothing touched
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    for target in (str(src), str(tmp_path / "in" / ".." / "in")):
        r = livestyle("run", "--source", str(src), "--style", ident(styles_dir), "-o", target,
                      "-y")
        assert r.returncode == 2 and "is the source folder itself" in r.stderr, r.stderr
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before


def test_image_output_for_a_video_source_is_a_clear_error(tmp_path, clip, styles_dir):
    r = livestyle("run", "--source", str(clip), "--style", str(styles_dir / "rand-a.onnx"),
                  "-o", str(tmp_path / "frame.png"), "--no-preview")
    assert r.returncode == 2 and "is an image but the source is a video" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not list(tmp_path.iterdir())


# -- --output-size -------------------------------------------------------------------------

def test_output_size_resizes_what_is_written(tmp_path, clip, styles_dir):
    out = tmp_path / "small.mp4"
    r = livestyle("run", "--source", str(clip), "--style", str(styles_dir / "rand-a.onnx"),
                  "-o", str(out), "--no-preview", "--output-size", "64x0")
    assert r.returncode == 0, r.stderr
    got = frames_of(out)
    assert len(got) == 20 and got[0].shape == (36, 64, 3)  # 160x90 at 64 wide
    # an odd side is rounded down for H.264's 4:2:0
    odd = tmp_path / "odd.mp4"
    r = livestyle("run", "--source", str(clip), "--style", ident(styles_dir), "-o", str(odd),
                  "--no-preview", "--output-size", "63x35", "--max-frames", "3")
    assert r.returncode == 0, r.stderr
    assert frames_of(odd)[0].shape == (34, 62, 3)
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), picture(80, 60))
    r = livestyle("run", "--source", str(photo), "--style", ident(styles_dir), "-o",
                  str(tmp_path / "p-big.png"), "--output-size", "200x50")
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(tmp_path / "p-big.png")).shape == (50, 200, 3)


@pytest.mark.parametrize("size,message", [
    ("big", "--output-size 'big' is not WxH"),
    ("0x0", "--output-size 0x0 is out of range"),
    ("1x100", "--output-size 1x100 is out of range"),
    ("9000x100", "--output-size 9000x100 is out of range"),
])
def test_bad_output_size_is_refused(size, message, tmp_path, clip, styles_dir):
    r = livestyle("run", "--source", str(clip), "--style", ident(styles_dir), "-o",
                  str(tmp_path / "o.mp4"), "--no-preview", "--output-size", size)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())


# -- progress ------------------------------------------------------------------------------

def test_file_run_prints_progress_and_the_output_path(tmp_path, clip, styles_dir):
    out = tmp_path / "progress.mp4"
    r = livestyle("run", "--source", str(clip), "--style", str(styles_dir / "rand-a.onnx"),
                  "-o", str(out), "--no-preview")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    final = [line for line in lines if line.startswith("20/20 frames (100%)")]
    assert len(final) == 1 and " fps" in final[0], r.stderr  # once, not repeated
    assert "\r" not in r.stderr  # not a terminal: whole lines only
    assert lines[-1] == f"wrote {out}: H.264 (libx264 via PyAV), 20 frames", r.stderr
    r = livestyle("run", "--source", str(clip), "--style", ident(styles_dir), "-o",
                  str(tmp_path / "five.mp4"), "--no-preview", "--max-frames", "5")
    assert "5/5 frames (100%)" in r.stderr, r.stderr


def test_progress_line_on_a_terminal_is_rewritten_with_an_eta():
    t = [0.0]
    stream = io.StringIO()
    p = Progress(stream, tty=True, every=0.25, now=lambda: t[0])
    p.start(100)
    for done in range(1, 51):
        t[0] = done * 0.2  # 5 frames a second
        p.update(done)
    p.log("a message")
    t[0] += 0.25
    p.update(51)
    p.finish()
    text = stream.getvalue()
    assert "\r50/100 frames (50%)  5.0 fps  ETA 0:10  elapsed 0:10\033[K" in text, repr(text)
    assert "\r\033[Ka message\n" in text  # the line is cleared before a message
    assert text.endswith("\n") and text.count("\n") == 2, repr(text)
    assert Progress(io.StringIO(), tty=False).every >= 2  # elsewhere: every few seconds


# -- a closed pipe -------------------------------------------------------------------------

def test_output_to_a_closed_pipe_ends_quietly(styles_dir):
    """`livestyle styles | head`: the reader is gone before we write."""
    proc = subprocess.Popen([sys.executable, "-m", "livestyle", "styles"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "LIVESTYLE_STYLES": str(styles_dir)})
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
