"""The training loop, top to bottom: setup, data, models, targets, loop, checkpoint, export.

Resuming is exact: every random draw of step s on rank r comes from generators seeded with
(seed, rank, s), so a run killed at any step and resumed from its last checkpoint draws the
same batches and perturbations as an uninterrupted one, with no RNG state to save.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist

from livestyle.atomic import OutputBusy, OutputClaim, atomic_open, write_atomic
from livestyle.generator import SIZES, Generator
from livestyle.styles import native_side
from . import faces, ink, losses
from .config import LEGACY, LOSS_WEIGHT_FIELDS, TrainConfig, check_names
from .data import CropSampler, read_rgb, split_images, to_tensor
from .export import export_onnx
from .grow import can_grow, grow
from .lossnet import build_loss_net
from .teachers import KEEPS_COLOUR, get_teacher, upscale_of

SAMPLE_SIDE = 256
# settings a resumed run may change: more --steps extends a run (the learning rate follows
# the new schedule from the step reached); new loss weights fine-tune it (a stronger style for
# the weakest paintings, a squared-error finish for a teacher); the rest is bookkeeping
# (not the critic's weight: a critic's state is in a checkpoint only if it was on from the start)
LOSS_WEIGHTS = (set(LOSS_WEIGHT_FIELDS) - {"adversarial_weight"}) | {"style_weights"}
RESUMABLE = {"steps", "stability_steps", "run_dir", "log_every", "sample_every",
             "checkpoint_every", "threads", "out_dir", "description", "init_from",
             "ema", "native_side", "max_minutes"} | LOSS_WEIGHTS


class CheckpointError(RuntimeError):
    pass


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says exactly what was saved."""


def save_atomic(obj, path: Path) -> None:
    """torch.save whole or not at all: a crash never leaves half a checkpoint; a failed write
    (a full disk) is a CheckpointError that says the last checkpoint is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_open(path) as f:
            torch.save(obj, f)
    except (OSError, RuntimeError) as e:  # torch reports a failed write as a RuntimeError
        reason = (e.strerror if isinstance(e, OSError) and e.strerror else "the write failed")
        raise CheckpointError(f"cannot save {path} ({reason}; is the disk full?); the last "
                              "checkpoint saved there is unchanged: free space and continue "
                              "with --resume") from None


def load_checkpoint(path: Path) -> dict:
    try:
        # weights_only: a checkpoint is data, never code to unpickle
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a damaged file
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({e.__class__.__name__}: {str(e)[:200]}); "
            "delete it to start over, or resume from another run directory"
        ) from None
    if not isinstance(ckpt, dict) or not {"step", "generator", "config"} <= ckpt.keys():
        raise CheckpointError(f"checkpoint {path} is not a livestyle training checkpoint")
    return ckpt


# settings that name files or folders (as given: relative ones to where the run started)
PATH_SETTINGS = ("content_dir", "style_image", "out_dir", "face_boxes", "distill_from",
                 "init_from")


def recorded_settings(ckpt: dict) -> dict:
    """A checkpoint's settings; one added since it was made reads as its value then (LEGACY)
    or, if it had none, as its default."""
    return TrainConfig.defaults() | LEGACY | ckpt["config"]


def saved_settings(name: str, run_dir: str, given: tuple[str, ...] = ()) -> dict:
    """The settings the run <run_dir>/<name> was made with, for `--resume` to keep those that
    its command line does not give (`given`: the settings it does)."""
    check_names(name)  # before it becomes part of a path
    path = Path(run_dir) / name / "checkpoint.pt"
    if not path.is_file():
        raise CheckpointError(no_checkpoint(path))
    ckpt = load_checkpoint(path)
    known = set(TrainConfig.field_names())
    saved = {k: v for k, v in recorded_settings(ckpt).items() if k in known}
    started_in = ckpt.get("cwd")  # older checkpoints do not say
    relative = [k for k in PATH_SETTINGS if k not in given
                and any(p and not Path(p).is_absolute() for p in str(saved.get(k) or "").split(","))]
    if started_in and relative and Path(started_in) != Path.cwd():
        raise CheckpointError(f"{path} was started in {started_in} with paths relative to it "
                              f"({', '.join('--' + k.replace('_', '-') for k in relative)}); "
                              f"resume it from there (cd {started_in})")
    if saved.get("init_from") and not Path(saved["init_from"]).is_file():
        # read only when a run starts; the record of where it started from is lost with it
        print(f"note: the run's --init-from {saved['init_from']} is gone; a resumed run does not "
              "need it", file=sys.stderr)
        saved["init_from"] = ""
    return saved


def init_from(generator: Generator, model_path: str, log=None) -> None:
    """`generator` starts from an exported style's weights (CheckpointError if its network is
    another one, except a toon head it grows: train/grow.py)."""
    from livestyle.backends.torch import generator_weights

    try:
        theirs, weights = generator_weights(model_path)
    except Exception as e:  # noqa: BLE001 - onnx raises its own types for a damaged file
        raise CheckpointError(f"--init-from {model_path}: not a livestyle style ({e})") from None
    if can_grow(theirs, generator.cfg):
        grow(generator, theirs, weights)
        if log:
            log(f"starting from the weights of {model_path}, its toon head grown from "
                f"{theirs.head_width}x{theirs.head_depth} to "
                f"{generator.cfg.head_width}x{generator.cfg.head_depth} (it draws the same)")
        return
    if theirs != generator.cfg:
        raise CheckpointError(f"--init-from {model_path}: its network ({theirs}) is not the one "
                              f"this run trains ({generator.cfg}); pass the --size it was made with")
    generator.load_state_dict(weights)
    if log:
        log(f"starting from the weights of {model_path}")


def load_master(model_path: str, device) -> Generator:
    """The frozen network of an exported style, for --distill-from."""
    from livestyle.backends.torch import load_generator

    try:
        net = load_generator(model_path)
    except Exception as e:  # noqa: BLE001 - onnx raises its own types for a damaged file
        raise CheckpointError(f"--distill-from {model_path}: not a livestyle style ({e})") from None
    if net.cfg.n_styles != 1:
        raise CheckpointError(f"--distill-from {model_path}: a multi-style network; export one "
                              "style per file")
    return net.requires_grad_(False).to(device)


def content_faces(cfg: TrainConfig) -> dict:
    """The face boxes of --face-boxes, for --face-weight; an error when none of the training
    photos of --content-dir is listed (the term would silently do nothing)."""
    source = cfg.face_boxes or faces.CONTENT_FACES
    boxes = faces.load_boxes(source)
    names = {p.name for p in split_images(cfg.content_folder)[0]}
    if not names & boxes.keys():
        raise ValueError(f"--face-weight: none of the photos under {cfg.content_folder} has face "
                         f"boxes in {source}; find them with `python -m train.faces --content-dir "
                         f"{cfg.content_folder} --out FILE` (needs mediapipe==0.10.14) and pass "
                         "--face-boxes FILE")
    return boxes


def lr_at(cfg: TrainConfig, step: int) -> float:
    t = min(step / max(cfg.steps - 1, 1), 1.0)
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * t))


def sample_photos(cfg: TrainConfig, n: int = 4) -> list[np.ndarray]:
    """A fixed, evenly spread handful of held-out photos (RGB), for grids and export checks."""
    paths = split_images(cfg.content_folder)[1]
    picks = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, n)]
    photos = []
    for p in picks:  # unreadable ones are left out (training names them)
        with contextlib.suppress(ValueError):
            # at the native side the style runs at: the grid shows strokes as a viewer sees them
            photos.append(read_rgb(p, cfg.long_side or SAMPLE_SIDE))
    return photos


def save_grid(generator: Generator, photos: list[np.ndarray], teacher, path: Path) -> None:
    """Rows: photo | stylized, one column per style (| teacher). Written atomically as PNG."""
    rows = []
    device = next(generator.parameters()).device
    n_styles = generator.cfg.n_styles
    with torch.no_grad():
        for rgb in photos:
            cells = [rgb]
            for k in range(n_styles):
                style = torch.tensor([k], device=device) if n_styles > 1 else None
                out = generator(to_tensor(rgb).to(device), style).clamp(0, 1)
                cells.append((out[0].permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8))
            if teacher is not None:
                cells.append(cv2.cvtColor(teacher(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)),
                                          cv2.COLOR_BGR2RGB))
            cells = [cv2.resize(c, (SAMPLE_SIDE, SAMPLE_SIDE)) for c in cells]
            rows.append(np.hstack(cells))
    grid = cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR)
    ok, png = cv2.imencode(".png", grid)
    write_atomic(path, png.tobytes())


def _prepare_progress(done: int, total: int) -> None:
    if done == 1 or done == total or done % 50 == 0:
        print(f"preparing training photos: {done}/{total}", file=sys.stderr, flush=True)


class _StopFlag:
    """While alive, the first SIGINT sets `raised` instead of raising; the second raises."""

    def __init__(self):
        import signal
        import threading

        self.raised = False
        self._signal = signal
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True
        print("\nstopping after this step (Ctrl-C again to stop at once) ...", file=sys.stderr,
              flush=True)

    def restore(self) -> None:
        if self._previous is not None:
            self._signal.signal(self._signal.SIGINT, self._previous)
            self._previous = None


class Progress:
    """One status line: step, losses, it/s, ETA. Rewritten in place on a terminal."""

    def __init__(self, total: int, start: int):
        self.total, self.start, self.t0 = total, start, time.perf_counter()
        self.tty = sys.stderr.isatty()

    def update(self, step: int, logs: dict[str, float]) -> None:
        done = step + 1 - self.start
        rate = done / max(time.perf_counter() - self.t0, 1e-9)
        eta = (self.total - step - 1) / max(rate, 1e-9)
        width = 24
        fill = int(width * (step + 1) / self.total)
        bar = "#" * fill + "-" * (width - fill)
        loss = " ".join(f"{k} {v:.4f}" for k, v in logs.items())
        line = (f"[{bar}] {step + 1}/{self.total} {loss} | {rate:.2f} it/s "
                f"ETA {int(eta // 60)}:{int(eta % 60):02d}")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n",
              file=sys.stderr, flush=True)

    def close(self):
        if self.tty:
            print(file=sys.stderr)


def _check_writable(folder: Path, what: str, flag: str) -> None:
    """CheckpointError, before any training, if `folder` cannot be made or written: a real
    write (of a nameless temporary file) in it or in the nearest folder above it that exists;
    nothing is created."""
    probe = folder.absolute()
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        if not probe.is_dir():
            raise NotADirectoryError(20, f"{probe} is a file, not a folder")
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise CheckpointError(f"cannot write {what} in {folder} ({e.strerror or e}); pass {flag} "
                              "with a folder you can write, or fix its permissions") from None


def claim_outputs(cfg: TrainConfig) -> list[OutputClaim]:
    """One training per model name and per checkpoint at a time: CheckpointError while
    another holds either (the claims go when the process ends, killed or not)."""
    claims: list[OutputClaim] = []
    targets = [cfg.model_dir / f"{n}.onnx" for n in cfg.names] + [
        Path(cfg.run_dir) / cfg.name / "checkpoint.pt"]
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            claims.append(OutputClaim(target))
    except OutputBusy as e:
        for c in claims:
            c.release()
        holder = str(e).split("(process ")[-1].split(")")[0]
        raise CheckpointError(f"another training (process {holder}) is writing {target}; wait "
                              "for it to end, or choose another --name") from None
    return claims


def no_checkpoint(path: Path) -> str:
    return (f"--resume: no checkpoint at {path}; run without --resume to start training, or "
            "pass the --run-dir and --name of the run to continue")


def check_outputs(cfg: TrainConfig, resume: bool, overwrite: bool) -> list[str]:
    """Refuse, before any work, what would destroy something: an existing model (unless
    `overwrite`), a --resume with no checkpoint. Returns notes to print."""
    from livestyle.styles import BUNDLED_DIR

    ckpt = Path(cfg.run_dir) / cfg.name / "checkpoint.pt"
    if resume and not ckpt.is_file():
        raise CheckpointError(no_checkpoint(ckpt))
    notes = []
    for name in cfg.names:
        target = cfg.model_dir / f"{name}.onnx"
        if target.exists() and not overwrite:
            raise CheckpointError(f"{target} already exists; pass --overwrite to replace it, or "
                                  "choose another --name")
        bundled = BUNDLED_DIR / f"{name}.onnx"
        if cfg.found_by_name and bundled.exists() and bundled.resolve() != target.resolve():
            notes.append(f"note: your '{name}' will take precedence over the bundled style of "
                         f"that name ({bundled})")
    _check_writable(cfg.model_dir, "the model", "--out-dir")
    _check_writable(ckpt.parent, "checkpoints", "--run-dir")
    return notes


def _out_of_time(cfg: TrainConfig, step: int, t_start: float, ddp: bool, device) -> bool:
    """--max-minutes passed in this run, with steps left to train. A distributed run asks on
    log steps only (its ranks must agree: the master's clock decides, at the price of a
    device sync)."""
    if not cfg.max_minutes or step + 1 >= cfg.steps:
        return False
    if ddp and step % cfg.log_every:
        return False
    late = time.perf_counter() - t_start > cfg.max_minutes * 60.0
    if not ddp:
        return late
    flag = torch.tensor([float(late)], device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def train(cfg: TrainConfig, resume: bool = False, export: bool = True,
          overwrite: bool = False) -> Path | None:
    """Train a generator from `cfg`; returns the exported model path (on the master rank).

    Raises CheckpointError (nothing done) for an output that exists without `overwrite` or a
    `resume` with no checkpoint, TrainingInterrupted on Ctrl-C once a checkpoint is saved."""
    # -- distributed setup: torchrun sets WORLD_SIZE/RANK/LOCAL_RANK
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    if ddp:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available()
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        device = torch.device(f"cuda:{local}" if use_cuda else "cpu")
        if use_cuda:
            torch.cuda.set_device(device)
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # every step has the same shapes (fixed crops)
    master = rank == 0  # the only rank that writes files or prints
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.run_dir) / cfg.name
    ckpt_path = run_dir / "checkpoint.pt"
    notes = check_outputs(cfg, resume, overwrite) if master else []
    claims = claim_outputs(cfg) if master else []
    for note in notes:
        print(note, file=sys.stderr)
    saved_step = None  # the step of the checkpoint on disk for this run, once there is one

    try:
        # -- data and models
        teacher = get_teacher(cfg.teacher) if cfg.teacher else None
        if master:
            print(f"livestyle train: {cfg.mode} mode, '{cfg.name}', reading {cfg.content_folder}"
                  + (f" and running the {cfg.teacher} teacher on every photo" if teacher else ""),
                  file=sys.stderr, flush=True)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        # a student of a colour-keeping teacher adds its output to the input
        n_styles = max(1, len(cfg.style_images))
        gen_cfg = dataclasses.replace(SIZES[cfg.generator_size], n_styles=n_styles,
                                      residual=cfg.teacher in KEEPS_COLOUR)
        generator = Generator(gen_cfg)
        if cfg.init_from and not resume:
            init_from(generator, cfg.init_from,
                      log=(lambda m: print(m, file=sys.stderr)) if master else None)
        generator = generator.to(device)
        distill = load_master(cfg.distill_from, device) if cfg.distill_from else None
        toon = gen_cfg.head == "toon"
        critic = losses.PatchDiscriminator().to(device) if (
            teacher is not None and cfg.adversarial_weight > 0) else None
        needs_loss_net = teacher is None or cfg.content_weight > 0
        content_blocks = tuple(int(b) for b in cfg.content_blocks.split(","))
        loss_net = (build_loss_net(cfg.loss_net, content_blocks, cfg.style_taps).to(device)
                    if needs_loss_net else None)
        g_opt = torch.optim.Adam(generator.parameters(), lr=cfg.lr)
        d_opt = torch.optim.Adam(critic.parameters(), lr=cfg.lr, betas=(0.5, 0.99)) if critic else None

        start = 0
        seconds_before = 0.0  # training time of the run's earlier stretches (resumed runs)
        history: list[dict] = []  # {"step", "loss", <each term>} at every log step (master)
        if resume:
            ckpt = load_checkpoint(ckpt_path)
            # a setting added after the checkpoint was made: its value then (LEGACY or default)
            was = recorded_settings(ckpt)
            changed = {k for k, v in cfg.to_dict().items() if was.get(k) != v}
            diff = changed - RESUMABLE
            if diff:
                raise CheckpointError(f"{ckpt_path} was made with different settings "
                                      f"({', '.join(sorted(diff))}); resume with the same ones")
            if ckpt["step"] > cfg.steps:
                raise CheckpointError(f"{ckpt_path} is at step {ckpt['step']}, past --steps "
                                      f"{cfg.steps}; pass at least that many steps")
            generator.load_state_dict(ckpt["generator"])
            g_opt.load_state_dict(ckpt["g_opt"])
            if critic:
                critic.load_state_dict(ckpt["critic"])
                d_opt.load_state_dict(ckpt["d_opt"])
            start = saved_step = ckpt["step"]
            history = list(ckpt.get("history", []))  # older checkpoints have none
            seconds_before = float(ckpt.get("seconds", 0.0))
            if master:
                print(f"resumed from {ckpt_path} at step {start}", file=sys.stderr)
                for k in sorted(changed & LOSS_WEIGHTS):
                    print(f"note: fine-tuning with {k} {getattr(cfg, k)!r} (was {was.get(k)!r})",
                          file=sys.stderr)
        # the averaged weights (--ema) that are exported; only the master exports
        averaged = copy.deepcopy(generator).requires_grad_(False) if cfg.ema > 0 and master else None
        ema_from = 0  # the step the average starts at
        if averaged is not None and resume:
            if "ema" in ckpt:
                averaged.load_state_dict(ckpt["ema"])
                ema_from = ckpt.get("ema_from", 0)
            else:
                ema_from = start
                print(f"note: averaging the weights from step {start} on (--ema {cfg.ema:g})",
                      file=sys.stderr)
        shown = averaged if averaged is not None else generator  # sampled and exported
        model = torch.nn.parallel.DistributedDataParallel(generator) if ddp else generator

        # -- fixed targets
        def painting_grams(side: int) -> list[torch.Tensor]:
            """Per loss-net layer: (n_styles, C, C), the paintings at this long side."""
            with torch.no_grad():
                per_style = [[losses.gram(f)[0] for f in loss_net(
                    to_tensor(read_rgb(image, side)).to(device))[0]]
                    for image in cfg.style_images]
            return [torch.stack(layer) for layer in zip(*per_style)]

        style_mult = torch.tensor(cfg.style_multipliers, device=device)
        style_grams = painting_grams(cfg.style_side) if cfg.style_image else None
        coarse_grams = (painting_grams(cfg.style_side // 2)  # --coarse-style-weight
                        if cfg.style_image and cfg.coarse_style_weight > 0 else None)
        tone_targets = (torch.cat([losses.luma_quantiles(to_tensor(read_rgb(image, cfg.style_side))
                                                         .to(device)) for image in cfg.style_images])
                        if cfg.style_image and cfg.tone_weight > 0 else None)  # (n_styles, 256)
        photos = sample_photos(cfg) if master else []
        if master:
            run_dir.mkdir(parents=True, exist_ok=True)
        progress = Progress(cfg.steps, start) if master else None

        def save_checkpoint(done: int) -> None:
            nonlocal saved_step
            state = {"step": done, "config": cfg.to_dict(), "cwd": os.getcwd(),
                     "generator": generator.state_dict(), "g_opt": g_opt.state_dict(),
                     "history": history,
                     "seconds": seconds_before + time.perf_counter() - t_start}
            if critic:
                state |= {"critic": critic.state_dict(), "d_opt": d_opt.state_dict()}
            if averaged is not None:
                state |= {"ema": averaged.state_dict(), "ema_from": ema_from}
            save_atomic(state, ckpt_path)
            saved_step = done

        # -- the loop (photos are prepared only when there are steps left to train)
        if start < cfg.steps:
            data = CropSampler(cfg.content_folder, cfg.crop, teacher, long_side=cfg.long_side,
                               jitter=cfg.scale_jitter,
                               progress=_prepare_progress if master else None,
                               faces=content_faces(cfg) if cfg.face_weight > 0 else None)
            if master:
                shown_bad = ", ".join(f"{p.name} ({why})" for p, why in data.skipped[:10])
                more = f" and {len(data.skipped) - 10} more" if len(data.skipped) > 10 else ""
                print(f"training on {len(data)} photos" + (
                    f"; skipped {len(data.skipped)} that are not whole images: {shown_bad}{more}"
                    if data.skipped else ""), file=sys.stderr, flush=True)
        stability_from = cfg.stability_from()
        if master and 0 < stability_from < cfg.steps and start < cfg.steps:
            print(f"the stability loss joins at step {stability_from} of {cfg.steps}",
                  file=sys.stderr)
        t_start = time.perf_counter()
        # Ctrl-C (SIGINT) only raises a flag: the step in hand finishes, a checkpoint is saved
        # at that step and TrainingInterrupted says so; a second Ctrl-C stops at once
        stop = _StopFlag() if master else None
        steps_done = start  # the last step trained, so far
        try:
            for step in range(start, cfg.steps):
                rng = np.random.default_rng([cfg.seed, rank, step])
                trng = torch.Generator().manual_seed(int(rng.integers(2**62)))
                x, target, face = data.sample(rng, cfg.batch)
                # perturbed on the CPU, where trng lives, then both moved to the device (drawn
                # also without the stability loss, so a fine-tune that adds it draws alike)
                xp, dy, dx = losses.perturb(x, trng)
                x, xp = x.to(device), xp.to(device)
                stable = step >= stability_from  # else the perturbed copy is not generated
                for group in g_opt.param_groups:
                    group["lr"] = lr_at(cfg, step)

                # each sample learns one of the paintings (a multi-style net), drawn like the crops
                style = (torch.from_numpy(rng.integers(n_styles, size=len(x))).to(device)
                         if n_styles > 1 else None)
                # frame and perturbed frame go through the generator as one batch
                inputs = torch.cat([x, xp]) if stable else x
                styles = None if style is None else (torch.cat([style, style]) if stable else style)
                both = model(inputs, styles, **({"parts": True} if toon else {}))
                if toon:
                    both, base, logit = both
                    base, logit = base[: len(x)], logit[: len(x)]
                y, yp = both[: len(x)], both[len(x):]
                logs = {}
                if teacher is None:
                    y_feats_style, y_feats_content = loss_net(y)
                    with torch.no_grad():
                        _, x_content = loss_net(x)
                    logs["style"] = cfg.style_weight * losses.style_loss(
                        y_feats_style, style_grams, style, style_mult, norm=cfg.loss_norm)
                    if coarse_grams is not None:  # area-halved, as a viewer's smaller view
                        y_half = torch.nn.functional.avg_pool2d(y, 2)
                        logs["coarse"] = cfg.coarse_style_weight * losses.style_loss(
                            loss_net(y_half)[0], coarse_grams, style, style_mult, norm=cfg.loss_norm)
                    logs["content"] = cfg.content_weight * losses.content_loss(
                        y_feats_content, x_content, norm=cfg.loss_norm)
                    logs["tv"] = cfg.tv_weight * losses.tv_loss(y)
                    if distill is not None:
                        with torch.no_grad():
                            master_y = distill(x)
                        logs["distill"] = cfg.distill_weight * (
                            (y - master_y).abs().mean() * 10.0 + losses.gradient_l1(y, master_y))
                    if cfg.skin_weight > 0:
                        logs["skin"] = cfg.skin_weight * losses.skin_shading_loss(y, x)
                    if tone_targets is not None:  # each sample against its own painting's
                        logs["tone"] = cfg.tone_weight * losses.tone_loss(
                            y, tone_targets[style if style is not None else 0])
                    if face is not None:
                        logs["face"] = cfg.face_weight * losses.shading_loss(y, x, face.to(device))
                else:
                    target = target.to(device)
                    if toon:  # the teacher's layers: result, flat colours, ink coverage
                        target, flat, cover = target[:, :3], target[:, 3:6], target[:, 6:]
                        logs["base"] = cfg.base_weight * (base - flat).abs().mean() * 10.0
                        logs["lines"] = cfg.line_weight * losses.line_loss(logit, cover)
                    logs["l1"] = cfg.l1_weight * (y - target).abs().mean() * 10.0
                    if cfg.l2_weight > 0:  # x100: a 0.1 error costs what it does in the L1
                        logs["l2"] = cfg.l2_weight * (y - target).pow(2).mean() * 100.0
                    logs["edges"] = cfg.edge_weight * losses.gradient_l1(y, target)
                    if cfg.content_weight > 0:
                        with torch.no_grad():
                            t_style, _ = loss_net(target)
                        logs["perceptual"] = cfg.content_weight * losses.content_loss(
                            loss_net(y)[0], t_style, norm="energy")
                if stable:
                    logs["stability"] = cfg.stability_weight * losses.stability_loss(y, yp, dy, dx)
                if critic is not None:
                    g_adv, d_loss = losses.adversarial_losses(critic, y, target)
                    logs["adv"] = cfg.adversarial_weight * g_adv
                total = sum(logs.values())

                g_opt.zero_grad(set_to_none=True)
                total.backward()
                g_opt.step()
                if averaged is not None:
                    # the plain mean of the steps so far until it spans 1/(1 - ema) of them,
                    # so a short run does not export its starting weights
                    decay = min(cfg.ema, 1.0 - 1.0 / (step + 1 - ema_from))
                    with torch.no_grad():
                        for a, p in zip(averaged.parameters(), generator.parameters()):
                            a.lerp_(p, 1.0 - decay)
                if critic is not None:
                    d_opt.zero_grad(set_to_none=True)
                    d_loss.backward(inputs=list(critic.parameters()))
                    d_opt.step()

                steps_done = step + 1
                out_of_time = _out_of_time(cfg, step, t_start, ddp, device)
                if master:
                    if step % cfg.log_every == 0 or step == cfg.steps - 1 or out_of_time:
                        # .item() is a host-device sync point: only on log steps
                        values = {"loss": total.item(), **{k: v.item() for k, v in logs.items()}}
                        history.append({"step": step, **values})
                        progress.update(step, values)
                    last = steps_done == cfg.steps or out_of_time
                    if steps_done % cfg.checkpoint_every == 0 or last or stop.raised:
                        save_checkpoint(steps_done)
                    if steps_done % cfg.sample_every == 0 or last:
                        save_grid(shown.eval(), photos, teacher,
                                  run_dir / f"samples_{steps_done:06d}.png")
                        generator.train()
                    if stop.raised:
                        progress.close()
                        raise TrainingInterrupted(
                            f"interrupted: step {steps_done} of {cfg.steps} saved to {ckpt_path}; "
                            "continue with the same command and --resume")
                if out_of_time:
                    if master:
                        print(f"\n--max-minutes {cfg.max_minutes:g} reached at step {steps_done} "
                              f"of {cfg.steps}: exporting what was learned (the same command "
                              "with --resume --overwrite goes on and replaces it)",
                              file=sys.stderr, flush=True)
                    break
        finally:
            if stop:
                stop.restore()
        if progress:
            progress.close()

        # -- export
        if master and export:
            checks = [cv2.cvtColor(p, cv2.COLOR_RGB2BGR) for p in photos[:2]]
            meta_training = cfg.to_dict() | {
                "generator_size": cfg.generator_size, "steps_done": steps_done,
                "device": (f"cuda ({torch.cuda.get_device_name(device)})"
                           if device.type == "cuda" else "cpu"),
                "seconds_this_run": round(time.perf_counter() - t_start),
                "train_seconds": round(seconds_before + time.perf_counter() - t_start),
                "resumed_from_step": start}
            generator = shown.cpu().eval()
            upscale = upscale_of(teacher)
            if toon and teacher is not None:  # sharpen/shift the soft outline coverage
                meta_training["ink"] = ink.calibrate(generator, teacher, cfg.content_folder,
                                                     native_side=native_side(meta_training),
                                                     upscale=upscale,
                                                     log=lambda m: print(m, file=sys.stderr))
            descriptions = cfg.description.split("|")
            outs = []
            for k, name in enumerate(cfg.names):
                one = generator.single_style(k).eval() if n_styles > 1 else generator
                outs.append(export_onnx(
                    one, cfg.model_dir / f"{name}.onnx", style=name,
                    description=descriptions[k % len(descriptions)],
                    training=meta_training | {"style_index": k}, check_images=checks,
                    upscale=upscale))
                print(f"wrote {outs[-1]}; run it with: livestyle run --style "
                      f"{name if cfg.found_by_name else shlex.quote(str(outs[-1]))}",
                      file=sys.stderr)
            return outs[0]
        return None
    except KeyboardInterrupt as e:
        # a Ctrl-C outside the loop's own handling (preparing the photos, exporting, a second
        # Ctrl-C): say what the checkpoint holds; with none, the CLI says nothing was saved
        if isinstance(e, TrainingInterrupted) or saved_step is None or not master:
            raise
        if saved_step >= cfg.steps:
            raise TrainingInterrupted(
                f"interrupted while exporting the model; all {cfg.steps} steps are saved in "
                f"{ckpt_path}: run the same command with --resume to export it") from None
        raise TrainingInterrupted(
            f"interrupted; {ckpt_path} holds step {saved_step} of {cfg.steps}: continue with "
            "the same command and --resume") from None
    finally:
        for claim in claims:
            claim.release()
        if ddp:
            dist.destroy_process_group()
