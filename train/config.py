"""Training configuration: one frozen dataclass, saved into every checkpoint and model."""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONTENT = _REPO.parent / "shared" / "data" / "content"


def _opt(default, help: str):
    """A field with its --help text: the CLI is built from these, so it never drifts."""
    return field(default=default, metadata={"help": help})


# a painting's default --stability-weight (in the last quarter of its steps): the lowest
# tried that kept a user's Mondrian under 4x its clips' flicker (docs/paintings.md)
PAINTING_STABILITY = 0.3
# a painting's default --ema: exporting the moving average of its last ~100 steps lowered the
# style ratio in all five runs it was tried on, four paintings (by 0.001-0.020; docs/paintings.md)
PAINTING_EMA = 0.99


def mode_defaults(painting: bool) -> dict:
    """What the settings whose default is -1 resolve to, for a painting or a teacher."""
    return {"stability_weight": PAINTING_STABILITY if painting else 0.0,
            "ema": PAINTING_EMA if painting else 0.0}


# the loss weights: each 0 (off) or more
LOSS_WEIGHT_FIELDS = ("style_weight", "content_weight", "line_weight", "base_weight",
                      "tv_weight", "stability_weight", "l1_weight", "l2_weight", "edge_weight",
                      "adversarial_weight", "skin_weight", "face_weight", "distill_weight",
                      "coarse_style_weight", "tone_weight")


def check_names(names: str) -> None:
    """ValueError unless --name is one style name or several comma-separated ones."""
    for name in names.split(","):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
            raise ValueError(f"--name {name!r} is not a valid style name: use letters, digits, "
                             "'.', '_' and '-' (no path separators, not starting with '.')")


@dataclass(frozen=True)
class TrainConfig:
    name: str = field(metadata={"help": "style name, the model file's stem (letters, digits, "
                                        "'.', '_', '-'); several comma-separated with several "
                                        "--style-image"})
    # what to imitate: exactly one of the two
    style_image: str | None = _opt(None, "perceptual mode: a painting to imitate (Gram-matrix "
                                         "losses); several comma-separated train one network "
                                         "with conditional instance norm and export one model each")
    teacher: str | None = _opt(None, "teacher mode: a slow filter to imitate")
    description: str = _opt("", "one line shown by `livestyle styles` ('|' between several)")
    content_dir: str = _opt("", "a folder of photos (searched recursively) to train on; needed "
                                "unless the development tree's ../shared/data/content exists")
    size: str = _opt("auto", "generator size; auto: brush for paintings, toon for the cartoon "
                             "teacher, fast for other teachers; brush-wide: brush with its "
                             "residual blocks at 1/8 resolution, for paintings of large shapes; "
                             "brush-large: brush at 1.5x the channels (udnie's)")
    # data
    long_side: int = _opt(384, "photos are resized to this long side first; the style runs at "
                               "it (its native side) and is enlarged to the frame, so its strokes "
                               "and outlines look as they were learned (384: brush strokes a "
                               "viewer sees at 640x480); 0: to a short side of 1.5 crops, any size")
    native_side: int = _opt(0, "the long side the exported style runs at, if not --long-side "
                               "(e.g. 384 for photos read at a short side of 1.5 crops of 192, "
                               "--long-side 0); 0: --long-side")
    crop: int = _opt(160, "training crop side in pixels (a multiple of 4)")
    scale_jitter: float = _opt(1.25, "crops span 1 to this many crop sides before resizing")
    batch: int = _opt(4, "crops per step")
    style_side: int = _opt(614, "the painting is resized to this long side for its targets: "
                                "smaller gives larger strokes (614 gave a lower style ratio "
                                "than 384 for 10 of 12 paintings tried: docs/paintings.md)")
    # optimisation
    steps: int = _opt(650, "training steps")
    lr: float = _opt(1e-3, "Adam learning rate at the start")
    lr_final: float = _opt(1e-3, "learning rate at the end (cosine decay; the same: constant)")
    seed: int = _opt(0, "seed of every random draw (weights, crops, perturbations)")
    # loss weights (perceptual mode: see --loss-norm)
    style_weight: float = _opt(2.5, "weight of the painting's Gram-matrix loss (2.5 lowered "
                                    "the style ratio of four paintings by 0.008-0.027 against "
                                    "2, for as many faces: docs/paintings.md)")
    coarse_style_weight: float = _opt(0.5, "perceptual mode: weight of a second Gram-matrix loss, "
                                           "the output at half size against the painting at "
                                           "half --style-side: the painting's larger strokes, "
                                           "as a viewer sees a frame shown small; 0: off")
    style_weights: str = _opt("", "multi-style: a multiplier of --style-weight per painting, "
                                  "comma-separated in --name order, to strengthen the paintings "
                                  "that come out weakest (empty: 1 for all)")
    content_weight: float = _opt(0.3, "weight of the content loss (teacher mode: perceptual "
                                      "loss against the teacher; 0 skips the loss network)")
    loss_norm: str = _opt("size", "perceptual mode: 'size' divides each loss layer's squared "
                                    "error by its number of elements (the pilot's), 'energy' "
                                    "also by its target's mean square")
    style_taps: str = _opt("1,3,5,8", "EfficientNet blocks whose depthwise ReLU6 the style "
                                           "loss reads, and 'stem' for the stem's output")
    content_blocks: str = _opt("5", "EfficientNet blocks the content loss compares (3,5 keeps "
                                    "more of the photo and less of the painting)")
    line_weight: float = _opt(1.0, "toon size: BCE of the outline logits against the teacher's ink")
    base_weight: float = _opt(1.0, "toon size: L1 of the base colours against the teacher's flat "
                                   "colours")
    tv_weight: float = _opt(0.0, "total-variation weight: smooths the output, and flattens a "
                                 "painting's strokes into a tint (0.2 cost starry-night 0.044 "
                                 "of style ratio, docs/paintings.md)")
    skin_weight: float = _opt(0.3, "perceptual mode: where the photo shows skin colours, the "
                                   "output's light and shade must follow the photo's (faces keep "
                                   "their features under the strokes); 0: off")
    face_weight: float = _opt(0.0, "perceptual mode: inside the faces of --face-boxes, the "
                                   "output's light and shade must follow the photo's; unlike "
                                   "--skin-weight, walls and wood stay free; 0: off")
    tone_weight: float = _opt(0.0, "perceptual mode: each output's light-dark distribution "
                                   "(its luminance quantiles) must match the painting's: the "
                                   "painting's contrast, which the Gram loss undershoots; 0: off")
    face_boxes: str = _opt("", "the face boxes --face-weight reads, a JSON file made by `python "
                               "-m train.faces` (empty: train/content_faces.json, for the "
                               "photos of ../shared/data/content)")
    stability_weight: float = _opt(-1.0, "temporal stability: a perturbed copy of the input "
                                         "must give the same output (it mutes a painting's "
                                         "strokes, so a painting gets it late and light; the "
                                         f"bundled cartoon uses 1); -1: {PAINTING_STABILITY} "
                                         "for a painting, 0 for a teacher")
    stability_steps: int = _opt(-1, "the stability loss applies in the last this many steps "
                                     "only, as a fine-tune (from the first step it washes a "
                                     "painting's strokes out); 0: every step; -1: the last "
                                     "quarter for a painting, every step for a teacher")
    l1_weight: float = _opt(1.0, "teacher mode: pixel L1 against the teacher")
    l2_weight: float = _opt(0.0, "teacher mode: pixel squared error against the teacher (what "
                                 "PSNR measures)")
    edge_weight: float = _opt(2.0, "teacher mode: L1 on image gradients (flat areas, sharp edges)")
    adversarial_weight: float = _opt(0.0, "teacher mode: PatchGAN critic loss; 0 turns it off")
    ema: float = _opt(-1.0, "also keep an exponential moving average of the generator's "
                       "weights with this decay (e.g. 0.999: about the last 1,000 steps) and "
                       "export it instead of the last step's weights, which carry that step's "
                       f"noise; 0: off; -1: {PAINTING_EMA} for a painting, 0 for a teacher")
    init_from: str = _opt("", "start from the weights of an exported style (.onnx, e.g. a "
                              "bundled one, with the --size it was made with) instead of "
                              "random ones")
    distill_from: str = _opt("", "perceptual mode: an exported style (.onnx) of the same "
                                 "painting, typically a heavier network (--size johnson), whose "
                                 "output on every crop the generator also learns to match "
                                 "(pixel L1 plus gradients): a real-time student of a slow master")
    distill_weight: float = _opt(1.0, "with --distill-from: weight of matching the master's output")
    loss_net: str = _opt("efficientnet-lite0", "loss network: efficientnet-lite0 or a path to "
                                               "a torchvision-layout VGG16/19 .pth")
    # bookkeeping
    out_dir: str = _opt("", "where the model goes (default: your styles folder, "
                            "$LIVESTYLE_STYLES or ~/.local/share/livestyle/styles)")
    run_dir: str = _opt("runs", "checkpoints and sample grids go to <run-dir>/<name>/")
    log_every: int = _opt(10, "print and record the losses every this many steps")
    sample_every: int = _opt(200, "write a sample grid of held-out photos every this many steps")
    checkpoint_every: int = _opt(100, "save a checkpoint every this many steps")
    threads: int = _opt(0, "torch intra-op threads; 0: torch's default")
    max_minutes: float = _opt(0.0, "stop after this many minutes of training in this run, "
                                   "save a checkpoint and export what was learned (the model "
                                   "records the steps it got; --resume --overwrite goes on and "
                                   "replaces it); 0: train every --steps")

    def __post_init__(self):
        if (self.style_image is None) == (self.teacher is None):
            raise ValueError("give exactly one of --style-image (a painting) or --teacher (a filter)")
        for key, value in mode_defaults(self.style_image is not None).items():
            if getattr(self, key) == -1:  # the default: what this mode needs, stored as such
                object.__setattr__(self, key, value)
        for image in self.style_images:
            if not Path(image).is_file():
                raise ValueError(f"style image not found: {image}")
        if len(self.names) != max(1, len(self.style_images)):
            raise ValueError(f"{len(self.style_images)} style images need as many comma-separated "
                             f"names, got {len(self.names)}")
        if self.init_from and not Path(self.init_from).is_file():
            raise ValueError(f"--init-from: no such model: {self.init_from}")
        if self.face_boxes and not Path(self.face_boxes).is_file():
            raise ValueError(f"--face-boxes: no such file: {self.face_boxes}; make it with "
                             "`python -m train.faces --content-dir DIR --out FILE`")
        if self.distill_from and not Path(self.distill_from).is_file():
            raise ValueError(f"--distill-from: no such model: {self.distill_from}")
        if self.distill_from and self.teacher is not None:
            raise ValueError("--distill-from is for a painting (--style-image); a teacher style "
                             "already learns from its teacher")
        if self.style_weights and len(self.style_multipliers) != len(self.names):
            raise ValueError(f"--style-weights needs one number per style ({len(self.names)}), "
                             f"got {self.style_weights!r}")
        if self.description and len(self.description.split("|")) not in (1, len(self.names)):
            raise ValueError("give one description, or one per name separated by |")
        check_names(self.name)
        if not self.content_dir and not DEFAULT_CONTENT.is_dir():
            raise ValueError("no photos to train on: pass --content-dir with a folder of photos "
                             "(a few hundred varied photos, faces among them, work well)")
        if not Path(self.content_folder).is_dir():
            raise ValueError(
                f"content folder not found: {self.content_folder}; pass --content-dir with photos"
            )
        if self.loss_norm not in ("size", "energy"):
            raise ValueError(f"--loss-norm must be 'size' or 'energy', got {self.loss_norm!r}")
        from .lossnet import parse_style_taps

        parse_style_taps(self.style_taps)
        if self.crop < 32 or self.crop % 4:
            raise ValueError(f"--crop must be a multiple of 4 and at least 32, got {self.crop}")
        if self.steps < 1 or self.batch < 1:
            raise ValueError("--steps and --batch must be positive")
        if self.stability_steps < -1:
            raise ValueError(f"--stability-steps must be -1 (auto), 0 (every step) or a number "
                             f"of steps, got {self.stability_steps}")
        self._check_numbers()
        # names that would otherwise fail later, inside train(), as a traceback
        from .teachers import TEACHERS

        if self.teacher is not None and self.teacher not in TEACHERS:
            raise ValueError(f"unknown teacher {self.teacher!r}; known teachers: "
                             f"{', '.join(sorted(TEACHERS))}")
        from livestyle.generator import SIZES  # imports torch, which training needs next anyway

        if self.size != "auto" and self.size not in SIZES:
            raise ValueError(f"unknown --size {self.size!r}; known sizes: {', '.join(SIZES)}")
        from .data import find_images

        find_images(self.content_folder)  # ValueError naming the folder if it holds no photo

    def _check_numbers(self) -> None:
        """The other numeric settings, in range before anything loads: NaN, infinities and
        values that would fail later (a zero interval is a division by zero at the first step,
        a style side of 0 a crash reading the painting) or train nonsense (a negative learning
        rate or loss weight) are refused, naming the flag."""
        def flag(field: str) -> str:
            return "--" + field.replace("_", "-")

        for field in ("scale_jitter", "lr", "lr_final", *LOSS_WEIGHT_FIELDS, "ema",
                      "max_minutes"):
            value = getattr(self, field)
            if not math.isfinite(value):
                raise ValueError(f"{flag(field)} must be a finite number, got {value}")
        for field in LOSS_WEIGHT_FIELDS:
            if getattr(self, field) < 0:
                raise ValueError(f"{flag(field)} must be 0 (off) or more, got "
                                 f"{getattr(self, field)}")
        if self.max_minutes < 0:
            raise ValueError(f"--max-minutes must be 0 (no limit) or more, got {self.max_minutes}")
        if not self.lr > 0:
            raise ValueError(f"--lr must be more than 0, got {self.lr}")
        if self.lr_final < 0:
            raise ValueError(f"--lr-final must be 0 or more, got {self.lr_final}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"--ema must be 0 (off) or a decay below 1 such as 0.998, got "
                             f"{self.ema}")
        if self.scale_jitter < 1:
            raise ValueError(f"--scale-jitter must be 1 (no jitter) or more, got "
                             f"{self.scale_jitter}")
        for field in ("log_every", "sample_every", "checkpoint_every"):
            if getattr(self, field) < 1:
                raise ValueError(f"{flag(field)} must be 1 or more (steps), got "
                                 f"{getattr(self, field)}")
        if self.long_side != 0 and self.long_side < 16:
            raise ValueError(f"--long-side must be 0 (photos at 1.5 crops) or at least 16 "
                             f"pixels, got {self.long_side}")
        if self.native_side != 0 and self.native_side < 16:
            raise ValueError(f"--native-side must be 0 (--long-side) or at least 16 pixels, "
                             f"got {self.native_side}")
        if self.style_side < 16:
            raise ValueError(f"--style-side must be at least 16 pixels, got {self.style_side}")
        if self.seed < 0:
            raise ValueError(f"--seed must be 0 or more, got {self.seed}")
        from livestyle.config import max_threads

        if not 0 <= self.threads <= max_threads():
            raise ValueError(f"--threads must be 0 (torch's default) or at most "
                             f"{max_threads()}, got {self.threads}")

    @property
    def content_folder(self) -> str:
        return self.content_dir or str(DEFAULT_CONTENT)

    @property
    def model_dir(self) -> Path:
        """Where the exported models go: --out-dir, else the user's styles folder."""
        from livestyle.styles import user_dir

        return Path(self.out_dir) if self.out_dir else user_dir()

    @property
    def found_by_name(self) -> bool:
        """Whether `livestyle run --style NAME` finds the exported models by name: only in the
        user's styles folder, which it searches before the bundled styles (elsewhere: by path)."""
        from livestyle.styles import user_dir

        return self.model_dir.resolve() == user_dir().resolve()

    @property
    def style_images(self) -> list[str]:
        return self.style_image.split(",") if self.style_image else []

    @property
    def style_multipliers(self) -> list[float]:
        """--style-weights as numbers, one per style (ValueError naming a bad one)."""
        if not self.style_weights:
            return [1.0] * len(self.names)
        try:
            values = [float(v) for v in self.style_weights.split(",")]
        except ValueError:
            raise ValueError(f"--style-weights must be comma-separated numbers, got "
                             f"{self.style_weights!r}") from None
        if any(not v > 0 for v in values):
            raise ValueError(f"--style-weights must be positive, got {self.style_weights!r}")
        return values

    @property
    def names(self) -> list[str]:
        return self.name.split(",")

    @property
    def generator_size(self) -> str:
        if self.size != "auto":
            return self.size
        return "brush" if self.style_image else ("toon" if self.teacher == "cartoon" else "fast")

    def stability_from(self) -> int:
        """The first step that has the stability loss (a step past the end: none)."""
        if self.stability_weight <= 0:
            return self.steps
        n = self.stability_steps if self.stability_steps >= 0 else (
            self.steps // 4 if self.style_image else 0)
        return max(self.steps - n, 0) if n else 0

    @property
    def mode(self) -> str:
        return "teacher" if self.teacher else "perceptual"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def defaults(cls) -> dict:
        """Every setting that has a default, with it."""
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


# settings added after some models and checkpoints were made, with the value those had
# (record.command and --resume read a missing key as this, not as today's default)
LEGACY = {"loss_norm": "energy", "style_taps": "stem,1,3,5,8", "stability_steps": 0,
          "native_side": 0, "skin_weight": 0.0, "coarse_style_weight": 0.0, "ema": 0.0,
          "tone_weight": 0.0}


def with_overrides(cfg: TrainConfig, **changes) -> TrainConfig:
    d = cfg.to_dict()
    d.update(changes)
    return TrainConfig(**d)

