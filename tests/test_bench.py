"""`livestyle bench` runs and writes valid results; stamps survive the trip. No speed asserts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from livestyle import stamp
from livestyle.bench import main as bench_main
from tests.conftest import REPO


@pytest.mark.parametrize("w,h", [(640, 480), (1280, 720), (1920, 1080), (430, 100)])
def test_stamp_round_trip(w, h):
    frame = np.random.default_rng(w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    for n in (0, 1, 4097, 65535):
        stamp.write(frame, n)
        assert stamp.read(frame) == n
    # darkening and a colour cast (what a style might do) keep the number readable
    stamp.write(frame, 321)
    styled = (frame * np.array([0.5, 0.8, 0.3])).astype(np.uint8)
    assert stamp.read(styled) == 321
    # an inverted stamp fails its checksum instead of giving a wrong number
    assert stamp.read(255 - frame) is None
    assert stamp.read(np.full_like(frame, 128)) is None


def test_tiny_bench_writes_valid_json_and_plot(styles_dir, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = bench_main(["--style", str(styles_dir / "identity.onnx"), "--backends", "onnxruntime",
                     "--resolutions", "480p", "--frames", "3", "--warmup", "1",
                     "--seconds", "1.5", "--no-reference", "--out", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert {"machine", "versions", "settings", "peak_gflops", "model", "end_to_end"} <= report.keys()
    assert report["peak_gflops"] > 0 and report["versions"]["onnxruntime"]
    (model,) = report["model"]
    assert model["backend"] == "onnxruntime" and model["n"] == 3 and model["median_ms"] > 0
    (e2e,) = report["end_to_end"]
    assert e2e["backend"] == model["backend"]  # the pipeline ran the backend measured alone
    assert e2e["frames"] > 0 and e2e["frames"] + e2e["dropped"] <= e2e["offered"] + 1
    # the identity style keeps every stamp readable, so every frame has a latency
    assert e2e["unreadable_stamps"] == 0 and e2e["latency"]["n"] == e2e["frames"]
    assert set(e2e["stages"]) == {"capture", "preprocess", "inference", "postprocess", "sinks"}
    assert cv2.imread(str(out.with_suffix(".png"))) is not None
    text = capsys.readouterr().out
    assert "end to end" in text and "onnxruntime" in text

    rc = bench_main(["--style", str(styles_dir / "identity.onnx"), "--backends", "onnxruntime",
                     "--resolutions", "480p", "--frames", "3", "--warmup", "1", "--seconds", "1",
                     "--no-reference", "--out", str(tmp_path / "again.json"),
                     "--compare", str(out)])
    assert rc == 0 and "new / old" in capsys.readouterr().out


# -- what a user can get wrong fails first; results land where the user is ------------------

def _bench(*args, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "livestyle", "bench", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


TINY = ["--backends", "onnxruntime", "--frames", "2", "--warmup", "1", "--seconds", "1",
        "--no-reference"]


@pytest.mark.parametrize("kind,message", [
    ("missing", "--compare {path}: no such file"),
    ("not-json", "--compare {path} is not JSON"),
    ("foreign", "--compare {path} is not a livestyle bench result"),
    ("rows-without-fps", "--compare {path} is not a livestyle bench result"),
    ("folder", "--compare {path}: not a file"),
])
def test_bad_compare_file_fails_before_benchmarking(kind, message, tmp_path, styles_dir):
    path = tmp_path / f"{kind}.json"
    if kind == "not-json":
        cv2.imwrite(str(path.with_suffix(".png")), np.zeros((8, 8, 3), np.uint8))
        path.with_suffix(".png").rename(path)
    elif kind == "foreign":
        path.write_text(json.dumps({"name": "livestyle", "version": 1}))
    elif kind == "rows-without-fps":
        path.write_text(json.dumps({"model": [{"backend": "openvino"}], "end_to_end": []}))
    elif kind == "folder":
        path.mkdir()
    t = time.perf_counter()
    r = _bench("--style", str(styles_dir / "identity.onnx"), "--resolutions", "480p", *TINY,
               "--compare", str(path), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert message.format(path=path) in r.stderr and "Traceback" not in r.stderr, r.stderr
    # nothing was measured or written
    assert "model onnxruntime" not in r.stderr and not list(tmp_path.glob("bench-*")), r.stderr
    assert time.perf_counter() - t < 60


@pytest.mark.parametrize("text,message", [
    ("4k", "'4k' is neither 480p, 720p, 1080p nor WxH"),
    ("0x480", "0x480 is out of range"),
    ("640x", "'640x' is neither"),
    (",", "names no resolution"),
])
def test_bad_resolutions_fail_with_the_choices(text, message, tmp_path):
    r = _bench("--resolutions", text, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("args,message", [
    (["--seconds", "0"], "--seconds must be more than 0"),
    (["--seconds", "nan"], "--seconds must be more than 0"),
    (["--frames", "0"], "--frames must be at least 1"),
    (["--warmup", "-1"], "--warmup must be 0 or more"),
])
def test_bad_numbers_fail_before_benchmarking(args, message, tmp_path):
    r = _bench(*args, cwd=tmp_path, timeout=60)  # --seconds 0 used to hang: a timeout fails
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())  # nothing measured, nothing written


def test_a_bench_where_no_backend_can_run_says_so_and_writes_nothing(tmp_path, styles_dir):
    """torch-cuda on a machine without a GPU: every row is skipped; it used to write an empty
    JSON and then crash drawing the plot of no series."""
    from livestyle.gpu import has_cuda

    if has_cuda():
        pytest.skip("this machine has a CUDA GPU: torch-cuda would run")
    style = next(styles_dir.glob("*.onnx"))
    for reference in ([], ["--no-reference"]):  # the reference alone is no result either
        r = _bench("--backends", "torch-cuda", *TINY[2:-1], *reference, "--resolutions", "480p",
                   "--style", str(style), cwd=tmp_path)
        assert r.returncode == 2 and "no backend could run here (torch-cuda)" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert not list(tmp_path.iterdir())


def test_resolutions_help_lists_names_and_wxh(tmp_path):
    r = _bench("--help", cwd=tmp_path)
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "480p (640x480), 720p (1280x720), 1080p (1920x1080) or any WxH" in text, r.stdout


def test_results_go_to_the_current_folder_and_name_the_style_everywhere(tmp_path, styles_dir):
    results = REPO / "benchmarks" / "results"
    before = sorted(results.iterdir()) if results.is_dir() else []
    r = _bench("--style", str(styles_dir / "rand-a.onnx"), "--resolutions", "160x96,480p",
               *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (out,) = tmp_path.glob("bench-*.json")
    assert out.with_suffix(".png").is_file() and f"wrote {out} and" in r.stdout
    assert (sorted(results.iterdir()) if results.is_dir() else []) == before
    report = json.loads(out.read_text())
    assert report["settings"]["resolutions"] == ["160x96", "480p"]
    macs = report["model"][0]["macs_per_pixel"]
    assert macs > 0
    for row in report["model"] + report["end_to_end"]:
        assert row["style"] == "rand-a" and row["macs_per_pixel"] == macs and row["size"]
    assert [row["processing_size"] for row in report["model"]] == [[160, 96], [640, 480]]
    # every row of both tables names the style and its cost
    rows = [line for line in r.stdout.splitlines() if "onnxruntime" in line]
    assert len(rows) == 4 and all("rand-a" in line and str(macs) in line for line in rows), r.stdout
    # --out may name a folder; a compare against the first run finds the common rows
    (tmp_path / "runs").mkdir()
    r = _bench("--style", str(styles_dir / "rand-a.onnx"), "--resolutions", "160x96", *TINY,
               "--out", "runs", "--compare", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "runs").glob("bench-*.json"))) == 1
    assert re.search(r"model\s+rand-a\s+onnxruntime\s+160x96 .* = [\d.]+x", r.stdout), r.stdout


def test_several_styles_are_measured_side_by_side_in_one_run(tmp_path, styles_dir):
    r = _bench("--style", f"{styles_dir / 'rand-a.onnx'},{styles_dir / 'identity.onnx'}",
               "--resolutions", "160x96", *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (out,) = tmp_path.glob("bench-*.json")
    report = json.loads(out.read_text())
    for table in ("model", "end_to_end"):
        assert sorted(row["style"] for row in report[table]) == ["identity", "rand-a"], report[table]


def test_gpu_rows_report_the_memory_their_backend_added(monkeypatch):
    """NVML's reading after a GPU row, and its growth since before the backend was made;
    CPU rows carry none, and a machine without NVML says None rather than a guess."""
    from livestyle import bench

    monkeypatch.setattr(bench, "gpu_memory_used_mib", lambda: 2310.5)
    assert bench.gpu_memory("tensorrt", 1800.0) == {"gpu_memory_mib": 2310.5,
                                                    "gpu_memory_backend_mib": 510.5}
    assert bench.gpu_memory("torch-cuda", None)["gpu_memory_backend_mib"] is None
    assert bench.gpu_memory("onnxruntime", 1800.0) == {}
    monkeypatch.setattr(bench, "gpu_memory_used_mib", lambda: None)
    assert bench.gpu_memory("tensorrt", 1800.0) == {"gpu_memory_mib": None,
                                                    "gpu_memory_backend_mib": None}
