"""Grow a trained toon head wider and deeper, or give it the edge signal, without changing
what it draws.

A cartoon student's outlines are decided in its full-resolution head (generator.py). To give
that head more room without starting over, the trained network is copied into one whose head
has more channels and layers, or also sees the frame's difference of Gaussians
(GeneratorConfig.head_edges): the old channels keep their weights, a new hidden layer starts as
the identity on them (exact: it follows a ReLU, so its input is never negative), a new input
starts with zero weight, and the new channels start small with zero weight into the output.
The grown network draws exactly what the trained one drew; training then puts the new
channels to use.
"""

from __future__ import annotations

import dataclasses

import torch

from livestyle.generator import Generator, GeneratorConfig

HEAD = ("head_width", "head_depth", "head_edges")


def can_grow(small: GeneratorConfig, big: GeneratorConfig) -> bool:
    """Whether `small` grows into `big`: the same network except a wider/deeper toon head, or
    one that also sees the edge signal."""
    same = dataclasses.replace(small, **{k: getattr(big, k) for k in HEAD})
    return (small.head == "toon" and same == big and small != big
            and all(getattr(big, k) >= getattr(small, k) for k in HEAD))


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
    w0, d0 = small_cfg.head_width, small_cfg.head_depth
    convs = [m[-1] for m in big.out if isinstance(m, torch.nn.Sequential)]
    first, hidden, last = convs[0], convs[1:-1], convs[-1]
    old = [(weights[f"out.{2 * i}.1.weight"], weights[f"out.{2 * i}.1.bias"]) for i in range(d0)]

    def small_noise(t: torch.Tensor) -> torch.Tensor:
        return torch.randn(t.shape, generator=g) * (0.5 / t[0].numel()) ** 0.5

    first.weight.copy_(small_noise(first.weight))
    first.bias.zero_()
    first.weight[:w0] = 0.0  # an input the old head did not have (the edges) starts unused
    first.weight[:w0, :old[0][0].shape[1]] = old[0][0]
    first.bias[:w0] = old[0][1]
    for j, conv in enumerate(hidden):
        conv.weight.copy_(small_noise(conv.weight))
        conv.weight[:w0] = 0.0  # the old channels: exactly themselves...
        conv.bias.zero_()
        if j < d0 - 2:  # ...through the old hidden layers, then identities
            conv.weight[:w0, :w0], conv.bias[:w0] = old[j + 1]
        else:
            conv.weight[:w0, :w0, 1, 1] = torch.eye(w0)
    last.weight.zero_()  # ...and the new ones add nothing until training uses them
    last.weight[:, :w0] = old[-1][0]
    last.bias.copy_(old[-1][1])
