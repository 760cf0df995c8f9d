"""Losses. The style and content losses take a normalisation (`norm`):

- "size" (the default): each layer's squared error is divided by its target's number of
  elements (a plain mean), as the loss-network pilot did. Layers then weigh by how strongly
  the loss network responds in them, and the painting's strokes win over a tint.
- "energy": each layer's squared error is also divided by its target's mean square, so every
  layer and both losses start near 1. It balances the layers evenly, and at style weights 1-3
  it trained tints (../shared/notes/paint-pilot.md); kept to reproduce those styles.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def gram(feat: torch.Tensor) -> torch.Tensor:
    n, c, h, w = feat.shape
    f = feat.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (h * w)


NORMS = ("size", "energy")


def relative_mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(x, target) / (target.pow(2).mean() + 1e-8)


def _mse(x: torch.Tensor, target: torch.Tensor, norm: str) -> torch.Tensor:
    return relative_mse(x, target) if norm == "energy" else F.mse_loss(x, target)


def style_loss(feats: list[torch.Tensor], target_grams: list[torch.Tensor],
               style: torch.Tensor | None = None,
               multipliers: torch.Tensor | None = None, norm: str = "size") -> torch.Tensor:
    """Gram-matrix loss; `target_grams` holds per layer (n_styles, C, C) and `style` (N,)
    picks each sample's painting (None: style 0 for all). With norm "energy" each sample is
    divided by its painting's Gram energy, so paintings with strong and weak features weigh
    alike; `multipliers` (n_styles,) then weighs each sample by its painting's multiplier."""
    total = 0.0
    for f, g in zip(feats, target_grams):
        t = g[style] if style is not None else g[:1].expand(f.shape[0], -1, -1)
        err = (gram(f) - t).pow(2).mean(dim=(1, 2))
        if norm == "energy":
            err = err / (t.pow(2).mean(dim=(1, 2)) + 1e-8)
        if multipliers is not None:
            err = err * multipliers[style if style is not None else 0]
        total = total + err.mean()
    return total / len(feats)


def line_loss(logit: torch.Tensor, cover: torch.Tensor, pos_weight: float = 3.0) -> torch.Tensor:
    """Outlines as their own output: BCE of the ink logits against the teacher's coverage
    (0-1). Lines are ~10% of the pixels and hold most of the error: positives weigh 3x."""
    w = torch.tensor(pos_weight, device=logit.device)
    return F.binary_cross_entropy_with_logits(logit, cover, pos_weight=w) * 10.0


def content_loss(feats: list[torch.Tensor], targets: list[torch.Tensor],
                 norm: str = "size") -> torch.Tensor:
    return sum(_mse(f, t, norm) for f, t in zip(feats, targets)) / len(feats)


def tv_loss(img: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbours, in units of the image range (~0.02-0.1)."""
    return ((img[..., 1:, :] - img[..., :-1, :]).abs().mean()
            + (img[..., :, 1:] - img[..., :, :-1]).abs().mean()) * 10.0


def gradient_l1(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the images' horizontal and vertical differences, x10 like the pixel L1.

    Pixel L1 alone lets a student sit near the identity (a photo is already close to its
    cartoon in L1); matching gradients asks for what makes a cartoon: flat regions (zero
    gradient) and sharp outlines (large gradient where the teacher draws one)."""
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return ((dx(y) - dx(target)).abs().mean() + (dy(y) - dy(target)).abs().mean()) * 10.0


def luma(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def luma_quantiles(x: torch.Tensor, n: int = 256) -> torch.Tensor:
    """(N, n): each image's luminance at n evenly spaced quantiles (RGB [0,1] input)."""
    sorted_luma = luma(x).flatten(1).sort(dim=1).values
    at = torch.linspace(0, sorted_luma.shape[1] - 1, n, device=x.device).round().long()
    return sorted_luma[:, at]


def tone_loss(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Each output's luminance distribution against its painting's quantiles `target` ((n,)
    or one row per sample, (N, n)): the 1-D Wasserstein distance (mean absolute gap between
    sorted values), so the light-dark contrast a painting has is paid for wherever the
    strokes fall (the Gram loss left the paintings' outputs at 55-75% of their painting's
    luminance SD: docs/paintings.md). x10 like the pixel L1."""
    return (luma_quantiles(y, target.shape[-1]) - target).abs().mean() * 10.0


def skin_mask(x: torch.Tensor) -> torch.Tensor:
    """Soft mask (N,1,H,W) of skin-coloured pixels of RGB [0,1] images: Cr 133-173, Cb 77-127
    of 255 (the classic YCrCb box of Chai and Ngan 1999), with soft edges, blurred by 5 px."""
    y = luma(x)
    cr, cb = (x[:, :1] - y) * 0.713 * 255 + 128, (x[:, 2:3] - y) * 0.564 * 255 + 128
    inside = lambda v, lo, hi: torch.sigmoid((v - lo) / 2) * torch.sigmoid((hi - v) / 2)  # noqa: E731
    m = inside(cr, 133, 173) * inside(cb, 77, 127) * torch.sigmoid((y * 255 - 40) / 8)
    return F.avg_pool2d(m, 5, 1, 2, count_include_pad=False)


def shading_loss(y: torch.Tensor, x: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Light and shade of the output follow the photo's where `where` (N,1,H,W in [0,1]) says.

    Luminance gradients are compared, weighted by `where`, at full and at a quarter
    resolution: strokes drawn across a face (texture the photo lacks) and features washed out
    of it (eyes, nose and mouth the photo has) both cost; colour is free. Averaged over all
    pixels, so a crop without any of `where` adds nothing. x10 like the pixel L1."""
    full = (luma(y), luma(x), where)
    total = 0.0
    for k in (1, 4):
        a, b, w = (F.avg_pool2d(t, k) for t in full)
        dx = (a[..., :, 1:] - a[..., :, :-1]) - (b[..., :, 1:] - b[..., :, :-1])
        dy = (a[..., 1:, :] - a[..., :-1, :]) - (b[..., 1:, :] - b[..., :-1, :])
        total = total + (w[..., :, 1:] * dx.abs()).mean() + (w[..., 1:, :] * dy.abs()).mean()
    return total * 10.0


def skin_shading_loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """shading_loss where the photo shows skin colours (beige walls and wood too)."""
    return shading_loss(y, x, skin_mask(x))


def perturb(x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, int, int]:
    """A copy of `x` as the next video frame might show it: sensor noise (sigma 1-4/255),
    a small brightness change (+-3%) and a shift of 0-3 px. Returns (copy, dy, dx)."""
    n = x.shape[0]
    sigma = (torch.rand(n, 1, 1, 1, generator=gen) * 3 + 1) / 255.0
    gain = 1 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.06
    noisy = (x * gain + torch.randn(x.shape, generator=gen) * sigma).clamp(0, 1)
    dy, dx = (int(v) for v in torch.randint(-3, 4, (2,), generator=gen))
    return torch.roll(noisy, shifts=(dy, dx), dims=(2, 3)), dy, dx


def stability_loss(out: torch.Tensor, out_perturbed: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Outputs for a frame and its perturbed copy must agree once re-aligned.

    Compared away from the borders, where the roll wrapped pixels around."""
    aligned = torch.roll(out_perturbed, shifts=(-dy, -dx), dims=(2, 3))
    m = 8
    return F.mse_loss(aligned[..., m:-m, m:-m], out[..., m:-m, m:-m]) * 100.0


class PatchDiscriminator(nn.Module):
    """A small PatchGAN critic (Isola et al. 2017): one real/fake logit per ~22 px patch."""

    def __init__(self, width: int = 32):
        super().__init__()
        layers, cin = [], 3
        for i, cout in enumerate((width, width * 2, width * 4)):
            layers += [nn.Conv2d(cin, cout, 4, 2 if i < 2 else 1, 1)]
            if i:
                layers += [nn.InstanceNorm2d(cout, affine=True)]
            layers += [nn.LeakyReLU(0.2, inplace=True)]
            cin = cout
        layers += [nn.Conv2d(cin, 1, 4, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x * 2 - 1)


def adversarial_losses(critic: nn.Module, fake: torch.Tensor, real: torch.Tensor):
    """Least-squares GAN: (generator loss, critic loss)."""
    g = (critic(fake) - 1).pow(2).mean()
    d = (critic(real) - 1).pow(2).mean() + critic(fake.detach()).pow(2).mean()
    return g, d * 0.5
