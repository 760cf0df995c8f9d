"""Temporal steadying (livestyle/steady.py): still parts keep their strokes, what moves is
drawn anew, and nothing of one style or one photo is mixed into the next."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from livestyle.config import ConfigError, RunConfig
from livestyle.steady import DEFAULT_STRENGTH, MAX_STRENGTH, STILL_LEVELS, Steadier
from tests.conftest import REPO


def scene(h: int = 96, w: int = 128) -> np.ndarray:
    """A still picture: a gradient with a dark block in it."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], axis=2)
    img[30:60, 40:80] = 20
    return img.astype(np.uint8)


def flicker(outputs: list[np.ndarray]) -> float:
    """Mean |change| between consecutive frames."""
    return float(np.mean([np.abs(b.astype(np.float32) - a).mean() for a, b in zip(outputs, outputs[1:])]))


def test_a_still_picture_stops_shimmering():
    rng = np.random.default_rng(0)
    frame = scene()
    # what a painting does on a still camera: the same picture, strokes redrawn differently
    styled = [np.clip(frame + rng.normal(0, 12, frame.shape), 0, 255).astype(np.uint8)
              for _ in range(30)]
    steadier = Steadier(DEFAULT_STRENGTH)
    steadied = [steadier(frame, s) for s in styled]
    assert np.array_equal(steadied[0], styled[0])  # nothing before it to keep
    # an average of the last results: the shimmer is at most about a third of the raw one
    assert flicker(steadied[10:]) < 0.4 * flicker(styled[10:])
    # and the picture is still the one drawn: no drift, no darkening
    assert abs(float(np.mean(steadied[-1])) - float(np.mean(styled[-1]))) < 2


def test_what_moves_is_drawn_anew_with_no_trace_of_where_it_was():
    frame0, frame1 = scene(), scene()
    frame1[30:60, 40:80] = frame1[30:60, 80:120]  # the dark block moves 40 px right
    frame1[30:60, 80:120] = 20
    styled0 = np.full_like(frame0, 200)
    styled1 = np.full_like(frame1, 60)
    steadier = Steadier(DEFAULT_STRENGTH)
    steadier(frame0, styled0)
    out = steadier(frame1, styled1)
    change = np.abs(frame1.astype(int) - frame0).mean(axis=2)
    assert change[33:57, 43:77].min() >= 2 * STILL_LEVELS  # the test moves it by that much
    # where the block was and where it is now (2 px in from the edges: the 5x5 mean)
    assert np.array_equal(out[33:57, 43:77], styled1[33:57, 43:77])
    assert np.array_equal(out[33:57, 83:117], styled1[33:57, 83:117])
    # and where nothing changed, mostly the last result
    assert np.all(out[70:, :30] > 150)


def test_reset_forgets_and_strength_zero_is_off():
    rng = np.random.default_rng(1)
    frame = scene()
    a, b = (rng.integers(0, 256, frame.shape, np.uint8) for _ in range(2))
    steadier = Steadier(0.9)
    steadier(frame, a)
    assert not np.array_equal(steadier(frame, b), b)
    steadier.reset()
    assert np.array_equal(steadier(frame, b), b)
    off = Steadier(0.0)
    off(frame, a)
    assert off(frame, b) is b


def test_a_frame_of_another_size_is_compared_at_the_results_size():
    frame = scene(192, 256)  # the camera frame; the result is at half its size
    styled = np.full((96, 128, 3), 100, np.uint8)
    steadier = Steadier(0.5)
    steadier(frame, styled)
    out = steadier(frame, np.full((96, 128, 3), 200, np.uint8))
    assert out.shape == (96, 128, 3) and np.all(out == 150)  # 0.5 * 100 + 0.5 * 200
    # a new result size (the stroke scale changed) starts over
    assert np.array_equal(steadier(frame, np.zeros((48, 64, 3), np.uint8)), np.zeros((48, 64, 3)))


@pytest.mark.parametrize("bad", [-0.1, MAX_STRENGTH + 0.01, 1.0])
def test_out_of_range_is_refused_with_the_range(bad):
    with pytest.raises(ValueError, match="out of range"):
        Steadier(bad)
    with pytest.raises(ConfigError, match=f"--steady {bad} is out of range: use 0 \\(off\\)"):
        RunConfig(styles=("cartoon",), steady=bad).validate()


def test_cli_refuses_a_bad_strength_before_any_work_and_states_the_default():
    r = subprocess.run([sys.executable, "-m", "livestyle", "run", "--style", "cartoon",
                        "--source", "nothing-here.mp4", "--steady", "2"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "--steady 2.0 is out of range" in r.stderr + r.stdout
    help_text = subprocess.run([sys.executable, "-m", "livestyle", "run", "--help"],
                               capture_output=True, text=True, cwd=REPO, timeout=120).stdout
    assert f"(default {DEFAULT_STRENGTH:g})" in " ".join(help_text.split())


def run_frames(style: str, frames: list[np.ndarray], steady: float) -> list[np.ndarray]:
    from livestyle.keys import Controls
    from livestyle.pipeline import run_loop
    from livestyle.styles import resolve
    from livestyle.switching import StyleSwitcher
    from tests.conftest import ListSource, RecordingSink

    sink = RecordingSink()
    switcher = StyleSwitcher([resolve(style)], "onnxruntime", log=lambda m: None)
    try:
        run_loop(ListSource(frames), switcher, [sink], None, Controls(), log=lambda m: None,
                 steady=steady)
    finally:
        switcher.close()
    return sink.frames


def test_a_bundled_painting_on_a_still_noisy_camera_flickers_less():
    """A shipped painting on a still scene with a webcam's noise (sigma 3): the output's
    frame-to-frame change falls by half or more with the default steadying."""
    import cv2

    rng = np.random.default_rng(2)
    still = cv2.resize(scene(), (320, 240), interpolation=cv2.INTER_LINEAR)
    frames = [np.clip(still + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8)
              for _ in range(12)]
    style = str(REPO / "engines" / "starry-night.onnx")
    raw = run_frames(style, frames, 0.0)
    steadied = run_frames(style, frames, DEFAULT_STRENGTH)
    assert np.array_equal(raw[0], steadied[0])
    assert flicker(steadied[4:]) < 0.5 * flicker(raw[4:])


def test_photos_are_never_mixed_with_the_one_before(tmp_path):
    """A folder of photos is run with steadying off: each output is its photo's alone."""
    import cv2

    from livestyle.config import SourceConfig
    from livestyle.pipeline import run

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    a = cv2.resize(scene(), (160, 120))
    b = a.copy()
    b[:, :80] = 255 - b[:, :80]  # half the picture differs, the other half is the same
    cv2.imwrite(str(folder / "a.png"), a)
    cv2.imwrite(str(folder / "b.png"), b)
    style = str(REPO / "engines" / "starry-night.onnx")
    cfg = RunConfig(styles=(style,), source=SourceConfig(str(folder)), output=str(out),
                    preview=False, backend="onnxruntime")
    run(cfg, log=lambda m: None)
    alone = run_frames(style, [b], 0.0)[0]
    assert np.array_equal(cv2.imread(str(out / "b.png")), alone)


def test_the_evaluation_measures_clips_with_and_without_steadying():
    """train.evaluate's clip figures: a still, noisy clip through a bundled painting shimmers
    less (warped error over the input's) with the default steadying than without it."""
    import cv2

    from livestyle import backends
    from livestyle.styles import read_style
    from train.evaluate import clip_stability

    rng = np.random.default_rng(3)
    still = cv2.resize(scene(), (320, 240), interpolation=cv2.INTER_LINEAR)
    frames = [np.clip(still + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8)
              for _ in range(8)]
    path = REPO / "engines" / "starry-night.onnx"
    backend = backends.create("onnxruntime", path)
    try:
        row = clip_stability(backend, read_style(path), {"still": frames})["still"]
    finally:
        backend.close()
    assert row["ratio"] < 0.6 * row["ratio_unsteadied"]
    assert abs(row["ratio"] - row["warped_error_out"] / row["warped_error_in"]) < 0.02
