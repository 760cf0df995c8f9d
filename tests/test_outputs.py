"""Outputs (issue 11): nothing is overwritten unasked, the source is never the output, two
runs cannot share an output, a file appears whole or not at all (full disk, SIGKILL).

Real files, real `livestyle run` subprocesses, real signals; the full disk is a 200 KB tmpfs
where this machine lets us mount one, else a real file-size limit (RLIMIT_FSIZE) on the run.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from livestyle.atomic import publish, write_atomic
from tests.conftest import CLIP, need
from tests.test_reliability import count_frames, frames_reported, livestyle


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "livestyle", "run", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "DISPLAY": ""}, **kw)


def wait_for(predicate, timeout=60.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def partials(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f"{out.stem}.livestyle-partial-*{out.suffix}"))


def writing(out: Path) -> bool:
    """Frames are reaching a file for `out` (its partial file, or `out` itself)."""
    files = partials(out) + ([out] if out.exists() else [])
    return any(f.stat().st_size > 0 for f in files)


# -- row 1: the output is the source -------------------------------------------------------

def test_output_that_is_the_source_is_refused_in_every_spelling(tmp_path, styles_dir):
    talk = tmp_path / "talk.mp4"
    shutil.copy(need(CLIP), talk)
    (tmp_path / "link.mp4").symlink_to(talk)
    (tmp_path / "sub").mkdir()
    before = digest(talk)
    spellings = ["talk.mp4", "./talk.mp4", "sub/../talk.mp4", str(talk), "link.mp4"]
    for out in spellings:
        for extra in ([], ["--overwrite"], ["-y"]):
            r = livestyle("run", "--source", "talk.mp4", "--style",
                          str(styles_dir / "rand-a.onnx"), "-o", out, "--no-preview", *extra,
                          cwd=tmp_path)
            assert r.returncode == 2, (out, extra, r.stderr)
            assert "is the source video itself" in r.stderr and "Traceback" not in r.stderr
            assert digest(talk) == before, f"-o {out} {extra} changed the source"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.mp4", "sub", "talk.mp4"]


def test_existing_output_is_kept_unless_overwrite(tmp_path, styles_dir):
    out = tmp_path / "take.mp4"
    out.write_bytes(b"yesterday's take")
    args = ("run", "--source", str(need(CLIP)), "--style", str(styles_dir / "rand-a.onnx"),
            "-o", str(out), "--no-preview", "--max-frames", "5")
    r = livestyle(*args)
    assert r.returncode == 2 and "exists; pass --overwrite" in r.stderr, r.stderr
    assert out.read_bytes() == b"yesterday's take"
    r = livestyle(*args, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert count_frames(out) == 5 and not partials(out)


# -- row 2: two runs, one output -----------------------------------------------------------

def test_second_run_on_a_busy_output_is_refused_and_the_first_completes(tmp_path, styles_dir):
    out = tmp_path / "shared.mp4"
    first = start("--source", str(need(CLIP)), "--loop", "--style",
                  str(styles_dir / "rand-a.onnx"), "-o", str(out), "--no-preview")
    try:
        wait_for(lambda: writing(out) or first.poll() is not None, what="the first run")
        assert first.poll() is None, first.stderr.read()
        # (the target does not exist yet: only the claim can stop the second run)
        second = livestyle("run", "--source", str(need(CLIP)), "--style",
                           str(styles_dir / "rand-b.onnx"), "-o", str(out), "--no-preview",
                           "--max-frames", "10")
        assert second.returncode == 2, second.stderr
        assert f"another livestyle run (process {first.pid}) is writing" in second.stderr
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=30) == 130
    finally:
        if first.poll() is None:
            first.kill()
    stderr = first.stderr.read()
    assert count_frames(out) == frames_reported(stderr) > 0, stderr
    assert not partials(out) and not (tmp_path / ".shared.mp4.livestyle-lock").exists()


def test_publish_never_replaces_a_file_that_appeared_meanwhile(tmp_path):
    target, tmp = tmp_path / "a.png", tmp_path / "a.partial.png"
    tmp.write_bytes(b"new")
    target.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        publish(tmp, target, overwrite=False)
    assert target.read_bytes() == b"someone else's" and tmp.read_bytes() == b"new"
    publish(tmp, target, overwrite=True)
    assert target.read_bytes() == b"new" and not tmp.exists()
    with pytest.raises(FileExistsError):
        write_atomic(target, b"newer", overwrite=False)
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["a.png"]


# -- row 3: full disk ----------------------------------------------------------------------

@pytest.fixture()
def full_disk(tmp_path):
    """(folder, limit_child): a 200 KB tmpfs if we may mount one; else a plain folder and a
    preexec function that caps the files the run may write at 200 KB (RLIMIT_FSIZE)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)],
                             capture_output=True).returncode == 0
    if mounted:
        yield disk, None
        subprocess.run(["umount", "-l", str(disk)], check=False)
        return

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (200 << 10, 200 << 10))

    yield disk, limit


def test_output_on_a_full_disk_fails_naming_file_and_cause(full_disk, styles_dir):
    disk, limit = full_disk
    out = disk / "out.mp4"
    r = subprocess.run(
        [sys.executable, "-m", "livestyle", "run", "--source", str(need(CLIP)), "--loop",
         "--max-frames", "400", "--style", str(styles_dir / "rand-a.onnx"), "-o", str(out),
         "--no-preview"],
        capture_output=True, text=True, timeout=300, preexec_fn=limit,
        env={**os.environ, "DISPLAY": ""})
    assert r.returncode != 0, r.stderr
    assert f"cannot write video {out}" in r.stderr and "Traceback" not in r.stderr, r.stderr
    if limit is None:  # a real full disk: the message says so
        assert "no space left" in r.stderr, r.stderr
    assert not out.exists() and not partials(out), list(disk.iterdir())


# -- row 5: SIGKILL ------------------------------------------------------------------------

def test_sigkill_leaves_nothing_at_the_target_and_the_next_run_cleans_up(tmp_path, styles_dir):
    out = tmp_path / "rec.mp4"
    proc = start("--source", str(need(CLIP)), "--loop", "--style",
                 str(styles_dir / "rand-a.onnx"), "-o", str(out), "--no-preview")
    try:
        wait_for(lambda: writing(out), what="frames being written")
        time.sleep(1.0)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists(), "an unplayable file sits at the output path"
    (left,) = partials(out)
    assert left.name == f"rec.livestyle-partial-{proc.pid}.mp4"  # clearly named
    r = livestyle("run", "--source", str(need(CLIP)), "--style", str(styles_dir / "rand-a.onnx"),
                  "-o", str(out), "--no-preview", "--max-frames", "7")
    assert r.returncode == 0, r.stderr
    assert f"removed {left.name}" in r.stderr, r.stderr
    assert count_frames(out) == 7 and not partials(out)
