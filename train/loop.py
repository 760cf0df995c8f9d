"""The training loop, top to bottom: setup, data, models, targets, loop, checkpoint, export.

Resuming is exact: every random draw of step s on rank r comes from generators seeded with
(seed, rank, s), so a run killed at any step and resumed from its last checkpoint draws the
same batches and perturbations as an uninterrupted one, with no RNG state to save.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist

from livestyle.generator import SIZES, Generator
from train import losses
from train.config import TrainConfig
from train.data import CropSampler, read_rgb, split_images, to_tensor
from train.export import export_onnx
from train.lossnet import build_loss_net
from train.teachers import KEEPS_COLOUR, get_teacher

SAMPLE_SIDE = 256


class CheckpointError(RuntimeError):
    pass


def save_atomic(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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


def lr_at(cfg: TrainConfig, step: int) -> float:
    t = min(step / max(cfg.steps - 1, 1), 1.0)
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * t))


def sample_photos(cfg: TrainConfig, n: int = 4) -> list[np.ndarray]:
    """A fixed, evenly spread handful of held-out photos (RGB), for grids and export checks."""
    paths = split_images(cfg.content_dir)[1]
    picks = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, n)]
    return [read_rgb(p, SAMPLE_SIDE) for p in picks]


def save_grid(generator: Generator, photos: list[np.ndarray], teacher, path: Path) -> None:
    """Rows: photo | stylized (| teacher). Written atomically as PNG."""
    rows = []
    device = next(generator.parameters()).device
    with torch.no_grad():
        for rgb in photos:
            out = generator(to_tensor(rgb).to(device)).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
            cells = [rgb, (out * 255 + 0.5).astype(np.uint8)]
            if teacher is not None:
                cells.append(cv2.cvtColor(teacher(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)),
                                          cv2.COLOR_BGR2RGB))
            cells = [cv2.resize(c, (SAMPLE_SIDE, SAMPLE_SIDE)) for c in cells]
            rows.append(np.hstack(cells))
    grid = cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR)
    ok, png = cv2.imencode(".png", grid)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(png.tobytes())
        os.replace(tmp, path)
    finally:  # an interrupt mid-write must not leave the temporary file behind
        if os.path.exists(tmp):
            os.unlink(tmp)


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


def train(cfg: TrainConfig, resume: bool = False, export: bool = True) -> Path | None:
    """Train a generator from `cfg`; returns the exported model path (on the master rank)."""
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
    master = rank == 0  # the only rank that writes files or prints
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.run_dir) / cfg.name
    ckpt_path = run_dir / "checkpoint.pt"

    try:
        # -- data and models
        teacher = get_teacher(cfg.teacher) if cfg.teacher else None
        if master:
            print(f"livestyle train: {cfg.mode} mode, '{cfg.name}', reading {cfg.content_dir}",
                  file=sys.stderr, flush=True)
        data = CropSampler(cfg.content_dir, cfg.crop, teacher)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        # a student of a colour-keeping teacher adds its output to the input
        gen_cfg = dataclasses.replace(SIZES[cfg.size], residual=cfg.teacher in KEEPS_COLOUR)
        generator = Generator(gen_cfg).to(device)
        critic = losses.PatchDiscriminator().to(device) if (
            teacher is not None and cfg.adversarial_weight > 0) else None
        loss_net = build_loss_net(cfg.loss_net).to(device)
        g_opt = torch.optim.Adam(generator.parameters(), lr=cfg.lr)
        d_opt = torch.optim.Adam(critic.parameters(), lr=cfg.lr, betas=(0.5, 0.99)) if critic else None

        start = 0
        history: list[dict] = []  # {"step", "loss", <each term>} at every log step (master)
        if resume and ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path)
            if ckpt["config"] != cfg.to_dict():
                diff = {k for k, v in cfg.to_dict().items() if ckpt["config"].get(k) != v}
                raise CheckpointError(f"{ckpt_path} was made with different settings "
                                      f"({', '.join(sorted(diff))}); resume with the same ones")
            generator.load_state_dict(ckpt["generator"])
            g_opt.load_state_dict(ckpt["g_opt"])
            if critic:
                critic.load_state_dict(ckpt["critic"])
                d_opt.load_state_dict(ckpt["d_opt"])
            start = ckpt["step"]
            history = list(ckpt.get("history", []))  # older checkpoints have none
            if master:
                print(f"resumed from {ckpt_path} at step {start}", file=sys.stderr)
        model = torch.nn.parallel.DistributedDataParallel(generator) if ddp else generator

        # -- fixed targets
        style_grams = None
        if cfg.style_image:
            with torch.no_grad():
                style_feats, _ = loss_net(to_tensor(read_rgb(cfg.style_image, cfg.style_side)).to(device))
                style_grams = [losses.gram(f) for f in style_feats]
        photos = sample_photos(cfg) if master else []
        if master:
            run_dir.mkdir(parents=True, exist_ok=True)
        progress = Progress(cfg.steps, start) if master else None

        # -- the loop
        t_start = time.perf_counter()
        for step in range(start, cfg.steps):
            rng = np.random.default_rng([cfg.seed, rank, step])
            trng = torch.Generator().manual_seed(int(rng.integers(2**62)))
            x, target = data.sample(rng, cfg.batch)
            # perturbed on the CPU, where trng lives, then both moved to the device
            xp, dy, dx = losses.perturb(x, trng)
            x, xp = x.to(device), xp.to(device)
            for group in g_opt.param_groups:
                group["lr"] = lr_at(cfg, step)

            # frame and perturbed frame go through the generator as one batch
            both = model(torch.cat([x, xp]))
            y, yp = both[: len(x)], both[len(x):]
            logs = {}
            y_feats_style, y_feats_content = loss_net(y)
            if teacher is None:
                with torch.no_grad():
                    _, x_content = loss_net(x)
                logs["style"] = cfg.style_weight * losses.style_loss(y_feats_style, style_grams)
                logs["content"] = cfg.content_weight * losses.content_loss(y_feats_content, x_content)
                logs["tv"] = cfg.tv_weight * losses.tv_loss(y)
            else:
                target = target.to(device)
                with torch.no_grad():
                    t_style, _ = loss_net(target)
                logs["l1"] = cfg.l1_weight * (y - target).abs().mean() * 10.0
                logs["edges"] = cfg.edge_weight * losses.gradient_l1(y, target)
                logs["perceptual"] = cfg.content_weight * losses.content_loss(y_feats_style, t_style)
            logs["stability"] = cfg.stability_weight * losses.stability_loss(y, yp, dy, dx)
            if critic is not None:
                g_adv, d_loss = losses.adversarial_losses(critic, y, target)
                logs["adv"] = cfg.adversarial_weight * g_adv
            total = sum(logs.values())

            g_opt.zero_grad(set_to_none=True)
            total.backward()
            g_opt.step()
            if critic is not None:
                d_opt.zero_grad(set_to_none=True)
                d_loss.backward(inputs=list(critic.parameters()))
                d_opt.step()

            if master:
                if step % cfg.log_every == 0 or step == cfg.steps - 1:
                    # .item() is a host-device sync point: only on log steps
                    values = {"loss": total.item(), **{k: v.item() for k, v in logs.items()}}
                    history.append({"step": step, **values})
                    progress.update(step, values)
                done = step + 1
                if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                    state = {"step": done, "config": cfg.to_dict(),
                             "generator": generator.state_dict(), "g_opt": g_opt.state_dict(),
                             "history": history}
                    if critic:
                        state |= {"critic": critic.state_dict(), "d_opt": d_opt.state_dict()}
                    save_atomic(state, ckpt_path)
                if done % cfg.sample_every == 0 or done == cfg.steps:
                    save_grid(generator.eval(), photos, teacher, run_dir / f"samples_{done:06d}.png")
                    generator.train()
        if progress:
            progress.close()

        # -- export
        if master and export:
            checks = [cv2.cvtColor(p, cv2.COLOR_RGB2BGR) for p in photos[:2]]
            meta_training = cfg.to_dict() | {
                "steps_done": cfg.steps, "seconds_this_run": round(time.perf_counter() - t_start),
                "resumed_from_step": start}
            out = export_onnx(generator.cpu().eval(), Path(cfg.out_dir) / f"{cfg.name}.onnx",
                              style=cfg.name, description=cfg.description,
                              training=meta_training, check_images=checks)
            print(f"wrote {out}; run it with: livestyle run --style {out.stem}", file=sys.stderr)
            return out
        return None
    finally:
        if ddp:
            dist.destroy_process_group()
