"""`livestyle bench` keeps what it promises (issue 20, row 13): by default it measures only the
bundled styles its help names, "of peak" is never above 1, and its plot's legend hides no
line and repeats no colour. Real bench processes and the real plot file; no speed asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from livestyle import bench
from livestyle.backends import GPU_BACKENDS
from livestyle.bench import plot
from livestyle.styles import BUNDLED_DIR, read_style
from tests.conftest import REPO


def _bench(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "livestyle", "bench", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def test_default_bench_measures_only_the_bundled_styles(tmp_path, styles_dir):
    # the user's styles folder holds rand-a, a generator size no bundled style has
    r = _bench("--backends", "onnxruntime", "--resolutions", "64x48", "--frames", "1",
               "--warmup", "0", "--seconds", "0.2", "--no-reference", cwd=tmp_path,
               env={"LIVESTYLE_STYLES": str(styles_dir)})
    assert r.returncode == 0, r.stderr
    (out,) = tmp_path.glob("bench-*.json")
    report = json.loads(out.read_text())
    bundled = {p.stem for p in BUNDLED_DIR.glob("*.onnx")}
    sizes = {json.dumps(read_style(BUNDLED_DIR / f"{n}.onnx").generator, sort_keys=True)
             for n in bundled}
    for table in ("model", "end_to_end"):
        styles = {row["style"] for row in report[table]}
        assert styles <= bundled, styles  # never rand-a, identity...
        assert len(styles) == len(sizes)  # one per generator size
    for row in report["model"]:
        if row["backend"] in GPU_BACKENDS:  # the peaks are the CPU's: none for a GPU row
            assert row["of_peak"] is None and row["peak_gflops"] is None
            continue
        assert 0 <= row["of_peak"] <= 1.0
        assert row["peak_gflops"] >= report["peak_gflops"]  # its precision's, at least f32's


def test_openvino_rows_are_measured_against_their_own_precision(tmp_path):
    r = _bench("--style", "sketch", "--backends", "openvino", "--resolutions", "480p",
               "--frames", "3", "--warmup", "1", "--seconds", "0.2", "--no-reference",
               "--out", "b.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "b.json").read_text())
    (row,) = report["model"]
    key = f"openvino {row['precision']}"
    assert report["peak_gflops_by_precision"][key] == row["peak_gflops"]
    assert 0 <= row["of_peak"] <= 1.0
    assert "precision it computes in" in r.stdout


def test_plot_legend_is_below_the_lines_and_every_series_has_its_own_colour(tmp_path):
    names = ["480p", "720p", "1080p"]
    rows = [{"backend": f"backend{k}", "resolution": res, "style": f"style{k}",
             "fps": 5.0 + 3 * k + i} for k in range(9) for i, res in enumerate(names)]
    report = {"settings": {"resolutions": names}, "model": rows, "end_to_end": []}
    path = tmp_path / "plot.png"
    plot(report, path)
    img = cv2.imread(str(path))
    plot_h = 420  # the axes' area; the legend lies below it
    assert img.shape[0] >= plot_h + 9 * 18
    white = np.array([255, 255, 255])
    swatches = []
    for k in range(9):  # each legend entry starts with a short line of its colour
        y = plot_h + 10 + 18 * k
        swatches.append(tuple(int(c) for c in img[y, 60 + 12]))
        assert not np.array_equal(img[y, 72], white)
    assert len(set(swatches)) == 9, swatches
    # no legend text in the axes' area: above the x labels, only lines, axes and grid remain
    axes = img[40:plot_h - 60, 60:720 - 60].reshape(-1, 3)
    found = {tuple(int(c) for c in px) for px in axes[::7]}
    assert all(any(np.abs(np.array(s) - px).sum() < 60 for px in found) for s in swatches)


@pytest.mark.parametrize("backend", sorted(GPU_BACKENDS))
def test_gpu_rows_have_no_cpu_peak_and_print_it_blank(backend, monkeypatch):
    """The peaks are the CPU's: a GPU row far above the CPU's float32 peak is not "1.0 of
    peak, above it", it has no peak at all, and the table leaves the column blank."""
    monkeypatch.setattr(bench, "precision_peak", lambda *a, **k: pytest.fail("a CPU peak"))
    report = {"peak_gflops": 100.0, "peak_gflops_by_precision": {}}
    fields = bench.peak_fields(report, backend, "fp16", 5000.0)
    assert fields == {"peak_gflops": None, "of_peak": None}  # and no above_peak
    assert report["peak_gflops_by_precision"] == {}
    row = {"backend": backend, "gflops": 5000.0, **fields}
    text = bench.table([row], [("backend", "backend"), ("gflops", "GFLOP/s"),
                               ("of_peak", "of peak")])
    assert "None" not in text and "1.0" not in text
    assert text.splitlines()[-1].rstrip().endswith("5000.0")  # the of-peak cell is blank


def test_cpu_rows_still_have_their_peak():
    report = {"peak_gflops": 100.0, "peak_gflops_by_precision": {}}
    fields = bench.peak_fields(report, "onnxruntime", "f32", 50.0)
    assert fields == {"peak_gflops": 100.0, "of_peak": 0.5}
