"""Messages that say what is wrong in the user's terms (issue 20, row 15): each case runs the
real CLI in its own process on a real file and reads what it prints."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import REPO, random_generator, sigint_default
from train.export import export_onnx


def livestyle(*args: str, cwd: Path, prefix: tuple[str, ...] = (), timeout: float = 180,
              env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "livestyle", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


@pytest.fixture(scope="module")
def style(tmp_path_factory) -> Path:
    """A working style whose file is named `on-disk` and whose metadata says `trained-as`."""
    d = tmp_path_factory.mktemp("msgstyles")
    return export_onnx(random_generator(seed=5), d / "on-disk.onnx", style="trained-as",
                       description="renamed after training")


@pytest.fixture()
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8))
    return path


def test_channels_first_style_is_named_as_such(style, photo, tmp_path):
    model = onnx.load(str(style))
    for v in (model.graph.input[0], model.graph.output[0]):  # [n, 3, h, w]
        dims = v.type.tensor_type.shape.dim
        dims[1].dim_value = 3
        for i, name in ((2, "h"), (3, "w")):
            dims[i].dim_param = name
    onnx.save(model, str(tmp_path / "nchw.onnx"))
    r = livestyle("run", "--source", str(photo), "--style", str(tmp_path / "nchw.onnx"),
                  "-o", str(tmp_path / "out.png"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "channels-first (NCHW" in r.stderr and "anyx3" not in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out.png").exists()


def _one_channel_style(style: Path, path: Path) -> Path:
    """A graph with livestyle's metadata whose output is the input's first channel only,
    its channel count left free (so nothing in the file says it is not 3)."""
    meta = onnx.load(str(style)).metadata_props
    graph = helper.make_graph(
        [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])], "gray",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["n", "h", "w", 3])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, ["n", "h", "w", "c"])],
        [numpy_helper.from_array(np.array([v], np.int64), name)
         for name, v in (("starts", 0), ("ends", 1), ("axes", 3))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.metadata_props.extend(meta)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("output", ["out.png", "out.mp4"])
def test_one_channel_style_is_refused_for_what_it_is(style, photo, tmp_path, output):
    gray = _one_channel_style(style, tmp_path / "gray.onnx")
    source = photo
    if output.endswith(".mp4"):  # a video source: it used to end in "an I/O error?"
        source = tmp_path / "clip.avi"
        w = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
        for i in range(5):
            w.write(np.full((48, 64, 3), 40 * i, np.uint8))
        w.release()
    r = livestyle("run", "--source", str(source), "--style", str(gray), "-o",
                  str(tmp_path / output), "--no-preview", "--backend", "onnxruntime",
                  cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "gives 1-channel uint8 frames, not colour ones" in r.stderr
    assert "I/O error" not in r.stderr and not (tmp_path / output).exists()


def _without_file_permission_override() -> tuple[str, ...]:
    """A prefix that makes a root process obey file permissions (no CAP_DAC_OVERRIDE)."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot deny a read")
    caps = "-dac_override,-dac_read_search"
    return (setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}")


def test_unreadable_image_is_a_permission_error_not_a_bad_image(style, tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(src / name), np.full((32, 32, 3), 90, np.uint8))
    (src / "b.png").chmod(0)
    prefix = _without_file_permission_override()
    r = livestyle("run", "--source", str(src), "--style", str(style), "-o",
                  str(tmp_path / "out"), cwd=tmp_path, prefix=prefix)
    assert r.returncode == 0, r.stderr
    assert f"skipped {src / 'b.png'}: Permission denied" in r.stderr
    assert "not an image" not in r.stderr
    r = livestyle("run", "--source", str(src / "b.png"), "--style", str(style), "-o",
                  str(tmp_path / "b-out.png"), cwd=tmp_path, prefix=prefix)
    assert r.returncode == 2
    assert f"cannot read image {src / 'b.png'}: Permission denied" in r.stderr


def test_the_log_names_a_style_by_its_file(style, photo, tmp_path):
    r = livestyle("run", "--source", str(photo), "--style", str(style), "-o",
                  str(tmp_path / "out.png"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "style on-disk on " in r.stderr and "trained-as" not in r.stderr
    users = tmp_path / "mine"
    users.mkdir()
    shutil.copy(style, users / "by-name.onnx")
    r = livestyle("run", "--source", str(photo), "--style", "by-name", "-o",
                  str(tmp_path / "out2.png"), cwd=tmp_path, env={"LIVESTYLE_STYLES": str(users)})
    assert r.returncode == 0, r.stderr
    assert "style by-name on " in r.stderr and "trained-as" not in r.stderr


def test_torch_backend_refuses_weights_outside_the_style_folder_in_one_line(style, photo,
                                                                           tmp_path):
    pytest.importorskip("torch")
    folder = tmp_path / "styles"
    folder.mkdir()
    model = onnx.load(str(style))
    onnx.save(model, str(folder / "outside.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    (folder / "weights.bin").rename(tmp_path / "weights.bin")
    model = onnx.load(str(folder / "outside.onnx"), load_external_data=False)
    for t in model.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = "../weights.bin"
    onnx.save(model, str(folder / "outside.onnx"))
    r = livestyle("run", "--source", str(photo), "--style", str(folder / "outside.onnx"),
                  "--backend", "torch", "-o", str(tmp_path / "out.png"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "torch cannot load" in r.stderr and "outside" in r.stderr


def test_missing_camera_says_so_without_opencv_noise(style, tmp_path):
    if Path("/dev/video0").exists():
        pytest.skip("a camera is at index 0 here")
    r = livestyle("run", "--style", str(style), "--no-preview", "-o", str(tmp_path / "o.mp4"),
                  cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("livestyle: no camera at index 0"), r.stderr
    assert "[ERROR" not in r.stderr and "obsensor" not in r.stderr


SLOW_EXPORT = textwrap.dedent("""
    import sys, time
    from train import loop
    real = loop.export_onnx
    def slow(*a, **kw):  # the test's Ctrl-C lands while the model is being exported
        print("exporting", file=sys.stderr, flush=True)
        time.sleep(60)
        return real(*a, **kw)
    loop.export_onnx = slow
    from train.__main__ import main
    sys.exit(main(sys.argv[1:]))
""")


def test_ctrl_c_while_a_finished_resumed_run_exports_says_what_is_saved(tmp_path):
    pytest.importorskip("torch")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        cv2.imwrite(str(photos / f"{i}.png"),
                    cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3), np.uint8), (0, 0), 2))
    args = ["--teacher", "sketch", "--name", "tiny", "--content-dir", str(photos), "--steps",
            "2", "--crop", "32", "--batch", "1", "--threads", "1", "--out-dir",
            str(tmp_path / "models"), "--run-dir", str(tmp_path / "runs"), "--size", "tiny"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.run([sys.executable, "-m", "train", *args], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    (tmp_path / "models" / "tiny.onnx").unlink()  # export it again from the checkpoint
    script = tmp_path / "slow_export.py"
    script.write_text(SLOW_EXPORT)
    p = subprocess.Popen([sys.executable, str(script), *args, "--resume"], cwd=tmp_path,
                         env=env, stderr=subprocess.PIPE, text=True,
                         preexec_fn=sigint_default)
    lines = []
    deadline = time.monotonic() + 240
    for line in p.stderr:
        lines.append(line)
        if line.startswith("exporting") or time.monotonic() > deadline:
            break
    p.send_signal(signal.SIGINT)
    _, rest = p.communicate(timeout=180)
    text = "".join(lines) + rest
    assert p.returncode == 130, text
    assert "nothing was saved" not in text and "before the first step" not in text
    assert "interrupted while exporting the model; all 2 steps are saved in" in text
    assert "--resume to export it" in text
