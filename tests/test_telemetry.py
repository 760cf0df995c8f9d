"""OpenVINO's telemetry is off unless the user opted in, through OpenVINO's own consent file."""

from __future__ import annotations

import os
import subprocess
import sys

from livestyle.backends.openvino import decline_telemetry
from tests.conftest import CLIP, REPO, need


def test_a_run_on_openvino_declines_telemetry_and_counts_nothing(tmp_path, styles_dir):
    home = tmp_path / "home"
    home.mkdir()
    # OpenVINO skips telemetry in CI on its own; remove those hints so the test can fail
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO))
    out = tmp_path / "out.mp4"
    r = subprocess.run([sys.executable, "-m", "livestyle", "run", "--backend", "openvino",
                        "--style", str(styles_dir / "identity.onnx"), "--source", str(need(CLIP)),
                        "--max-frames", "2", "--no-preview", "--output", str(out)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert "on openvino" in r.stderr, r.stderr  # the run really imported OpenVINO
    intel = home / "intel"
    assert (intel / "openvino_telemetry").read_text() == "0"
    # what `import openvino` writes when it counts a run: a usage counter and a client id
    assert not (intel / "stats").exists() and not (intel / "openvino_ga_cid").exists()


def test_a_choice_the_user_made_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "intel").mkdir()
    consent = tmp_path / "intel" / "openvino_telemetry"
    consent.write_text("1")  # what `opt_in_out --opt_in` writes
    assert decline_telemetry() == f"kept your choice in {consent}"
    assert consent.read_text() == "1"
    consent.unlink()
    assert decline_telemetry() == f"declined OpenVINO telemetry in {consent}"
    assert consent.read_text() == "0"


def test_onnx_runtime_records_no_device_id_and_no_events(tmp_path, styles_dir):
    """ONNX Runtime 1.29+ writes ~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,
    onnxruntime.db} on its first session unless ORT_DISABLE_TELEMETRY is set."""
    home = tmp_path / "home"
    home.mkdir()
    # ONNX Runtime skips telemetry in CI and in its own unit tests: remove those hints
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "ORT_RUNNING_UNIT_TESTS", "ORT_DISABLE_TELEMETRY")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO))
    out = tmp_path / "out.png"
    photo = tmp_path / "in.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(photo), np.full((48, 64, 3), 128, np.uint8))
    r = subprocess.run([sys.executable, "-m", "livestyle", "run", "--backend", "onnxruntime",
                        "--style", str(styles_dir / "identity.onnx"), "--source", str(photo),
                        "--output", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and out.is_file(), r.stderr
    assert not (home / ".cache" / "Microsoft").exists(), sorted(home.rglob("*"))
    # the control: the same session without livestyle's setting does write them
    probe = ("import onnxruntime as ort; ort.InferenceSession(%r, providers=['CPUExecutionProvider'])"
             % str(styles_dir / "identity.onnx"))
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=300, env=env)
    assert (home / ".cache" / "Microsoft" / "DeveloperTools").exists()
