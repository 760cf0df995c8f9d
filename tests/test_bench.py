"""`livestyle bench` runs and writes valid results; stamps survive the trip. No speed asserts."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from livestyle import stamp
from livestyle.bench import main as bench_main


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
