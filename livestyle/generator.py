"""The feed-forward generator, shared by the runtime (ONNX export) and the trainer.

Johnson et al. 2016 in layout: a stem conv at full resolution, two stride-2 convs, residual
blocks at 1/4 resolution, then nearest-upsample + conv back up (no transposed convs, so no
checkerboard), instance norm, reflection padding; plus optional U-Net style skips. Width, depth and whether the inner convs
are depthwise-separable are configuration, so one class gives both a CPU-real-time size and
a heavier GPU size. torch is imported only here and in train/.

Tensor convention inside the network: float32 NCHW, RGB, range [0, 1].
`PixelWrapper` puts the pixel conversions into the graph: uint8 BGR NHWC in and out, so the
runtimes do no per-pixel work in Python.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class GeneratorConfig:
    channels: tuple[int, int, int] = (12, 24, 48)  # widths at full, 1/2 and 1/4 resolution
    n_res: int = 4  # residual blocks at 1/4 resolution
    separable: bool = True  # depthwise-separable inner convs: ~10x fewer MACs per pixel
    stem_kernel: int = 3  # 9 in the original paper; 3 is ~9x cheaper at full resolution
    skips: bool = True  # add the down path's features to the up path (U-Net style): fine detail
    # no longer has to squeeze through 1/4 resolution, so faces stay sharp; costs two adds
    residual: bool = False  # output = input + network: for filters that keep the photo's colours
    # (instance norm discards absolute colour, which a colour-keeping filter must reproduce)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        return cls(**d)


# Named sizes. "fast" is the CPU-real-time size (3.1 KMAC/px); "tiny" is for slower CPUs;
# "quality" suits a GPU; "johnson" is the
# classic network from pytorch/examples fast_neural_style, kept as the benchmark reference.
SIZES: dict[str, GeneratorConfig] = {
    "fast": GeneratorConfig(),
    "tiny": GeneratorConfig(channels=(8, 16, 32)),
    "quality": GeneratorConfig(channels=(16, 32, 64), n_res=5, separable=False),
    "johnson": GeneratorConfig(channels=(32, 64, 128), n_res=5, separable=False, stem_kernel=9,
                               skips=False),
}


def _conv(cin: int, cout: int, k: int, stride: int = 1, separable: bool = False) -> nn.Module:
    """Reflection-padded conv; depthwise-separable when asked and when it saves work."""
    pad = nn.ReflectionPad2d(k // 2)
    if separable and cin > 3:
        return nn.Sequential(
            pad,
            nn.Conv2d(cin, cin, k, stride, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1),
        )
    return nn.Sequential(pad, nn.Conv2d(cin, cout, k, stride))


def _norm(c: int) -> nn.Module:
    return nn.InstanceNorm2d(c, affine=True)


class _Residual(nn.Module):
    def __init__(self, c: int, separable: bool):
        super().__init__()
        self.body = nn.Sequential(
            _conv(c, c, 3, separable=separable), _norm(c), nn.ReLU(inplace=True),
            _conv(c, c, 3, separable=separable), _norm(c),
        )

    def forward(self, x):
        return x + self.body(x)


class _Up(nn.Module):
    """Nearest-neighbour upsample then conv: avoids the checkerboard of transposed convs."""

    def __init__(self, cin: int, cout: int, separable: bool):
        super().__init__()
        self.conv = _conv(cin, cout, 3, separable=separable)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Generator(nn.Module):
    """RGB float [0,1] NCHW -> RGB float NCHW (unclamped; roughly [0,1]).

    Any H and W work: odd sizes are padded by reflection to a multiple of 4 and the output
    is cropped back, so the output always has the input's size.
    """

    def __init__(self, cfg: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.cfg = cfg
        c1, c2, c3 = cfg.channels
        sep = cfg.separable
        act = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.stem = nn.Sequential(_conv(3, c1, cfg.stem_kernel), _norm(c1), act())
        self.down2 = nn.Sequential(_conv(c1, c2, 3, stride=2, separable=sep), _norm(c2), act())
        self.down4 = nn.Sequential(_conv(c2, c3, 3, stride=2, separable=sep), _norm(c3), act())
        self.res = nn.Sequential(*[_Residual(c3, sep) for _ in range(cfg.n_res)])
        self.up2 = nn.Sequential(_Up(c3, c2, sep), _norm(c2), act())
        self.up1 = nn.Sequential(_Up(c2, c1, sep), _norm(c1), act())
        self.out = _conv(c1, 3, cfg.stem_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        # unconditional (a zero pad is free) so that ONNX export traces it for every size;
        # replicate, not reflect: reflection needs the pad to be smaller than the side
        x = F.pad(x, (0, (-w) % 4, 0, (-h) % 4), mode="replicate")
        f1 = self.stem(x)
        f2 = self.down2(f1)
        y = self.up2(self.res(self.down4(f2)))
        if self.cfg.skips:
            y = y + f2
        y = self.up1(y)
        if self.cfg.skips:
            y = y + f1
        y = self.out(y)[..., :h, :w]
        return y + x[..., :h, :w] if self.cfg.residual else y


def macs_per_pixel(cfg: GeneratorConfig) -> int:
    """Multiply-accumulates per output pixel, counted from the layer shapes."""
    c1, c2, c3 = cfg.channels
    k = cfg.stem_kernel

    def conv(cin, cout, kk, area, sep):
        if sep and cin > 3:
            return (cin * kk * kk + cin * cout) * area
        return cin * cout * kk * kk * area

    total = conv(3, c1, k, 1, False)
    total += conv(c1, c2, 3, 1 / 4, cfg.separable) + conv(c2, c3, 3, 1 / 16, cfg.separable)
    total += 2 * cfg.n_res * conv(c3, c3, 3, 1 / 16, cfg.separable)
    total += conv(c3, c2, 3, 1 / 4, cfg.separable) + conv(c2, c1, 3, 1, cfg.separable)
    total += conv(c1, 3, k, 1, False)
    return int(round(total))


class PixelWrapper(nn.Module):
    """uint8 BGR NHWC -> generator -> uint8 BGR NHWC, for export: the runtime's whole job."""

    def __init__(self, generator: Generator):
        super().__init__()
        self.generator = generator

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        x = frame.permute(0, 3, 1, 2).flip(1).float() * (1.0 / 255.0)
        y = self.generator(x).flip(1).permute(0, 2, 3, 1)
        return (y * 255.0 + 0.5).clamp(0.0, 255.0).to(torch.uint8)
