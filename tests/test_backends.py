"""Every CPU backend runs the same exported generator to the same pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livestyle import backends
from livestyle.backends.base import BackendUnavailable
from livestyle.generator import PixelWrapper
from livestyle.gpu import has_cuda
from livestyle.metrics import psnr
from tests.conftest import CLIP, REPO, SHARED, need, random_generator

CPU_BACKENDS = ["onnxruntime", "openvino", "torch"]
# exact-parity settings: OpenVINO in f32 (its "auto" may pick bf16, checked separately below)
STRICT = {"openvino": {"precision": "f32"}}
# uint8 outputs: float rounding may flip a value by one step; a real bug moves many by many
MAX_ABS, MAX_MEAN = 2, 0.05


def _reference(path_frame):
    import torch

    with torch.no_grad():
        return PixelWrapper(random_generator(seed=1))(torch.from_numpy(path_frame[None]))[0].numpy()


@pytest.mark.parametrize("name", CPU_BACKENDS)
@pytest.mark.parametrize("size", [(479, 641), (480, 640), (8, 8), (37, 53)])
def test_backend_matches_pytorch(name, size, styles_dir):
    rng = np.random.default_rng(size[0])
    frame = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    with backends.create(name, styles_dir / "rand-a.onnx", **STRICT.get(name, {})) as b:
        out = b.infer(frame)
    ref = _reference(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.max() <= MAX_ABS and diff.mean() <= MAX_MEAN, (diff.max(), diff.mean())


@pytest.mark.parametrize("name", CPU_BACKENDS[:2])
def test_backends_agree_on_a_real_photo(name, styles_dir):
    photo = cv2.imread(str(need(SHARED / "content" / "kodak_kodim01.jpg")))
    with backends.create(name, styles_dir / "rand-b.onnx", **STRICT.get(name, {})) as b, \
            backends.create("torch", styles_dir / "rand-b.onnx") as ref:
        diff = np.abs(b.infer(photo).astype(int) - ref.infer(photo).astype(int))
    assert diff.max() <= MAX_ABS and diff.mean() <= MAX_MEAN


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_tiny_frames_run_on_a_half_resolution_generator(name):
    """The cartoon's trunk runs at half size: under 16 px its 1/8-size maps cannot be padded,
    so such frames run enlarged and come back at their own size."""
    style = REPO / "engines" / "cartoon.onnx"
    assert backends.min_frame_side(backends.read_model(style)) == 16
    rng = np.random.default_rng(0)
    with backends.create(name, style) as b:
        for size in [(1, 1), (3, 40), (15, 15), (9, 200), (16, 16)]:
            frame = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            out = b.infer(frame)
            assert out.shape == frame.shape and out.dtype == np.uint8, size


def test_min_frame_side_of_models(styles_dir, tmp_path):
    assert backends.min_frame_side(backends.read_model(styles_dir / "rand-a.onnx")) == 8  # full-size stem
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    assert backends.min_frame_side(backends.read_model(junk)) == 1


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_identity_graph_keeps_bgr_order_exactly(name, styles_dir):
    """The in-graph conversions (BGR->RGB, scale, round, back) must be lossless."""
    frame = np.zeros((8, 12, 3), np.uint8)  # at least min_side: run as it is, not enlarged
    frame[..., 0] = 200  # blue channel only
    frame[:, 6:, 2] = 17  # a little red on the right half
    with backends.create(name, styles_dir / "identity.onnx") as b:
        out = b.infer(frame)
    np.testing.assert_array_equal(out, frame)


def test_openvino_default_precision_is_close_on_a_trained_style():
    """bf16 (OpenVINO's choice on CPUs that have it) must not visibly change a real style."""
    style = REPO / "engines" / "cartoon.onnx"
    if not style.exists():
        pytest.skip("no trained style in engines/ yet")
    photo = cv2.imread(str(need(SHARED / "content" / "kodak_kodim01.jpg")))
    with backends.create("openvino", style) as fast, backends.create("onnxruntime", style) as ref:
        score = psnr(fast.infer(photo), ref.infer(photo))
        chosen = fast.precision
    assert score > 40, f"OpenVINO {chosen} differs from ONNX Runtime: {score:.1f} dB"


def test_auto_picks_a_cpu_backend_and_gpu_backends_refuse_cleanly(styles_dir):
    with backends.create("auto", styles_dir / "rand-a.onnx") as b:
        assert b.name in ("openvino", "onnxruntime")
    from livestyle.gpu import has_cuda

    if not has_cuda():
        with pytest.raises(BackendUnavailable):
            backends.create("torch-cuda", styles_dir / "rand-a.onnx")


def test_every_backend_is_named_as_registered():
    """The name is what GPU auto-scale, the HUD and bench's rows go by: torch on CUDA used to
    call itself "torch", so none of them knew it ran on a GPU."""
    import importlib

    for key, (module, cls) in backends.REGISTRY.items():
        assert getattr(importlib.import_module(module), cls).name == key


def test_torch_cuda_is_its_own_backend_and_refuses_cleanly_without_cuda(styles_dir):
    import torch

    from livestyle.backends.torch import TorchBackend
    from livestyle.backends.torch_cuda import TorchCudaBackend

    assert TorchCudaBackend is not TorchBackend and "torch-cuda" in backends.GPU_BACKENDS
    with backends.create("torch", styles_dir / "rand-a.onnx") as cpu:
        assert cpu.name == "torch" and cpu.delay == 0
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is here: the gpu tests cover torch-cuda")
    with pytest.raises(BackendUnavailable, match="no CUDA device"):
        TorchCudaBackend(styles_dir / "rand-a.onnx")  # past the registry's driver check


@pytest.mark.gpu
@pytest.mark.skipif(not has_cuda(), reason="no CUDA device")
def test_torch_cuda_gets_the_gpu_scale_hud_name_and_bench_row(styles_dir, tmp_path):
    """On a GPU, torch-cuda runs a 720p frame at full size (auto-scale's GPU rule), says so
    on the HUD, and bench's end-to-end row runs it on the GPU, not a CPU rebuild."""
    from livestyle.bench import bench_end_to_end
    from livestyle.config import RunConfig, SourceConfig
    from livestyle.frames import auto_scale
    from livestyle.keys import Controls, hud_lines
    from livestyle.pipeline import Pipeline
    from livestyle.styles import resolve
    from livestyle.timers import StageTimers

    photo = tmp_path / "720p.png"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 256, (720, 1280, 3), np.uint8))
    cfg = RunConfig(styles=(str(styles_dir / "rand-a.onnx"),), source=SourceConfig(str(photo)),
                    backend="torch-cuda", preview=False, output=str(tmp_path / "out.png"))
    with Pipeline(cfg, log=lambda m: None) as pipeline:
        stats = pipeline.run()
        hud = hud_lines(pipeline.switcher, StageTimers(), Controls(), 0, stats.processing_size)
    assert stats.backend == "torch-cuda" and stats.processing_size == (1280, 720)
    assert "torch-cuda @ 1280x720" in hud[1]
    row = bench_end_to_end(resolve(str(styles_dir / "rand-a.onnx")), "torch-cuda", (1280, 720),
                           auto_scale(1280, 720, gpu=True), 1.0)
    assert row["backend"] == "torch-cuda" and row["processing_size"] == [1280, 720]


def test_unknown_backend_and_unreadable_model(tmp_path, styles_dir):
    with pytest.raises(ValueError, match="unknown backend"):
        backends.create("magic", styles_dir / "rand-a.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes((styles_dir / "rand-a.onnx").read_bytes()[:500])
    for name in ("onnxruntime", "openvino"):
        with pytest.raises(ValueError, match="bad.onnx"):
            backends.create(name, bad)


def test_backend_rejects_wrong_frame_format(styles_dir):
    with backends.create("onnxruntime", styles_dir / "rand-a.onnx") as b:
        with pytest.raises(ValueError, match="uint8 HxWx3"):
            b.infer(np.zeros((4, 4), np.uint8))


# -- issue 11 row 14: a model whose input size is fixed ----------------------------------------

@pytest.fixture()
def fixed_224(styles_dir, tmp_path):
    """A livestyle style whose graph declares a fixed 224x224 frame (as a hand export with
    no dynamic axes has)."""
    import onnx

    model = onnx.load(str(styles_dir / "rand-a.onnx"))
    for v in (model.graph.input[0], model.graph.output[0]):
        for axis in (1, 2):
            dim = v.type.tensor_type.shape.dim[axis]
            dim.ClearField("dim_param")
            dim.dim_value = 224
    path = tmp_path / "fixed-224.onnx"
    onnx.save(model, str(path))
    return path


def test_fixed_size_model_is_refused_alike_by_every_backend(fixed_224, tmp_path):
    from tests.test_reliability import livestyle

    messages = set()
    for name in ("auto", "onnxruntime", "openvino", "torch"):
        out = tmp_path / f"{name}.mp4"
        r = livestyle("run", "--style", str(fixed_224), "--backend", name, "--source",
                      str(need(CLIP)), "-o", str(out), "--no-preview")
        assert r.returncode == 2, (name, r.stderr)
        assert "Traceback" not in r.stderr and not out.exists(), (name, r.stderr)
        (line,) = [ln for ln in r.stderr.splitlines() if "224x224" in ln]
        messages.add(line)
    assert len(messages) == 1, messages  # the same words whichever backend was asked
    assert "takes only frames of 224x224" in messages.pop()
