"""The generator's sizes: any frame size comes back at its size, and the MACs the styles
record (generator.macs_per_pixel) are the ones its convolutions do."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from torch import nn

from livestyle import backends
from livestyle.generator import SIZES, Generator, macs_per_pixel


def _counted_macs(g: Generator, h: int, w: int) -> int:
    """Multiply-accumulates of every convolution on an h x w frame, counted by hooks."""
    total = 0

    def hook(m: nn.Conv2d, _inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        total += out.numel() * k

    handles = [m.register_forward_hook(hook) for m in g.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        g(torch.rand(1, 3, h, w))
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.parametrize("name", sorted(SIZES))
def test_recorded_macs_are_counted_ones(name):
    h, w = 64, 96  # a multiple of every size's stride: no padding to count
    got = _counted_macs(Generator(SIZES[name]).eval(), h, w) / (h * w)
    assert got == pytest.approx(macs_per_pixel(SIZES[name]), rel=0.01)


def _min_side(cfg) -> int:
    """What the runtime enlarges smaller frames to (backends.min_frame_side)."""
    model = onnx.ModelProto()
    meta = model.metadata_props.add()
    meta.key, meta.value = "livestyle.generator", json.dumps(cfg.to_dict())
    return backends.min_frame_side(model)


@pytest.mark.parametrize("name", ["brush", "brush-wide", "toon", "paint"])
@pytest.mark.parametrize("h,w", [(17, 23), (289, 383), ("min", "min")])
def test_any_frame_size_comes_back_at_its_size(name, h, w):
    """Any size from the smallest one the runtime lets through (it enlarges smaller frames)."""
    if h == "min":
        h = w = _min_side(SIZES[name])
    with torch.no_grad():
        out = Generator(SIZES[name]).eval()(torch.rand(1, 3, h, w))
    assert out.shape == (1, 3, h, w) and torch.isfinite(out).all()


def test_min_side_is_the_smallest_that_runs():
    """Half the minimum side would leave 1 px where the deepest maps are padded and normed."""
    for name in ("brush-wide", "toon"):
        side = _min_side(SIZES[name]) // 2
        with torch.no_grad(), pytest.raises((ValueError, RuntimeError)):
            Generator(SIZES[name]).eval()(torch.rand(1, 3, side, side))


def test_trunk_depth_is_checked():
    import dataclasses

    with pytest.raises(ValueError, match="trunk_down"):
        Generator(dataclasses.replace(SIZES["brush"], trunk_down=4))
