"""Tests for the trainer (train/): learning, exact resume, checkpoints, export, DDP, CLI.

Every run here is tiny (32 px crops, batch 2, a handful of steps, 6 real photos copied into a
temporary folder) because the trainer shares a 2-core CPU with real training jobs. The shared
photos and painting are real data; the tests skip, saying what is missing, without them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from livestyle.generator import SIZES, Generator, PixelWrapper
from livestyle.metrics import psnr
from livestyle.styles import read_style
from train import faces, ink, losses, loop
from train.__main__ import main as train_main
from train.config import TrainConfig
from train.data import CropSampler, is_holdout
from train.export import export_onnx
from train.loop import CheckpointError, load_checkpoint, save_atomic, save_grid, train

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CONTENT = SHARED / "content"
STYLE = SHARED / "styles" / "starry_night.jpg"
N_PHOTOS = 6
TINY = dict(crop=32, batch=2, threads=1, sample_every=1000, checkpoint_every=1000, log_every=1)


# -- fixtures and helpers ---------------------------------------------------------------------

def _photos() -> list[Path]:
    if not CONTENT.is_dir():
        pytest.skip(f"shared content photos missing: {CONTENT}")
    photos = sorted(p for p in CONTENT.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if len(photos) < N_PHOTOS:
        pytest.skip(f"need {N_PHOTOS} photos in {CONTENT}, found {len(photos)}")
    # evenly spread over the sorted folder: faces, COCO scenes, Kodak, ...
    return [photos[int(i)] for i in np.linspace(0, len(photos) - 1, N_PHOTOS)]


def _style() -> Path:
    if not STYLE.is_file():
        pytest.skip(f"shared style painting missing: {STYLE}")
    return STYLE


@pytest.fixture(scope="module")
def content_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("content")
    for p in _photos():
        shutil.copy(p, d / p.name)
    return d


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """`threads` in a config sets torch's global thread count; give it back after each test."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def make_cfg(content_dir: Path, root: Path, **kw) -> TrainConfig:
    base = dict(name="t", style_image=str(_style()), content_dir=str(content_dir),
                run_dir=str(root / "runs"), out_dir=str(root / "out"), steps=6, **TINY)
    if kw.get("teacher"):
        base.pop("style_image")
        base["stability_weight"] = 1.0  # what the bundled teachers train with
    base.update(kw)
    return TrainConfig(**base)


def cli_args(cfg: TrainConfig) -> list[str]:
    """The `python -m train` flags that rebuild `cfg` (defaults left out)."""
    args = ["--name", cfg.name]
    for k, v in cfg.to_dict().items():
        if k != "name" and v is not None and v != TrainConfig.__dataclass_fields__[k].default:
            args += ["--" + k.replace("_", "-"), str(v)]
    return args


def run_python(*args, timeout=120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, **kw)


def no_tmp_files(folder: Path) -> list[str]:
    return [n for n in os.listdir(folder) if n.endswith(".tmp")] if folder.is_dir() else []


def generator_from(ckpt: dict, cfg: TrainConfig, weights: str = "generator") -> Generator:
    """The checkpoint's network: its last step's weights, or (weights="ema") their average."""
    g = Generator(SIZES[cfg.generator_size])
    g.load_state_dict(ckpt[weights])
    return g.eval()


@pytest.fixture(scope="module")
def perceptual_run(content_dir, tmp_path_factory):
    """One 30-step perceptual run, exported: (cfg, checkpoint, onnx path)."""
    root = tmp_path_factory.mktemp("perceptual")
    cfg = make_cfg(content_dir, root, name="starry-test", steps=30, description="test painting",
                   stability_weight=2.0)  # off by default for a painting; tested here on
    out = train(cfg)
    return cfg, load_checkpoint(Path(cfg.run_dir) / cfg.name / "checkpoint.pt"), out


# -- 1. learning --------------------------------------------------------------------------------

def test_perceptual_training_lowers_the_loss(perceptual_run):
    cfg, ckpt, _ = perceptual_run
    hist = ckpt["history"]
    assert [h["step"] for h in hist] == list(range(cfg.steps)), "one history entry per log step"
    first, last = hist[:5], hist[-5:]

    def mean(rows, key):  # the loss without the stability term, which joins late
        return float(np.mean([r[key] - r.get("stability", 0.0) for r in rows]))

    # seeded, so not flaky; the margin is wide (here ~5.1 -> ~3.0 over 30 steps). The style term
    # is not asserted on its own: at 32 px and 30 steps it falls nearly as much (0.98 -> 0.62)
    # when its gradient is cut off, so it would not tell a learning run from a broken one.
    assert mean(last, "loss") < 0.7 * mean(first, "loss"), (mean(first, "loss"), mean(last, "loss"))
    # a painting's stability loss is a fine-tune over the last quarter of the steps
    late = cfg.stability_from()
    assert 0 < late < cfg.steps
    assert all({"loss", "style", "content", "tv"} <= h.keys() for h in hist)
    assert ["stability" in h for h in hist] == [h["step"] >= late for h in hist]
    assert all(np.isfinite(v) for h in hist for v in h.values())


# -- 2. exact resume ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["perceptual", "teacher-gan"])
def test_killed_and_resumed_run_equals_uninterrupted_run(content_dir, tmp_path, monkeypatch, mode):
    """Issue 7: killed mid-run and resumed gives the same final weights as an uninterrupted run."""
    extra = {} if mode == "perceptual" else dict(teacher="cartoon", adversarial_weight=0.5)
    steps, every, kill_at = 8, 3, 4  # killed during step index 4: last checkpoint at step 3
    ref_cfg = make_cfg(content_dir, tmp_path / "ref", steps=steps, checkpoint_every=every, **extra)
    train(ref_cfg, export=False)
    ref = load_checkpoint(Path(ref_cfg.run_dir) / "t" / "checkpoint.pt")

    cfg = make_cfg(content_dir, tmp_path / "killed", steps=steps, checkpoint_every=every, **extra)
    update = loop.Progress.update

    def dies_at_kill_step(self, step, logs):
        if step == kill_at:
            raise KeyboardInterrupt
        update(self, step, logs)

    monkeypatch.setattr(loop.Progress, "update", dies_at_kill_step)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, export=False)
    monkeypatch.undo()
    ckpt_path = Path(cfg.run_dir) / "t" / "checkpoint.pt"
    assert load_checkpoint(ckpt_path)["step"] == 3

    train(cfg, resume=True, export=False)
    got = load_checkpoint(ckpt_path)
    assert got["step"] == ref["step"] == steps
    assert got["generator"].keys() == ref["generator"].keys()
    for k, v in ref["generator"].items():
        assert torch.equal(got["generator"][k], v), f"generator weight {k} differs after resume"
    if "critic" in ref:
        for k, v in ref["critic"].items():
            assert torch.equal(got["critic"][k], v), f"critic weight {k} differs after resume"
    # the same batches and perturbations: every logged loss is identical, step for step
    assert got["history"] == ref["history"]


def test_resume_refuses_changed_settings(content_dir, tmp_path, capsys):
    cfg = make_cfg(content_dir, tmp_path, steps=2)
    train(cfg, export=False)
    changed = [*cli_args(cfg), "--lr", "0.01", "--resume"]
    assert train_main(changed) == 2
    err = capsys.readouterr().err
    assert "different settings (lr)" in err and "checkpoint.pt" in err


def test_ema_exports_the_averaged_weights_and_resumes_them(content_dir, tmp_path, capsys):
    """--ema: the checkpoint carries the moving average, the export is made from it (not from
    the last step's weights), and a run resumed with --ema from a checkpoint without one
    starts averaging there and says so."""
    from livestyle.backends.torch import generator_weights

    cfg = make_cfg(content_dir, tmp_path, steps=2, ema=0.0)
    train(cfg, export=False)
    assert "ema" not in load_checkpoint(Path(cfg.run_dir) / "t" / "checkpoint.pt")
    cfg = make_cfg(content_dir, tmp_path, steps=5, ema=0.5)
    out = train(cfg, resume=True)
    assert "averaging the weights from step 2 on" in capsys.readouterr().err
    ckpt = load_checkpoint(Path(cfg.run_dir) / "t" / "checkpoint.pt")
    _, exported = generator_weights(out)
    name = "stem.0.1.weight"
    assert torch.allclose(exported[name], ckpt["ema"][name])
    assert not torch.allclose(ckpt["ema"][name], ckpt["generator"][name])
    # resuming further continues the stored average, silently
    train(make_cfg(content_dir, tmp_path, steps=6, ema=0.5), resume=True, overwrite=True)
    assert "averaging" not in capsys.readouterr().err


# -- 3. checkpoints ----------------------------------------------------------------------------

class Payload:
    """Unpickling this runs code: it creates a file. A checkpoint must never do that."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("damage", ["truncated", "random-bytes", "empty"])
def test_corrupt_checkpoint_gives_checkpoint_error(tmp_path, damage):
    path = tmp_path / "checkpoint.pt"
    g = Generator(SIZES["tiny"])
    save_atomic({"step": 5, "config": {}, "generator": g.state_dict()}, path)
    assert load_checkpoint(path)["step"] == 5
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2],
                      "random-bytes": np.random.default_rng(0).bytes(4096),
                      "empty": b""}[damage])
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert str(path) in msg and "unreadable" in msg and "delete it" in msg


def test_checkpoint_that_is_not_ours_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not a livestyle training checkpoint"):
        load_checkpoint(path)


def test_checkpoint_with_pickled_code_is_refused_unrun(tmp_path):
    path, marker = tmp_path / "evil.pt", tmp_path / "code-ran"
    torch.save({"step": 1, "config": {}, "generator": {}, "extra": Payload(marker)}, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)
    assert not marker.exists(), "loading the checkpoint ran pickled code"
    # the payload is real: a full unpickle does run it (so the assertion above means something)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_resume_from_corrupt_checkpoint_is_a_clean_cli_error(content_dir, tmp_path, capsys):
    cfg = make_cfg(content_dir, tmp_path, steps=2)
    ckpt = Path(cfg.run_dir) / "t" / "checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"PK\x03\x04 not really a zip")
    assert train_main([*cli_args(cfg), "--resume"]) == 2
    err = capsys.readouterr().err
    assert str(ckpt) in err and "unreadable" in err


# -- 4. export ---------------------------------------------------------------------------------

def test_export_round_trips_through_onnx_runtime(perceptual_run, content_dir):
    cfg, ckpt, out = perceptual_run
    assert out == Path(cfg.out_dir) / "starry-test.onnx" and out.is_file()
    assert out.stat().st_mode & 0o044 == 0o044, "the model must be readable by others"
    # a whole real photo at an odd size (the graph pads to a multiple of 4 and crops back)
    bgr = cv2.imread(str(sorted(content_dir.iterdir())[-1]), cv2.IMREAD_COLOR)[:301, :403]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"frame": np.ascontiguousarray(bgr[None])})[0][0]
    with torch.no_grad():
        # a painting exports the moving average of its weights by default (--ema)
        ref = PixelWrapper(generator_from(ckpt, cfg, "ema"))(
            torch.from_numpy(bgr[None].copy()))[0].numpy()
    assert got.shape == bgr.shape and got.dtype == np.uint8
    assert psnr(got, ref) > 40, psnr(got, ref)
    assert psnr(got, bgr) < 30, "the trained model should change the photo"

    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert {"livestyle.style", "livestyle.generator", "livestyle.training"} <= meta.keys()
    style = read_style(out)
    assert style.name == "starry-test" and style.description == "test painting"
    assert style.generator == SIZES[cfg.generator_size].to_dict() | {"channels": list(SIZES[cfg.generator_size].channels)}
    assert style.training["style_image"] == str(STYLE) and style.training["steps_done"] == 30
    assert style.training["resumed_from_step"] == 0 and style.macs_per_pixel > 0


def test_failed_parity_check_writes_nothing(content_dir, tmp_path, monkeypatch):
    g = Generator(SIZES["tiny"]).eval()
    photo = cv2.imread(str(sorted(content_dir.iterdir())[0]), cv2.IMREAD_COLOR)
    target = tmp_path / "m.onnx"
    monkeypatch.setattr("train.export.parity_psnr", lambda *a, **k: 0.0)
    with pytest.raises(ValueError, match="disagree"):
        export_onnx(g, target, style="m", check_images=[photo])
    assert not target.exists()
    assert list(tmp_path.iterdir()) == [], "temporary files left behind"
    # an existing model survives a failed re-export untouched
    target.write_bytes(b"previous model")
    with pytest.raises(ValueError):
        export_onnx(g, target, style="m", check_images=[photo])
    assert target.read_bytes() == b"previous model"
    assert sorted(tmp_path.iterdir()) == [target]


# -- 5. distributed ----------------------------------------------------------------------------

def test_two_process_gloo_ddp_run(content_dir, tmp_path):
    cfg = make_cfg(content_dir, tmp_path, name="ddp", steps=4, checkpoint_every=2, sample_every=4)
    t0 = time.perf_counter()
    r = run_python("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   "-m", "train", *cli_args(cfg), timeout=180)
    took = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    assert took < 90, f"2-process run took {took:.0f} s"
    # only rank 0 writes and talks: one model, one export line, one progress line per step
    assert r.stderr.count("wrote ") == 1 and r.stderr.count(" 4/4 ") == 1, r.stderr
    assert sorted(os.listdir(cfg.out_dir)) == ["ddp.onnx"]
    run_dir = Path(cfg.run_dir) / "ddp"
    assert sorted(os.listdir(run_dir)) == ["checkpoint.pt", "samples_000004.png"]
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    assert ckpt["step"] == 4 and read_style(Path(cfg.out_dir) / "ddp.onnx").name == "ddp"

    # gradients really were averaged over both ranks: same seed, same rank-0 batches, but
    # the weights differ from a single-process run's after the first step
    single = make_cfg(content_dir, tmp_path / "single", name="ddp", steps=4, checkpoint_every=2,
                      sample_every=4)
    train(single, export=False)
    alone = load_checkpoint(Path(single.run_dir) / "ddp" / "checkpoint.pt")
    assert alone["history"][0] == ckpt["history"][0]  # step 0: same batch, same start weights
    assert any(not torch.equal(alone["generator"][k], v) for k, v in ckpt["generator"].items())


# -- 6. teacher mode ---------------------------------------------------------------------------

def test_toon_student_exports_with_calibrated_ink(content_dir, tmp_path):
    cfg = make_cfg(content_dir, tmp_path, name="toon-test", teacher="cartoon", steps=2,
                   size="toon", content_weight=0.0)
    assert train_main(cli_args(cfg)) == 0
    picked = read_style(Path(cfg.out_dir) / "toon-test.onnx").training["ink"]
    assert picked["ink_gain"] in ink.GAINS and picked["ink_bias"] in ink.BIASES
    assert picked["psnr_after"] >= picked["psnr_before"] and picked["photos"] >= 1


def test_teacher_mode_trains_and_exports(content_dir, tmp_path):
    cfg = make_cfg(content_dir, tmp_path, name="cartoon-test", teacher="cartoon", steps=4,
                   sample_every=4)
    assert cfg.mode == "teacher"
    assert train_main(cli_args(cfg)) == 0
    out = Path(cfg.out_dir) / "cartoon-test.onnx"
    style = read_style(out)
    assert style.training["teacher"] == "cartoon" and style.training["style_image"] is None
    ckpt = load_checkpoint(Path(cfg.run_dir) / cfg.name / "checkpoint.pt")
    assert {"l1", "perceptual", "stability"} <= ckpt["history"][0].keys()
    assert "style" not in ckpt["history"][0]
    # grid rows: photo | network | teacher
    grid = cv2.imread(str(Path(cfg.run_dir) / cfg.name / "samples_000004.png"))
    assert grid.shape == (4 * loop.SAMPLE_SIDE, 3 * loop.SAMPLE_SIDE, 3)
    frame = np.zeros((1, 50, 70, 3), np.uint8)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.run(None, {"frame": frame})[0].shape == frame.shape


# -- 7. command line ---------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["neither", "both"])
def test_cli_needs_exactly_one_of_style_image_and_teacher(content_dir, which):
    style = str(_style())
    extra = [] if which == "neither" else ["--style-image", style, "--teacher", "cartoon"]
    r = run_python("-m", "train", "--name", "x", "--content-dir", str(content_dir), *extra)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "exactly one of --style-image (a painting) or --teacher" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("flags, message", [
    (["--teacher", "cartoonn"], "unknown teacher 'cartoonn'; known teachers: cartoon, sketch"),
    (["--teacher", "cartoon", "--size", "huge"], "unknown --size 'huge'; known sizes: fast"),
    (["--teacher", "cartoon", "--content-dir", "EMPTY"], "no images"),
    (["--teacher", "cartoon", "--crop", "30"], "--crop must be a multiple of 4"),
    (["--teacher", "cartoon", "--init-from", "nope.onnx"], "--init-from: no such model: nope.onnx"),
    (["--style-image", str(STYLE), "--style-weights", "1,2"], "needs one number per style (1)"),
    (["--style-image", str(STYLE), "--style-weights", "x"], "comma-separated numbers, got 'x'"),
    (["--style-image", str(STYLE), "--style-weights", "-1"], "must be positive, got '-1'"),
    (["--style-image", str(STYLE), "--max-minutes", "-1"], "--max-minutes must be 0 (no limit)"),
    (["--style-image", str(STYLE), "--max-minutes", "nan"], "--max-minutes must be a finite"),
])
def test_cli_bad_settings_are_one_line_errors(content_dir, tmp_path, capsys, flags, message):
    """Caught while building the config, not as a traceback from inside train()."""
    (tmp_path / "empty").mkdir()
    flags = [str(tmp_path / "empty") if f == "EMPTY" else f for f in flags]
    argv = ["--name", "x", "--content-dir", str(content_dir), "--run-dir", str(tmp_path / "r"),
            "--out-dir", str(tmp_path / "o"), *flags]
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("livestyle train: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", [["livestyle"], [sys.executable, "-m", "livestyle"]],
                         ids=["console-script", "python-m"])
def test_livestyle_train_help(command):
    if command == ["livestyle"]:
        exe = shutil.which("livestyle")
        if exe is None:
            pytest.skip("the livestyle console script is not installed (pip install -e .)")
        command = [exe]
    r = subprocess.run([*command, "train", "--help"], capture_output=True, text=True,
                       timeout=60, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: livestyle train")
    for flag in ("--style-image", "--teacher", "--resume", "--content-dir", "torchrun"):
        assert flag in r.stdout, flag


# -- 8. interruption ---------------------------------------------------------------------------

def test_ctrl_c_exits_130_and_leaves_a_loadable_checkpoint(content_dir, tmp_path):
    # every step writes a checkpoint and a sample grid, so the interrupt likely lands in a write
    cfg = make_cfg(content_dir, tmp_path, steps=100_000, checkpoint_every=1, sample_every=1,
                   log_every=1000)
    ckpt = Path(cfg.run_dir) / cfg.name / "checkpoint.pt"
    proc = subprocess.Popen([sys.executable, "-m", "train", *cli_args(cfg)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not ckpt.exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "no checkpoint after 90 s"
            time.sleep(0.05)
        time.sleep(0.5)  # a few more steps, mid-run
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err, err
    # the message names the step that was saved, and it is the checkpoint's step
    saved = int(err.split("interrupted: step ")[1].split(" ")[0])
    assert load_checkpoint(ckpt)["step"] == saved >= 1
    assert no_tmp_files(ckpt.parent) == [] and no_tmp_files(Path(cfg.out_dir)) == []
    assert not (Path(cfg.out_dir) / "t.onnx").exists()


@pytest.mark.parametrize("writer", ["checkpoint", "grid"])
def test_write_interrupted_before_rename_leaves_no_temporary_file(tmp_path, monkeypatch, writer):
    """Deterministic version of the race above: the interrupt lands just before the rename."""
    target = tmp_path / ("checkpoint.pt" if writer == "checkpoint" else "samples_000001.png")

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    g = Generator(SIZES["tiny"]).eval()
    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        if writer == "checkpoint":
            save_atomic({"step": 1, "config": {}, "generator": g.state_dict()}, target)
        else:
            save_grid(g, [np.zeros((40, 40, 3), np.uint8)], None, target)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("depth,n_convs", [(16, 10), (19, 12)])
def test_user_vgg_weights_load_in_torchvision_layout(tmp_path, depth, n_convs):
    """A VGG16/19 state dict as torchvision saves it ("features.N.weight") is a loss network."""
    from train.lossnet import _VGG, build_loss_net

    state, index, cin = {}, 0, 3
    for v in _VGG[depth]:
        if v == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(v, cin, 3, 3) * 0.05
        state[f"features.{index}.bias"] = torch.zeros(v)
        state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored: only features are used
        index, cin = index + 2, v
    path = tmp_path / f"vgg{depth}.pth"
    torch.save(state, path)
    net = build_loss_net(str(path))
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == n_convs  # up to relu4_3 (relu4_4 for VGG19)
    style, content = net(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in style] == [64, 128, 256, 512]
    assert [f.shape[1] for f in content] == [128]
    torch.testing.assert_close(convs[0].weight, state["features.0.weight"])


def test_unknown_loss_network_is_a_clear_error():
    from train.lossnet import build_loss_net

    with pytest.raises(ValueError, match="efficientnet-lite0"):
        build_loss_net("vgg-from-nowhere")


# -- 9. what training must never destroy, and where models go -----------------------------------

def test_existing_model_is_kept_unless_overwrite(content_dir, tmp_path, capsys):
    cfg = make_cfg(content_dir, tmp_path, steps=1)
    target = Path(cfg.out_dir) / "t.onnx"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"the user's model")
    assert train_main(cli_args(cfg)) == 2
    assert "already exists" in capsys.readouterr().err
    assert target.read_bytes() == b"the user's model"
    assert not (Path(cfg.run_dir) / "t").exists(), "refused before any work"
    assert train_main(cli_args(cfg) + ["--overwrite"]) == 0
    assert read_style(target).name == "t"


def test_resume_without_a_checkpoint_is_an_error(content_dir, tmp_path, capsys):
    cfg = make_cfg(content_dir, tmp_path, steps=1)
    assert train_main(cli_args(cfg) + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint at" in err and "without --resume" in err
    assert not Path(cfg.out_dir).exists()


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", "", "x" * 80])
def test_style_names_cannot_leave_the_output_folder(content_dir, tmp_path, capsys, name):
    assert train_main(["--name", name, "--teacher", "cartoon", "--content-dir", str(content_dir),
                       "--out-dir", str(tmp_path / "o"), "--run-dir", str(tmp_path / "r")]) == 2
    assert "not a valid style name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_models_go_to_the_users_styles_folder_by_default(content_dir, tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.setenv("LIVESTYLE_STYLES", str(tmp_path / "mine"))
    cfg = make_cfg(content_dir, tmp_path, name="cartoon", teacher="cartoon", steps=1, out_dir="")
    assert train_main(cli_args(cfg)) == 0
    err = capsys.readouterr().err
    assert (tmp_path / "mine" / "cartoon.onnx").is_file()
    # a bundled style of the same name is left alone, and the user is told theirs wins
    assert "take precedence over the bundled" in err
    # written anywhere else, it hides nothing: no such note
    elsewhere = make_cfg(content_dir, tmp_path, name="cartoon", teacher="cartoon", steps=1,
                         out_dir=str(tmp_path / "elsewhere"), run_dir=str(tmp_path / "r2"))
    assert train_main(cli_args(elsewhere)) == 0
    assert "take precedence" not in capsys.readouterr().err
    assert "run it with: livestyle run --style cartoon" in err


def test_resume_may_extend_the_steps(content_dir, tmp_path):
    cfg = make_cfg(content_dir, tmp_path, steps=2)
    train(cfg, export=False)
    longer = make_cfg(content_dir, tmp_path, steps=4)
    train(longer, resume=True, export=False)
    assert load_checkpoint(Path(cfg.run_dir) / "t" / "checkpoint.pt")["step"] == 4


def test_resume_keeps_the_settings_the_run_was_made_with(content_dir, tmp_path, capsys):
    """`--resume` with only the run's name takes every other setting from its checkpoint:
    one made before a default changed (here stability 0, and no coarse style term, as before
    2026-12-05) keeps its values; a flag given still wins (more steps)."""
    cfg = make_cfg(content_dir, tmp_path, steps=2, style_weight=3.0, stability_weight=0.0,
                   coarse_style_weight=0.0)
    train(cfg, export=False)
    ckpt_path = Path(cfg.run_dir) / "t" / "checkpoint.pt"
    old = load_checkpoint(ckpt_path)
    del old["config"]["coarse_style_weight"]  # as a checkpoint from before the term existed
    save_atomic(old, ckpt_path)
    capsys.readouterr()
    assert train_main(["--name", "t", "--run-dir", cfg.run_dir, "--steps", "3", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "resumed from" in err and "fine-tuning" not in err, err
    after = load_checkpoint(ckpt_path)
    assert after["step"] == 3
    kept = {k: after["config"][k] for k in ("style_weight", "stability_weight",
                                            "coarse_style_weight", "style_image", "content_dir")}
    assert kept == dict(style_weight=3.0, stability_weight=0.0, coarse_style_weight=0.0,
                        style_image=cfg.style_image, content_dir=cfg.content_dir)
    # the model went where the run's --out-dir said, not to the default styles folder
    assert (Path(cfg.out_dir) / "t.onnx").is_file()


def test_resume_goes_on_when_the_model_it_started_from_is_gone(content_dir, tmp_path, capsys):
    """--init-from is read only when a run starts: a resumed run whose starting model was
    deleted since continues, saying so."""
    first = train(make_cfg(content_dir, tmp_path / "first", steps=1))
    start = shutil.copy(first, tmp_path / "start.onnx")
    cfg = make_cfg(content_dir, tmp_path, steps=2, init_from=str(start))
    train(cfg, export=False)
    os.remove(start)
    capsys.readouterr()
    assert train_main(["--name", "t", "--run-dir", cfg.run_dir, "--steps", "3", "--resume"]) == 0
    assert "is gone" in capsys.readouterr().err
    assert load_checkpoint(Path(cfg.run_dir) / "t" / "checkpoint.pt")["step"] == 3


def test_resume_from_another_folder_of_a_run_with_relative_paths_says_where(
        content_dir, tmp_path, monkeypatch, capsys):
    """Relative --content-dir and --out-dir mean the folder a run was started in: resumed from
    another, they would read other photos or write the model elsewhere, so it is refused."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(content_dir, tmp_path / "photos")
    cfg = make_cfg(Path("photos"), tmp_path, steps=1, out_dir="models")
    train(cfg, export=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert train_main(["--name", "t", "--run-dir", cfg.run_dir, "--steps", "2", "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"resume it from there (cd {tmp_path})" in err and "--content-dir" in err, err
    assert not (elsewhere / "models").exists()


def test_resume_of_a_run_that_does_not_exist_names_the_checkpoint(tmp_path, capsys):
    assert train_main(["--name", "nope", "--run-dir", str(tmp_path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint at" in err and "nope" in err and "Traceback" not in err, err


def test_max_minutes_stops_saves_and_exports_what_was_learned(content_dir, tmp_path, capsys):
    """A time limit shorter than one step: the run stops after its first step, keeps a
    checkpoint of it, exports a model that records 1 step done; resuming must be told to
    replace that model, then goes on to the end."""
    cfg = make_cfg(content_dir, tmp_path, steps=5, max_minutes=1e-6)
    model = train(cfg)
    assert "--max-minutes 1e-06 reached at step 1 of 5" in capsys.readouterr().err
    ckpt = Path(cfg.run_dir) / "t" / "checkpoint.pt"
    assert load_checkpoint(ckpt)["step"] == 1
    training = read_style(model).training
    assert training["steps_done"] == 1 and training["steps"] == 5
    with pytest.raises(CheckpointError, match="--overwrite"):
        train(make_cfg(content_dir, tmp_path, steps=5), resume=True)
    assert read_style(model).training["steps_done"] == 1  # kept
    train(make_cfg(content_dir, tmp_path, steps=5), resume=True, overwrite=True)
    assert load_checkpoint(ckpt)["step"] == 5
    assert read_style(model).training["steps_done"] == 5


def test_a_generous_max_minutes_trains_every_step(content_dir, tmp_path, capsys):
    model = train(make_cfg(content_dir, tmp_path, steps=3, max_minutes=30))
    assert read_style(model).training["steps_done"] == 3
    assert "--max-minutes" not in capsys.readouterr().err


@pytest.mark.parametrize("elapsed_s, step, steps, late", [
    (59.0, 3, 10, False),   # under the limit of 1 minute
    (61.0, 3, 10, True),    # over it, steps left: stop
    (61.0, 9, 10, False),   # over it on the last step: that is the end anyway
    (3600.0, 0, 10, True),
])
def test_the_time_limit_is_in_minutes_of_this_run(content_dir, tmp_path, elapsed_s, step, steps,
                                                   late):
    cfg = make_cfg(content_dir, tmp_path, steps=steps, max_minutes=1)
    start = time.perf_counter() - elapsed_s
    assert loop._out_of_time(cfg, step, start, False, None) is late
    off = make_cfg(content_dir, tmp_path, steps=steps, max_minutes=0)
    assert loop._out_of_time(off, step, start, False, None) is False


def test_resume_may_fine_tune_with_new_loss_weights(content_dir, tmp_path, capsys):
    """A trained cartoon finished with a squared-error term: the run continues from its
    weights, says what changed, and logs the new term from the step it resumed at."""
    cfg = make_cfg(content_dir, tmp_path, name="toon", teacher="cartoon", steps=2,
                   content_weight=0.0, long_side=256, crop=64)
    train(cfg, export=False)
    ckpt_path = Path(cfg.run_dir) / "toon" / "checkpoint.pt"
    before = load_checkpoint(ckpt_path)
    # a checkpoint made before l2_weight existed: the setting had its default then
    del before["config"]["l2_weight"]
    save_atomic(before, ckpt_path)
    capsys.readouterr()
    finish = make_cfg(content_dir, tmp_path, name="toon", teacher="cartoon", steps=4,
                      content_weight=0.0, long_side=256, crop=64, l2_weight=2.0)
    train(finish, resume=True, export=False)
    assert "fine-tuning with l2_weight 2.0 (was 0.0)" in capsys.readouterr().err
    after = load_checkpoint(ckpt_path)
    assert after["step"] == 4 and after["config"]["l2_weight"] == 2.0
    logged = {h["step"]: h for h in after["history"]}
    assert "l2" not in logged[1] and logged[2]["l2"] > 0 and logged[3]["l2"] > 0


def test_init_from_starts_where_an_exported_style_is(tmp_path):
    """The run's generator draws exactly what the exported style drew; a style made with
    another network is refused with a clear error."""
    torch.manual_seed(3)
    old = Generator(SIZES["toon"]).eval()
    with torch.no_grad():
        for p in old.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = export_onnx(old, tmp_path / "old.onnx", style="old")
    new = Generator(SIZES["toon"]).eval()
    loop.init_from(new, str(path))
    x = torch.rand(1, 3, 52, 76)
    with torch.no_grad():
        assert torch.equal(old(x), new(x))
    with pytest.raises(CheckpointError, match="pass the --size it was made with"):
        loop.init_from(Generator(SIZES["paint"]), str(path))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a livestyle style"):
        loop.init_from(Generator(SIZES["toon"]), str(tmp_path / "junk.onnx"))


def test_a_student_learns_to_draw_what_its_master_draws(perceptual_run, content_dir, tmp_path):
    """--distill-from: with no other loss, the student's output moves towards the master's
    (an exported style of another network) on the training crops."""
    _, _, master_path = perceptual_run
    cfg = make_cfg(content_dir, tmp_path, name="student", size="fast", steps=40, lr=0.005,
                   style_weight=0.0, content_weight=0.0, distill_from=str(master_path))
    train(cfg, export=False)
    hist = load_checkpoint(Path(cfg.run_dir) / "student" / "checkpoint.pt")["history"]
    first = np.mean([h["distill"] for h in hist[:5]])
    last = np.mean([h["distill"] for h in hist[-5:]])
    assert last < 0.6 * first, (first, last)
    with pytest.raises(ValueError, match="--distill-from: no such model"):
        make_cfg(content_dir, tmp_path, distill_from=str(tmp_path / "none.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a livestyle style"):
        loop.load_master(str(tmp_path / "junk.onnx"), "cpu")


def test_style_weights_weigh_each_painting_by_its_multiplier():
    torch.manual_seed(0)
    feats = [torch.rand(4, 3, 5, 5), torch.rand(4, 6, 3, 3)]
    grams = [torch.rand(2, 3, 3), torch.rand(2, 6, 6)]
    style = torch.tensor([0, 1, 1, 0])
    per_sample = [losses.style_loss([f[i:i + 1] for f in feats], grams, style[i:i + 1])
                  for i in range(4)]
    got = losses.style_loss(feats, grams, style, torch.tensor([1.0, 3.0]))
    want = sum(p * (3.0 if s else 1.0) for p, s in zip(per_sample, style)) / 4
    assert torch.allclose(got, want)
    assert torch.allclose(losses.style_loss(feats, grams, style, torch.ones(2)),
                          losses.style_loss(feats, grams, style))


def test_size_norm_is_the_plain_mean_and_energy_divides_by_the_target():
    torch.manual_seed(0)
    feats = [torch.rand(2, 3, 5, 5)]
    grams = [torch.rand(1, 3, 3) * 4]
    err = (losses.gram(feats[0]) - grams[0]).pow(2).mean(dim=(1, 2)).mean()
    assert torch.allclose(losses.style_loss(feats, grams, norm="size"), err)
    assert torch.allclose(losses.style_loss(feats, grams, norm="energy"),
                          err / grams[0].pow(2).mean())
    f, t = torch.rand(2, 4, 3, 3), torch.rand(2, 4, 3, 3) * 3
    assert torch.allclose(losses.content_loss([f], [t], norm="size"), (f - t).pow(2).mean())


def _skin_and_sky() -> torch.Tensor:
    """One 1x3x64x128 RGB image: a skin-coloured left half, a sky-blue right half."""
    x = torch.empty(1, 3, 64, 128)
    x[:, :, :, :64] = torch.tensor([0.85, 0.62, 0.50]).view(1, 3, 1, 1)
    x[:, :, :, 64:] = torch.tensor([0.35, 0.55, 0.90]).view(1, 3, 1, 1)
    return x


def test_the_skin_mask_covers_skin_colours_and_not_the_sky():
    m = losses.skin_mask(_skin_and_sky())
    assert m[..., 8:-8, 8:56].min() > 0.8 and m[..., 8:-8, 72:120].max() < 0.05


def test_the_skin_term_costs_strokes_over_skin_and_not_over_sky():
    x = _skin_and_sky()
    stripes = (torch.arange(128) % 4 < 2).float().view(1, 1, 1, 128) * 0.3
    over_skin, over_sky = x.clone(), x.clone()
    over_skin[..., :64] += stripes[..., :64]
    over_sky[..., 64:] += stripes[..., 64:]
    assert losses.skin_shading_loss(x, x) == 0
    assert losses.skin_shading_loss(over_skin, x) > 20 * losses.skin_shading_loss(over_sky, x)
    recoloured = x.clone()
    recoloured[:, 2] += 0.1  # colour over skin is free: only light and shade count
    assert losses.skin_shading_loss(recoloured, x) < 1e-6


def test_the_face_map_fills_each_faces_ellipse_and_nothing_else():
    m = faces.face_map(100, 200, [(0.25, 0.2, 0.25, 0.5)])  # a face 50 px wide, 50 tall
    assert m.shape == (100, 200) and m.dtype == np.uint8
    assert m[42, 75] == 255  # the middle of the face
    assert m[:, 120:].max() == 0 and m[:, :30].max() == 0 and m[90:].max() == 0
    assert faces.face_map(100, 200, []).max() == 0


def test_every_crop_carries_its_face_map_at_the_same_place(tmp_path):
    """Photos that show their own face map: the crop of the photo and the crop of the map
    must agree after the random cut, scale and flip (a map flipped or cut elsewhere does not)."""
    boxes = {f"p{i}.png": [(0.1 + 0.2 * i, 0.2, 0.3, 0.4)] for i in range(3)}
    for name, b in boxes.items():
        grey = faces.face_map(120, 160, b)
        cv2.imwrite(str(tmp_path / name), np.dstack([grey] * 3))
    sampler = CropSampler(tmp_path, crop=48, faces=boxes)
    x, target, face = sampler.sample(np.random.default_rng(0), 16)
    assert target is None and face.shape == (16, 1, 48, 48)
    assert face.sum() > 0.05 * face.numel()  # faces were cut, not only background
    err = (x[:, :1] - face).abs().mean()  # the maps differ a little: drawn at two sizes
    assert err < 0.02
    assert (x[:, :1] - face.flip(-1)).abs().mean() > 5 * err
    assert (x[:, :1] - face.roll(4, -1)).abs().mean() > 5 * err  # 4 px off
    assert CropSampler(tmp_path, crop=48).sample(np.random.default_rng(0), 2)[2] is None


def test_the_face_term_costs_strokes_inside_the_face_only():
    x = torch.full((1, 3, 64, 128), 0.5)
    where = torch.zeros(1, 1, 64, 128)
    where[..., :64] = 1.0
    stripes = (torch.arange(128) % 4 < 2).float().view(1, 1, 1, 128) * 0.3
    over_face, over_wall = x.clone(), x.clone()
    over_face[..., :60] += stripes[..., :60]
    over_wall[..., 68:] += stripes[..., 68:]
    assert losses.shading_loss(x, x, where) == 0
    assert losses.shading_loss(over_face, x, where) > 0.5
    assert losses.shading_loss(over_wall, x, where) == 0


def test_the_face_boxes_list_training_photos_only():
    """train/content_faces.json: no held-out photo (the look meter's) may teach faces."""
    boxes = faces.load_boxes()
    assert len(boxes) > 100
    assert not [name for name in boxes if is_holdout(Path(name))]
    assert all(0 <= x and 0 <= y and x + w <= 1.0001 and y + h <= 1.0001 and w > 0 and h > 0
               for bs in boxes.values() for x, y, w, h in bs)


def test_face_weight_trains_on_the_listed_faces_and_refuses_a_folder_without_any(
        content_dir, tmp_path):
    cfg = make_cfg(content_dir, tmp_path, name="faces", size="fast", steps=3, face_weight=1.0)
    assert faces.load_boxes().keys() & {p.name for p in content_dir.iterdir()}
    train(cfg, export=False)
    hist = load_checkpoint(Path(cfg.run_dir) / "faces" / "checkpoint.pt")["history"]
    assert all("face" in h for h in hist) and max(h["face"] for h in hist) > 0
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    cv2.imwrite(str(unknown / "me.png"),
                np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="python -m train.faces --content-dir"):
        train(make_cfg(unknown, tmp_path, name="nofaces", steps=2, face_weight=1.0), export=False)
    # a folder of one's own, with the boxes train.faces would write for it
    boxes = tmp_path / "my_faces.json"
    boxes.write_text(json.dumps({"faces": {"me.png": [[0.2, 0.2, 0.5, 0.6]]}}))
    cfg = make_cfg(unknown, tmp_path, name="mine", steps=2, face_weight=1.0, face_boxes=str(boxes))
    train(cfg, export=False)
    hist = load_checkpoint(Path(cfg.run_dir) / "mine" / "checkpoint.pt")["history"]
    assert "face" in hist[0] and hist[-1]["face"] > 0, hist  # step 0 draws the photo itself
    with pytest.raises(ValueError, match="--face-boxes: no such file"):
        make_cfg(unknown, tmp_path, face_weight=1.0, face_boxes=str(tmp_path / "none.json"))
    (tmp_path / "junk.json").write_text('{"faces": [1, 2]}')
    with pytest.raises(ValueError, match="cannot read the face boxes"):
        faces.load_boxes(tmp_path / "junk.json")
    with pytest.raises(SystemExit, match="exists; pass --overwrite"):
        faces.main(["--content-dir", str(unknown), "--out", str(boxes)])


@pytest.mark.parametrize("flag, value, message", [
    ("loss_norm", "l2", "--loss-norm must be 'size' or 'energy'"),
    ("style_taps", "stem,conv9", "--style-taps takes 'stem' and block numbers"),
    ("style_taps", "stem", "at least one block"),
    ("style_taps", "1,12", "at least one block among 0-8"),
])
def test_bad_loss_settings_are_refused_before_any_work(flag, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(name="x", style_image=str(_style()), **{flag: value})


@pytest.mark.parametrize("extra, first", [
    ({}, 600),  # a painting, by default: a light one over the last quarter
    ({"stability_weight": 0.0}, 800),  # off: none
    ({"stability_weight": 2.0}, 600),  # on: the last quarter of 800 steps
    ({"stability_weight": 2.0, "stability_steps": 150}, 650),
    ({"stability_weight": 2.0, "stability_steps": 0}, 0),  # every step
    ({"stability_weight": 2.0, "stability_steps": 5000}, 0),
])
def test_the_stability_loss_joins_late_as_a_fine_tune(extra, first):
    cfg = TrainConfig(name="x", style_image=str(_style()), steps=800, **extra)
    assert cfg.stability_from() == first


def test_a_teachers_stability_loss_runs_from_the_first_step():
    _photos()
    assert TrainConfig(name="x", teacher="cartoon", steps=800,
                       stability_weight=1.0).stability_from() == 0
    with pytest.raises(ValueError, match="--stability-steps must be"):
        TrainConfig(name="x", teacher="cartoon", stability_steps=-3)


def test_style_taps_pick_the_loss_network_layers():
    from train.lossnet import build_loss_net

    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        with_stem, _ = build_loss_net("efficientnet-lite0", (5,), "stem,1,3,5,8")(x)
        without, _ = build_loss_net("efficientnet-lite0", (5,), "1,3,5,8")(x)
    assert [f.shape[1] for f in with_stem] == [32] + [f.shape[1] for f in without]
    assert len(without) == 4 and all(torch.equal(a, b) for a, b in zip(with_stem[1:], without))


# -- 10. the generators the styles ship with ------------------------------------------------------

def test_multi_style_run_exports_one_model_per_painting(content_dir, tmp_path):
    """Conditional instance norm: one network, two paintings, two ordinary models out."""
    second = SHARED / "styles" / "the_scream.jpg"
    if not second.is_file():
        pytest.skip(f"shared style painting missing: {second}")
    cfg = make_cfg(content_dir, tmp_path, name="a,b", style_image=f"{_style()},{second}",
                   description="first|second", steps=3)
    train(cfg)
    ckpt = load_checkpoint(Path(cfg.run_dir) / "a,b" / "checkpoint.pt")
    both = Generator(dataclasses.replace(SIZES[cfg.generator_size], n_styles=2))
    both.load_state_dict(ckpt["ema"])  # what a painting exports by default (--ema)
    both.eval()
    bgr = cv2.imread(str(sorted(content_dir.iterdir())[0]))[:120, :160]
    outs = []
    for k, name in enumerate(["a", "b"]):
        style = read_style(Path(cfg.out_dir) / f"{name}.onnx")
        assert style.description == ["first", "second"][k]
        assert style.generator["n_styles"] == 1 and style.training["style_index"] == k
        session = ort.InferenceSession(str(style.path), providers=["CPUExecutionProvider"])
        got = session.run(None, {"frame": np.ascontiguousarray(bgr[None])})[0][0]
        x = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)[None] / 255.0
        with torch.no_grad():
            ref = both(x.float(), torch.tensor([k])).clamp(0, 1)[0].permute(1, 2, 0).numpy()
        ref = cv2.cvtColor((ref * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
        assert psnr(got, ref) > 40, f"model {name} is not style {k} of the network"
        outs.append(got)
    # each painting has its own instance-norm scales and shifts (the rest is shared)
    a, b = both.single_style(0).state_dict(), both.single_style(1).state_dict()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert differ and all(k.endswith((".weight", ".bias")) for k in differ), differ
    assert not np.array_equal(outs[0], outs[1])


def test_toon_student_learns_the_teachers_layers(content_dir, tmp_path):
    """The cartoon student gets its own loss on the outlines and on the flat colours."""
    cfg = make_cfg(content_dir, tmp_path, name="toon", teacher="cartoon", steps=3,
                   content_weight=0.0, long_side=256, crop=64)
    assert cfg.generator_size == "toon"
    out = train(cfg)
    history = load_checkpoint(Path(cfg.run_dir) / "toon" / "checkpoint.pt")["history"]
    assert {"lines", "base", "l1", "edges", "stability"} <= history[0].keys()
    assert "perceptual" not in history[0]
    style = read_style(out)
    assert style.generator["head"] == "toon" and style.generator["stem_stride"] == 2
    frame = np.full((1, 37, 53, 3), 200, np.uint8)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.run(None, {"frame": frame})[0].shape == frame.shape


def test_cartoon_layers_composite_to_the_cartoon():
    from train.teachers.cartoon import cartoon, cartoon_parts, ink

    bgr = cv2.imread(str(_photos()[0]))
    flat, cover = cartoon_parts(bgr)
    assert flat.shape == bgr.shape and cover.shape == bgr.shape[:2]
    assert 0.0 <= cover.min() and cover.max() <= 1.0 and cover.max() > 0  # some outlines
    assert np.array_equal(ink(flat, cover), cartoon(bgr))


# -- 11. the trainer's writes: unwritable folders, two runs of one name, a full disk, bad photos

def test_an_unwritable_model_or_run_folder_is_refused_before_the_first_step(content_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for flag, folder in (("--out-dir", blocker / "styles"), ("--run-dir", blocker / "runs")):
        cfg = make_cfg(content_dir, tmp_path, **{flag[2:].replace("-", "_"): str(folder)})
        r = run_python("-m", "train", *cli_args(cfg))
        assert r.returncode == 2, r.stderr
        assert f"cannot write" in r.stderr and f"pass {flag}" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and "preparing training photos" not in r.stderr, r.stderr


def test_a_second_training_of_the_same_name_is_refused_while_the_first_runs(content_dir, tmp_path):
    cfg = make_cfg(content_dir, tmp_path, steps=100000, checkpoint_every=100000)
    first = subprocess.Popen([sys.executable, "-m", "train", *cli_args(cfg)], cwd=REPO,
                             stderr=subprocess.PIPE, text=True)
    try:
        for line in first.stderr:  # the claim is taken before the photos are prepared
            if "preparing training photos" in line:
                break
        r = run_python("-m", "train", *cli_args(cfg))
        assert r.returncode == 2, r.stderr
        assert f"another training (process {first.pid}) is writing" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    finally:
        first.kill()
        first.wait()
    # a killed holder releases its claim: the next run goes ahead
    r = run_python("-m", "train", *cli_args(with_steps(cfg, 2)))
    assert r.returncode == 0, r.stderr


def with_steps(cfg: TrainConfig, steps: int) -> TrainConfig:
    from train.config import with_overrides

    return with_overrides(cfg, steps=steps)


def test_a_full_disk_while_saving_is_one_line_and_the_last_checkpoint_survives(content_dir, tmp_path):
    import resource

    cfg = make_cfg(content_dir, tmp_path, steps=2, checkpoint_every=1)
    assert run_python("-m", "train", *cli_args(cfg)).returncode == 0
    ckpt = Path(cfg.run_dir) / cfg.name / "checkpoint.pt"
    before = ckpt.read_bytes()

    def small_files():  # a real failed write: files may not grow past 64 KB (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    r = run_python("-m", "train", *cli_args(with_steps(cfg, 4)), "--resume", "--overwrite",
                   preexec_fn=small_files)
    assert r.returncode == 2, r.stderr
    assert f"cannot save {ckpt}" in r.stderr and "is the disk full?" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "enforce fail" not in r.stderr, r.stderr
    assert ckpt.read_bytes() == before and load_checkpoint(ckpt)["step"] == 2
    assert no_tmp_files(ckpt.parent) == []


def test_photos_that_are_not_whole_images_are_skipped_and_named(content_dir, tmp_path):
    folder = tmp_path / "photos"
    shutil.copytree(content_dir, folder)
    (folder / "zz-noise.jpg").write_bytes(np.random.default_rng(0).bytes(5000))
    whole = next(p for p in sorted(content_dir.iterdir()) if p.suffix.lower() == ".jpg")
    data = whole.read_bytes()
    (folder / "zz-cut.jpg").write_bytes(data[: len(data) // 2])
    cfg = make_cfg(folder, tmp_path, steps=2)
    r = run_python("-m", "train", *cli_args(cfg))
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stderr.splitlines() if ln.startswith("training on"))
    from train.data import split_images

    usable = len(split_images(folder)[0]) - 2
    assert line.startswith(f"training on {usable} photos; skipped 2"), line
    assert "zz-noise.jpg (cannot decode image)" in line and "zz-cut.jpg (truncated JPEG" in line
    assert "Premature end of JPEG" not in r.stderr and "Corrupt JPEG" not in r.stderr, r.stderr


def test_coarse_style_weight_matches_the_half_size_output_to_the_half_size_painting(
        content_dir, tmp_path, monkeypatch):
    sides = []
    real = loop.read_rgb
    monkeypatch.setattr(loop, "read_rgb", lambda path, side: sides.append(side) or real(path, side))
    cfg = make_cfg(content_dir, tmp_path, name="coarse", steps=3, style_side=200,
                   coarse_style_weight=1.0)
    train(cfg, export=False)
    assert sides[:2] == [200, 100]  # then the sample grid's photos
    hist = load_checkpoint(Path(cfg.run_dir) / "coarse" / "checkpoint.pt")["history"]
    assert all(h["coarse"] > 0 for h in hist), hist
    sides.clear()
    train(make_cfg(content_dir, tmp_path, name="fine", steps=2, style_side=200,
                   coarse_style_weight=0.0), export=False)
    hist = load_checkpoint(Path(cfg.run_dir) / "fine" / "checkpoint.pt")["history"]
    assert sides[0] == 200 and 100 not in sides and not any("coarse" in h for h in hist)


def test_the_tone_term_pays_for_a_paintings_contrast_and_not_for_where_it_lies():
    """A flat copy of a painting's light and dark costs; the same values rearranged (strokes
    anywhere) cost nothing; the gradient reaches the output."""
    g = torch.Generator().manual_seed(0)
    painting = torch.rand(1, 3, 64, 64, generator=g)
    target = losses.luma_quantiles(painting)[0]
    shuffled = painting.flatten(2)[..., torch.randperm(64 * 64, generator=g)].view(1, 3, 64, 64)
    assert losses.tone_loss(shuffled, target) < 1e-6
    flat = (painting - 0.5) * 0.3 + 0.5  # the same mean at 30% of the contrast
    y = flat.clone().requires_grad_()
    cost = losses.tone_loss(y, target)
    assert cost > 0.5
    cost.backward()
    assert y.grad.abs().sum() > 0
    # one row of quantiles per sample (a multi-style net: each against its own painting)
    both = torch.cat([painting, flat])
    rows = losses.luma_quantiles(both)
    assert losses.tone_loss(both, rows) < 1e-6 and losses.tone_loss(both, rows.flip(0)) > 0.5


def test_tone_weight_adds_the_tone_term_to_a_paintings_training(content_dir, tmp_path):
    cfg = make_cfg(content_dir, tmp_path, name="tone", steps=2, tone_weight=0.5)
    train(cfg, export=False)
    hist = load_checkpoint(Path(cfg.run_dir) / "tone" / "checkpoint.pt")["history"]
    assert all(h["tone"] > 0 for h in hist), hist
    train(make_cfg(content_dir, tmp_path, name="notone", steps=1), export=False)
    hist = load_checkpoint(Path(cfg.run_dir) / "notone" / "checkpoint.pt")["history"]
    assert not any("tone" in h for h in hist)


def test_a_painting_defaults_to_a_light_late_stability_loss_and_a_teacher_to_none(content_dir):
    painting = TrainConfig(name="p", style_image=str(_style()), content_dir=str(content_dir),
                           steps=400)
    assert painting.stability_weight == 0.3 and painting.stability_from() == 300
    assert painting.skin_weight == 0.3 and painting.coarse_style_weight == 0.5
    assert painting.ema == 0.99 and painting.style_weight == 2.5  # the average is exported
    teacher = TrainConfig(name="t", teacher="sketch", content_dir=str(content_dir), steps=400)
    assert teacher.stability_weight == 0.0 and teacher.stability_from() == 400
    assert teacher.ema == 0.0
    # stored resolved, so a checkpoint or model records the weight it trained with
    assert TrainConfig(**painting.to_dict()).stability_weight == 0.3
    assert TrainConfig(**painting.to_dict()).ema == 0.99
    off = TrainConfig(name="p", style_image=str(_style()), content_dir=str(content_dir),
                      stability_weight=0.0)
    assert off.stability_from() == off.steps


def test_a_short_run_exports_the_mean_of_its_steps_not_its_starting_weights(content_dir,
                                                                             tmp_path):
    """--ema 0.99 over 4 steps: until the average spans 100 steps it is the plain mean of the
    steps so far, so the export is as far from the random start as the run went (a plain
    moving average would still be 96% the starting weights)."""
    cfg = make_cfg(content_dir, tmp_path, steps=4, ema=0.99)
    torch.manual_seed(cfg.seed)  # as the trainer seeds it: the same starting weights
    start = Generator(SIZES[cfg.generator_size]).state_dict()
    train(cfg, export=False)
    ckpt = load_checkpoint(Path(cfg.run_dir) / "t" / "checkpoint.pt")
    name = "stem.0.1.weight"
    moved = (ckpt["generator"][name] - start[name]).norm()
    averaged = (ckpt["ema"][name] - start[name]).norm()
    assert moved > 0 and averaged > 0.4 * moved, (float(averaged), float(moved))
    assert ckpt["ema_from"] == 0


def test_a_recorded_command_names_the_settings_that_differ_from_its_modes_defaults():
    """engines/README.md rebuilds each model's command from its config: a painting made
    without the moving average must say `--ema 0.0` (a painting's default is 0.99), a teacher
    made without it need not (its default is 0)."""
    from train.record import command

    base = TrainConfig.defaults() | {"name": "p"}
    painting = base | {"style_image": "x/starry_night.jpg", "ema": 0.0, "stability_weight": 0.3}
    assert "--ema 0.0" in command(painting) and "--stability-weight" not in command(painting)
    averaged = painting | {"ema": 0.99}
    assert "--ema" not in command(averaged)
    teacher = base | {"teacher": "sketch", "ema": 0.0, "stability_weight": 1.0}
    assert "--ema" not in command(teacher) and "--stability-weight 1.0" in command(teacher)
