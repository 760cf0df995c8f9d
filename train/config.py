"""Training configuration: one frozen dataclass, saved into every checkpoint and model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONTENT = _REPO.parent / "shared" / "data" / "content"


@dataclass(frozen=True)
class TrainConfig:
    name: str  # style name; the model is written as <out_dir>/<name>.onnx
    # what to imitate: exactly one of the two
    style_image: str | None = None  # perceptual mode: Gram-matrix losses against this painting
    teacher: str | None = None  # teacher mode: a filter from train/teachers (cartoon, sketch)
    description: str = ""  # one line shown by `livestyle styles`
    content_dir: str = str(DEFAULT_CONTENT)  # any folder of photos, searched recursively
    size: str = "fast"  # generator size from livestyle.generator.SIZES
    # data
    crop: int = 192  # training crop side in pixels
    batch: int = 4
    style_side: int = 384  # the style image is resized to this long side for its Gram targets
    # optimisation
    steps: int = 1500
    lr: float = 2e-3
    lr_final: float = 2e-4  # cosine decay to this
    seed: int = 0
    # loss weights (each loss is normalised by its target's energy, so these are comparable)
    style_weight: float = 1.0
    content_weight: float = 0.7
    tv_weight: float = 0.2
    stability_weight: float = 1.0  # flow-free temporal stability: perturbed input, same output
    l1_weight: float = 1.0  # teacher mode: pixel L1 against the teacher
    edge_weight: float = 2.0  # teacher mode: L1 on image gradients (flat areas, sharp outlines)
    adversarial_weight: float = 0.0  # teacher mode: PatchGAN loss; 0 turns the critic off
    loss_net: str = "efficientnet-lite0"  # or a path to a torchvision-layout VGG16/19 .pth
    # bookkeeping
    out_dir: str = str(_REPO / "engines")  # where the exported ONNX goes
    run_dir: str = "runs"  # checkpoints and sample grids: <run_dir>/<name>/
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 100
    threads: int = 0  # torch intra-op threads; 0 = torch's default

    def __post_init__(self):
        if (self.style_image is None) == (self.teacher is None):
            raise ValueError("give exactly one of --style-image (a painting) or --teacher (a filter)")
        if self.style_image is not None and not Path(self.style_image).is_file():
            raise ValueError(f"style image not found: {self.style_image}")
        if not Path(self.content_dir).is_dir():
            raise ValueError(
                f"content folder not found: {self.content_dir}; pass --content-dir with photos"
            )
        if self.crop < 32 or self.crop % 4:
            raise ValueError(f"--crop must be a multiple of 4 and at least 32, got {self.crop}")
        if self.steps < 1 or self.batch < 1:
            raise ValueError("--steps and --batch must be positive")
        # names that would otherwise fail later, inside train(), as a traceback
        from train.teachers import TEACHERS

        if self.teacher is not None and self.teacher not in TEACHERS:
            raise ValueError(f"unknown teacher {self.teacher!r}; known teachers: "
                             f"{', '.join(sorted(TEACHERS))}")
        from livestyle.generator import SIZES  # imports torch, which training needs next anyway

        if self.size not in SIZES:
            raise ValueError(f"unknown --size {self.size!r}; known sizes: {', '.join(SIZES)}")
        from train.data import find_images

        find_images(self.content_dir)  # ValueError naming the folder if it holds no photo

    @property
    def mode(self) -> str:
        return "teacher" if self.teacher else "perceptual"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def with_overrides(cfg: TrainConfig, **changes) -> TrainConfig:
    d = cfg.to_dict()
    d.update(changes)
    return TrainConfig(**d)

