"""`python -m train` / `livestyle train` / `torchrun --nproc_per_node N -m train`.

Every TrainConfig field is a flag (`--style-weight 2`), so the CLI never drifts from the config.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from train.config import TrainConfig

EXAMPLES = """examples:
  livestyle train --style-image ../shared/data/styles/starry_night.jpg --name starry-night
  livestyle train --teacher cartoon --name cartoon --steps 2000
  livestyle train --style-image monet.jpg --name monet --resume      # continue a stopped run
  torchrun --nproc_per_node 4 -m train --style-image monet.jpg --name monet
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="livestyle train", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a style generator from a painting (perceptual losses) or a teacher "
                    "filter, and export it where `livestyle run --style NAME` finds it.")
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = defaults[f.name]
        if f.name == "name":
            p.add_argument(flag, required=True, help="style name (the model file's stem)")
            continue
        kind = {int: int, float: float}.get(type(default), str)
        p.add_argument(flag, type=kind, default=default, help=f"default: {default}")
    p.add_argument("--resume", action="store_true",
                   help="continue from <run-dir>/<name>/checkpoint.pt with the same settings")
    return p


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    resume = args.pop("resume")
    try:
        cfg = TrainConfig(**args)
    except ValueError as e:
        print(f"livestyle train: {e}", file=sys.stderr)
        return 2
    from train.loop import CheckpointError, train  # torch loads only once the flags are valid

    try:
        train(cfg, resume=resume)
    except CheckpointError as e:
        print(f"livestyle train: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nlivestyle train: interrupted; the last checkpoint is intact, continue with "
              "--resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
