"""`python -m train` / `livestyle train` / `torchrun --nproc_per_node N -m train`.

Every TrainConfig field is a flag (`--style-weight 2`), so the CLI never drifts from the config.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from .config import TrainConfig

EXAMPLES = """examples:
  livestyle train --style-image ../shared/data/styles/starry_night.jpg --name my-starry \\
      --content-dir ../shared/data/content
  livestyle train --teacher cartoon --name my-cartoon --content-dir ~/Pictures
  livestyle train --name monet --resume      (continues with the settings it was started with)
  torchrun --nproc_per_node 4 -m train --style-image monet.jpg --name monet --content-dir photos

Models go to your styles folder ($LIVESTYLE_STYLES, default ~/.local/share/livestyle/styles),
where `livestyle run --style NAME` finds them. A painting takes about 8 minutes with the
defaults (650 steps) on a 2-core laptop CPU; a GPU takes a minute or two.
"""


def build_parser() -> argparse.ArgumentParser:
    from livestyle.generator import SIZES  # imports torch, which training needs anyway
    from .teachers import TEACHERS

    p = argparse.ArgumentParser(
        prog="livestyle train", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a style generator from a painting (perceptual losses) or a teacher "
                    "filter, and export it where `livestyle run --style NAME` finds it.")
    choices = {"size": ["auto", *SIZES], "teacher": sorted(TEACHERS)}
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        if f.name == "name":
            p.add_argument(flag, required=True, help=help_text)
            continue
        kind = {int: int, float: float}.get(type(f.default), str)
        shown = "" if f.default in (None, "") else f" (default: {f.default})"
        if f.name in choices:  # listed in the help; checked by TrainConfig with a one-line error
            help_text += f"; one of: {', '.join(choices[f.name])}"
        # given flags only: a resumed run takes the rest from its checkpoint, a new one from
        # TrainConfig's defaults
        p.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=help_text + shown)
    p.add_argument("--resume", action="store_true",
                   help="continue from <run-dir>/<name>/checkpoint.pt with the settings it was "
                        "made with; flags given may extend --steps or change loss weights (a "
                        "fine-tune), not what the network or its data are")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a model of the same name in the output folder")
    return p


def main(argv: list[str] | None = None) -> int:
    given = vars(build_parser().parse_args(argv))
    resume, overwrite = given.pop("resume"), given.pop("overwrite")
    from .loop import CheckpointError, TrainingInterrupted, saved_settings, train

    try:
        run_dir = given.get("run_dir", TrainConfig.defaults()["run_dir"])
        saved = saved_settings(given["name"], run_dir, tuple(given)) if resume else {}
        cfg = TrainConfig(**(saved | given))
    except (ValueError, CheckpointError) as e:
        print(f"livestyle train: {e}", file=sys.stderr)
        return 2

    try:
        train(cfg, resume=resume, overwrite=overwrite)
    except CheckpointError as e:
        print(f"livestyle train: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # the photos: none readable
        print(f"livestyle train: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # writing the model: a full disk, a folder made read-only meanwhile
        print(f"livestyle train: cannot write {e.filename or 'the model'} ({e.strerror or e}); "
              "the last checkpoint is kept: fix it and continue with --resume", file=sys.stderr)
        return 1
    except TrainingInterrupted as e:
        print(f"\nlivestyle train: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\nlivestyle train: interrupted before the first step; nothing was saved (an "
              "existing checkpoint is unchanged)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
