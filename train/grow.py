"""Grow a trained toon head wider and deeper without changing what it draws.

A cartoon student's outlines are decided in its full-resolution head (generator.py). To give
that head more room without starting over, the trained network is copied into one whose head
has more channels and layers: the old channels keep their weights, a new hidden layer starts
as the identity on them (exact: it follows a ReLU, so its input is never negative), and the new
channels start small with zero weight into the output. The grown network draws exactly what
the trained one drew; training then puts the new channels to use.
"""

from __future__ import annotations

import dataclasses

import torch

from livestyle.generator import Generator, GeneratorConfig


def can_grow(small: GeneratorConfig, big: GeneratorConfig) -> bool:
    """Whether `small` grows into `big`: the same network except a wider/deeper toon head."""
    same = dataclasses.replace(small, head_width=big.head_width, head_depth=big.head_depth)
    return (small.head == "toon" and same == big and small.head_depth == 2
            and big.head_width >= small.head_width and big.head_depth >= 2
            and small != big)


@torch.no_grad()
def grow(big: Generator, small_cfg: GeneratorConfig, weights: dict[str, torch.Tensor],
         seed: int = 0) -> None:
    """Load `weights` (a `small_cfg` network) into `big`, growing its head (can_grow)."""
    if not can_grow(small_cfg, big.cfg):
        raise ValueError(f"cannot grow {small_cfg} into {big.cfg}")
    missing, unexpected = big.load_state_dict(
        {k: v for k, v in weights.items() if not k.startswith("out.")}, strict=False)
    if unexpected or any(not k.startswith("out.") for k in missing):
        raise ValueError(f"the weights are not a {small_cfg} network: missing "
                         f"{[k for k in missing if not k.startswith('out.')]}, unexpected {unexpected}")
    g = torch.Generator().manual_seed(seed)
    w0 = small_cfg.head_width
    convs = [m[-1] for m in big.out if isinstance(m, torch.nn.Sequential)]
    first, hidden, last = convs[0], convs[1:-1], convs[-1]

    def small_noise(t: torch.Tensor) -> torch.Tensor:
        return torch.randn(t.shape, generator=g) * (0.5 / t[0].numel()) ** 0.5

    first.weight.copy_(small_noise(first.weight))
    first.bias.zero_()
    first.weight[:w0] = weights["out.0.1.weight"]
    first.bias[:w0] = weights["out.0.1.bias"]
    for conv in hidden:
        conv.weight.copy_(small_noise(conv.weight))
        conv.weight[:w0] = 0.0  # the old channels: exactly themselves...
        conv.weight[:w0, :w0, 1, 1] = torch.eye(w0)
        conv.bias.zero_()
    last.weight.zero_()  # ...and the new ones add nothing until training uses them
    last.weight[:, :w0] = weights["out.2.1.weight"]
    last.bias.copy_(weights["out.2.1.bias"])
