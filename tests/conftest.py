"""Shared fixtures: small generators exported by the tests themselves, and real shared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from livestyle.generator import Generator, GeneratorConfig
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


def read_all(path) -> list[np.ndarray]:
    """Every frame of a video."""
    return read_clip(path, limit=None)


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
