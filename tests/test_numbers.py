"""Every numeric option of `run` and `train` is checked before any work (issue 20, point 6):
one line naming the flag, exit 2, nothing started. Real CLI processes; bench's own are in
test_bench.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from tests.conftest import REPO


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO),
                                            "DISPLAY": ""})


@pytest.mark.parametrize("args,message", [
    (["--threads", "100000"], "--threads 100000 is far more than this machine's"),
    (["--fps", "nan"], "--fps nan is out of range"),
    (["--scale", "inf"], "--scale inf is out of range"),
])
def test_run_refuses_impossible_numbers_before_any_work(args, message, tmp_path, styles_dir):
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.full((24, 32, 3), 50, np.uint8))
    t = time.monotonic()
    r = cli("-m", "livestyle", "run", "--source", str(photo), "--style",
            str(styles_dir / "identity.onnx"), "-o", str(tmp_path / "o.png"), *args,
            cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith(f"livestyle: {message}"), r.stderr
    assert not (tmp_path / "o.png").exists() and time.monotonic() - t < 60


@pytest.mark.parametrize("args,message", [
    (["--log-every", "0"], "--log-every must be 1 or more"),
    (["--checkpoint-every", "0"], "--checkpoint-every must be 1 or more"),
    (["--sample-every", "0"], "--sample-every must be 1 or more"),
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--lr-final", "-1"], "--lr-final must be 0 or more"),
    (["--ema", "1.5"], "--ema must be 0 (off) or a decay below 1"),
    (["--style-side", "0"], "--style-side must be at least 16"),
    (["--long-side", "-5"], "--long-side must be 0"),
    (["--native-side", "8"], "--native-side must be 0"),
    (["--scale-jitter", "0.5"], "--scale-jitter must be 1"),
    (["--edge-weight", "-2"], "--edge-weight must be 0 (off) or more"),
    (["--seed", "-1"], "--seed must be 0 or more"),
    (["--threads", "100000"], "--threads must be 0 (torch's default) or at most"),
])
def test_train_refuses_impossible_numbers_before_any_work(args, message, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), np.full((64, 64, 3), 80, np.uint8))
    r = cli("-m", "train", "--teacher", "sketch", "--name", "n", "--content-dir", str(photos),
            "--out-dir", str(tmp_path / "models"), "--run-dir", str(tmp_path / "runs"), *args,
            cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == f"livestyle train: {r.stderr.strip().split(': ', 1)[1]}"
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "models").exists()
