"""Shared fixtures: small generators exported by the tests themselves, and real shared data."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from livestyle.camera import Frame, SourceInfo
from livestyle.generator import Generator, GeneratorConfig
from livestyle.sinks.base import Sink
from train.evaluate import read_clip
from train.export import export_onnx

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CLIP = SHARED / "video" / "talking_head_headpose_male.mp4"  # 480x270, 62 frames
CLIP_640 = SHARED / "video" / "person_on_camera_office.mp4"  # 640x480, 331 frames
SMALL_CFG = GeneratorConfig(channels=(4, 8, 8), n_res=1)


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test data missing: {path}")
    return path


class Identity(nn.Module):
    """Stands where the generator goes, to test the pixel plumbing around it exactly."""

    cfg = GeneratorConfig()

    def forward(self, x):
        return x


class ListSource:
    """The smallest source run_loop takes: the frames a test made, in order."""

    def __init__(self, images):
        self.images = list(images)
        self.dropped = 0
        first = next((i for i in self.images if isinstance(i, np.ndarray) and i.ndim > 1),
                     np.zeros((1, 1, 3), np.uint8))
        self.info = SourceInfo("test frames", first.shape[1], first.shape[0], 30.0)
        self._i = 0
        self.closed = False

    def read(self, timeout=None):
        if self._i >= len(self.images):
            return None
        frame = Frame(self.images[self._i], self._i, time.perf_counter())
        self._i += 1
        return frame

    def close(self):
        self.closed = True


class RecordingSink(Sink):
    """Keeps what it is sent (copies: the pipeline may reuse buffers)."""

    name = "recording"

    def __init__(self, delay: float = 0.0):
        self.frames: list[np.ndarray] = []
        self.delay = delay

    def send(self, frame):
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
        self.frames.append(frame.copy())
        if self.delay:
            time.sleep(self.delay)


def read_all(path) -> list[np.ndarray]:
    """Every frame of a video."""
    return read_clip(path, limit=None)


def sigint_default() -> None:
    """In a child before it starts: Ctrl-C at its default, whatever this process inherited
    (a background job of a script starts with SIGINT ignored, and so would its children)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def random_generator(cfg: GeneratorConfig = SMALL_CFG, seed: int = 0) -> Generator:
    """Random weights everywhere, norms included (fresh norms are all 1s and 0s, which the
    ONNX exporter folds into shared constants)."""
    torch.manual_seed(seed)
    g = Generator(cfg)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return g.eval()


@pytest.fixture(scope="session")
def styles_dir(tmp_path_factory) -> Path:
    """A styles folder with two random-weight styles and an identity style."""
    d = tmp_path_factory.mktemp("styles")
    export_onnx(random_generator(seed=1), d / "rand-a.onnx", style="rand-a", description="a")
    export_onnx(random_generator(seed=2), d / "rand-b.onnx", style="rand-b", description="b")
    export_onnx(Identity(), d / "identity.onnx", style="identity", description="no change")
    return d


@pytest.fixture()
def frame_641x479() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (479, 641, 3), dtype=np.uint8)
