"""Growing a toon head: the grown network draws exactly what the trained one drew."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from livestyle.generator import SIZES, Generator
from train.grow import can_grow, grow


def _trained_toon() -> Generator:
    torch.manual_seed(0)
    g = Generator(SIZES["toon"])
    with torch.no_grad():  # every weight non-trivial, the head's biases included
        for p in g.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return g.eval()


@pytest.mark.parametrize("width, depth", [(16, 3), (8, 3), (12, 2), (16, 4)])
def test_the_grown_head_draws_the_same_then_can_learn(width, depth):
    small = _trained_toon()
    big = Generator(dataclasses.replace(SIZES["toon"], head_width=width, head_depth=depth))
    grow(big, small.cfg, small.state_dict())
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        want, got = small(x, parts=True), big.eval()(x, parts=True)
    for a, b in zip(want, got):
        assert torch.allclose(a, b, atol=1e-5)
    # the new channels are live: a loss on the output reaches their weights
    big.train()
    big(x).square().mean().backward()
    last = big.out[-1][-1].weight.grad
    if width > 8:
        assert last[:, 8:].abs().sum() > 0


def test_only_a_toon_head_grows():
    toon = SIZES["toon"]
    assert can_grow(toon, SIZES["toon-wide"])
    assert not can_grow(toon, toon)  # nothing to grow: an ordinary --init-from
    assert not can_grow(SIZES["toon-wide"], toon)  # shrinking would change the drawing
    assert not can_grow(toon, dataclasses.replace(SIZES["toon-wide"], n_res=3))
    assert not can_grow(SIZES["paint"], dataclasses.replace(SIZES["paint"], head_width=16))
    with pytest.raises(ValueError, match="cannot grow"):
        grow(Generator(toon), SIZES["paint"], {})
    trained = _trained_toon().state_dict()
    del trained["res.0.body.0.1.weight"]
    with pytest.raises(ValueError, match="missing"):
        grow(Generator(SIZES["toon-wide"]), toon, trained)
