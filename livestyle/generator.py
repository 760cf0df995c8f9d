"""The feed-forward generator, shared by the runtime (ONNX export) and the trainer.

Johnson et al. 2016 in layout: a stem conv, two (or three) stride-2 convs, residual blocks at
the lowest resolution, then nearest-upsample + conv back up (no transposed convs, so no checkerboard),
instance norm, reflection padding; plus optional U-Net style skips. Width, depth, whether the
inner convs are depthwise-separable and whether the stem is strided (the trunk then runs at
half resolution and a learned upsample + conv draws the full-resolution output) are
configuration, so one class gives the CPU-real-time sizes and a heavier GPU size.

Two heads: "rgb" (the image) and "toon" (a base colour image and an outline coverage map,
composited in the graph like the cartoon teacher inks its lines: base * (1 - 0.88 * cover)).
Conditional instance norm (Dumoulin et al. 2017) lets one network learn several paintings;
`single_style` cuts one of them out as an ordinary network for export.
torch is imported only here and in train/.

Tensor convention inside the network: float32 NCHW, RGB, range [0, 1].
`PixelWrapper` puts the pixel conversions into the graph: uint8 BGR NHWC in and out, so the
runtimes do no per-pixel work in Python.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

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
    stem_stride: int = 1  # 2: the trunk runs at half resolution (4x cheaper) and the last layer
    # upsamples (nearest + conv, learned) back to the input's size, keeping fine texture
    norm: bool = True  # instance norm; a colour-keeping student does better without
    head: str = "rgb"  # "rgb", or "toon": base colours + outline coverage, inked in the graph
    n_styles: int = 1  # >1: conditional instance norm, one set of scales/shifts per style
    head_width: int = 8  # toon head: channels of its full-resolution hidden layers...
    head_depth: int = 2  # ...and its number of 3x3 convs (the outlines are decided there)
    out_kernel: int = 0  # the full-resolution trunk's output conv; 0: the stem's kernel
    trunk_down: int = 2  # stride-2 convs after the stem: 3 puts the residual blocks at 1/8
    # resolution (each sees twice as far, for a quarter of their cost)

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
    # full 3x3 convs on a half-resolution trunk: on this CPU full convs at low resolution
    # are cheaper per frame than depthwise ones at full resolution, and they draw strokes
    "paint": GeneratorConfig(channels=(16, 32, 64), n_res=3, separable=False, skips=False,
                             stem_stride=2),
    "toon": GeneratorConfig(channels=(16, 32, 64), n_res=2, separable=False, stem_stride=2,
                            residual=True, norm=False, head="toon"),
    # the cartoon at its 512-px native side: 0.64x the pixels of 640x480 pay for a deeper,
    # wider full-resolution head, where the outlines are decided
    "toon-wide": GeneratorConfig(channels=(16, 32, 64), n_res=2, separable=False,
                                 stem_stride=2, residual=True, norm=False, head="toon",
                                 head_width=16, head_depth=3),
    # the paintings: the loss-network pilot's network (full-resolution stem and output, 9x9
    # stem, 29.7 KMAC/px). Too slow for a 640x480 frame on a CPU (51 ms), it runs at a
    # painting's 384-px native side (384x288: 18 ms), where it learned its strokes
    "brush": GeneratorConfig(channels=(16, 32, 64), n_res=3, separable=False, stem_kernel=9,
                             skips=False, out_kernel=3),
    # brush with its residual blocks at 1/8 resolution, five of them: shapes as large as
    # half the frame for 24.5 KMAC/px
    "brush-wide": GeneratorConfig(channels=(16, 32, 64), n_res=5, separable=False,
                                  stem_kernel=9, skips=False, out_kernel=3, trunk_down=3),
    # brush at 1.5x the channels (63.5 KMAC/px, 2.1x its MACs): room to tell a face from the
    # flat planes of a painting like udnie, which brush-wide painted over small faces
    "brush-large": GeneratorConfig(channels=(24, 48, 96), n_res=3, separable=False,
                                   stem_kernel=9, skips=False, out_kernel=3),
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


class CondInstanceNorm(nn.Module):
    """Instance norm with one (scale, shift) row per style; `style` (N,) picks each sample's."""

    def __init__(self, c: int, n_styles: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_styles, c))
        self.bias = nn.Parameter(torch.zeros(n_styles, c))
        self.style: torch.Tensor | None = None  # set by Generator.forward

    def forward(self, x):
        w, b = self.weight[self.style], self.bias[self.style]
        return F.instance_norm(x) * w[:, :, None, None] + b[:, :, None, None]


def _norm(c: int, cfg: "GeneratorConfig") -> nn.Module:
    if not cfg.norm:
        return nn.Identity()
    if cfg.n_styles > 1:
        return CondInstanceNorm(c, cfg.n_styles)
    return nn.InstanceNorm2d(c, affine=True)


class _Residual(nn.Module):
    def __init__(self, c: int, cfg: "GeneratorConfig"):
        super().__init__()
        sep = cfg.separable
        self.body = nn.Sequential(
            _conv(c, c, 3, separable=sep), _norm(c, cfg), nn.ReLU(inplace=True),
            _conv(c, c, 3, separable=sep), _norm(c, cfg),
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

    Any H and W work: sizes are padded (replicate) to a multiple of the network's stride and
    the output is cropped back, so the output always has the input's size.
    """

    INK = 0.88  # the cartoon teacher's ink: a line darkens its colour to 12%

    def __init__(self, cfg: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.cfg = cfg
        c1, c2, c3 = cfg.channels
        sep = cfg.separable
        act = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.stem = nn.Sequential(_conv(3, c1, cfg.stem_kernel, stride=cfg.stem_stride),
                                  _norm(c1, cfg), act())
        self.down2 = nn.Sequential(_conv(c1, c2, 3, stride=2, separable=sep), _norm(c2, cfg), act())
        self.down4 = nn.Sequential(_conv(c2, c3, 3, stride=2, separable=sep), _norm(c3, cfg), act())
        if cfg.trunk_down not in (2, 3):
            raise ValueError(f"trunk_down is {cfg.trunk_down}: 2 or 3")
        if cfg.trunk_down == 3:
            self.down8 = nn.Sequential(_conv(c3, c3, 3, stride=2, separable=sep), _norm(c3, cfg),
                                       act())
            self.up4 = nn.Sequential(_Up(c3, c3, sep), _norm(c3, cfg), act())
        self.res = nn.Sequential(*[_Residual(c3, cfg) for _ in range(cfg.n_res)])
        self.up2 = nn.Sequential(_Up(c3, c2, sep), _norm(c2, cfg), act())
        self.up1 = nn.Sequential(_Up(c2, c1, sep), _norm(c1, cfg), act())
        n_out = 4 if cfg.head == "toon" else 3
        if cfg.stem_stride == 1:
            self.out = _conv(c1, n_out, cfg.out_kernel or cfg.stem_kernel)
        elif cfg.head == "toon":
            # outlines must sit on the right full-resolution pixel: the head sees the frame
            hw = cfg.head_width
            hidden = [m for _ in range(cfg.head_depth - 2) for m in (_conv(hw, hw, 3), act())]
            self.out = nn.Sequential(_conv(c1 + 3, hw, 3), act(), *hidden, _conv(hw, n_out, 3))
        else:
            self.out = _conv(c1, n_out, 3)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None,
                parts: bool = False):
        """`style`: (N,) style indices for a multi-style network. `parts` (toon head): also
        return the base colours and the outline logits, which training supervises."""
        if self.cfg.n_styles > 1:
            if style is None:
                raise ValueError("a multi-style generator needs `style` indices")
            for m in self.modules():
                if isinstance(m, CondInstanceNorm):
                    m.style = style
        h, w = x.shape[-2], x.shape[-1]
        m = 2**self.cfg.trunk_down * self.cfg.stem_stride
        # unconditional (a zero pad is free) so that ONNX export traces it for every size;
        # replicate, not reflect: reflection needs the pad to be smaller than the side
        x = F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="replicate")
        f1 = self.stem(x)
        f2 = self.down2(f1)
        f4 = self.down4(f2)
        if self.cfg.trunk_down == 3:
            y = self.up4(self.res(self.down8(f4)))
            if self.cfg.skips:
                y = y + f4
        else:
            y = self.res(f4)
        y = self.up2(y)
        if self.cfg.skips:
            y = y + f2
        y = self.up1(y)
        if self.cfg.skips:
            y = y + f1
        if self.cfg.stem_stride > 1:
            y = F.interpolate(y, scale_factor=float(self.cfg.stem_stride), mode="nearest")
            if self.cfg.head == "toon":
                y = torch.cat([y, x], 1)
        y = self.out(y)[..., :h, :w]
        x = x[..., :h, :w]
        if self.cfg.head != "toon":
            return y + x if self.cfg.residual else y
        base, logit = y[:, :3], y[:, 3:]
        if self.cfg.residual:
            base = base + x
        out = base * (1.0 - self.INK * torch.sigmoid(logit))
        return (out, base, logit) if parts else out

    def single_style(self, i: int) -> "Generator":
        """Style `i` of a multi-style network as an ordinary single-style one (for export)."""
        one = Generator(replace(self.cfg, n_styles=1))
        state = {k: (v[i] if k in self._cond_keys() else v) for k, v in self.state_dict().items()}
        one.load_state_dict(state)
        return one

    def _cond_keys(self) -> set[str]:
        return {f"{name}.{p}" for name, m in self.named_modules()
                if isinstance(m, CondInstanceNorm) for p in ("weight", "bias")}


def macs_per_pixel(cfg: GeneratorConfig) -> int:
    """Multiply-accumulates per input pixel, counted from the layer shapes."""
    c1, c2, c3 = cfg.channels
    k = cfg.stem_kernel
    a = 1 / cfg.stem_stride**2  # the trunk's area relative to the frame

    def conv(cin, cout, kk, area, sep):
        if sep and cin > 3:
            return (cin * kk * kk + cin * cout) * area
        return cin * cout * kk * kk * area

    n_out = 4 if cfg.head == "toon" else 3
    total = conv(3, c1, k, a, False)
    total += conv(c1, c2, 3, a / 4, cfg.separable) + conv(c2, c3, 3, a / 16, cfg.separable)
    deep = a / 64 if cfg.trunk_down == 3 else a / 16  # where the residual blocks run
    total += 2 * cfg.n_res * conv(c3, c3, 3, deep, cfg.separable)
    if cfg.trunk_down == 3:
        total += conv(c3, c3, 3, a / 64, cfg.separable) + conv(c3, c3, 3, a / 16, cfg.separable)
    total += conv(c3, c2, 3, a / 4, cfg.separable) + conv(c2, c1, 3, a, cfg.separable)
    if cfg.stem_stride == 1:
        total += conv(c1, n_out, cfg.out_kernel or k, 1, False)
    elif cfg.head == "toon":
        hw = cfg.head_width
        total += conv(c1 + 3, hw, 3, 1, False) + conv(hw, n_out, 3, 1, False)
        total += (cfg.head_depth - 2) * conv(hw, hw, 3, 1, False)
    else:
        total += conv(c1, n_out, 3, 1, False)
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
