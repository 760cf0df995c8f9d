"""`python -m train.record`: engines/README.md, the record of every bundled style.

Everything but the provenance is read back from the models' own metadata (train/export.py),
so the record cannot drift from what ships.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from livestyle.atomic import write_atomic
from livestyle.styles import BUNDLED_DIR, read_style

# From ../shared/data/SOURCES.md: the artwork, where the file came from, and why it is free.
PROVENANCE = {
    "starry_night.jpg": "Vincent van Gogh, The Starry Night, 1889. agileguy/cli-setup @ 0dfc5d1a49. "
                        "Public domain (artist d. 1890; faithful 2D reproduction).",
    "great_wave.jpg": "Katsushika Hokusai, The Great Wave off Kanagawa, c.1830-32. agileguy/cli-setup "
                      "@ 0dfc5d1a49. Public domain (artist d. 1849).",
    "the_scream.jpg": "Edvard Munch, The Scream, 1893. jcjohnson/fast-neural-style @ 813c834419. "
                      "Public domain (artist d. 1944; pre-1929 in the US).",
    "composition_vii.jpg": "Wassily Kandinsky, Composition VII, 1913. jcjohnson/fast-neural-style @ "
                           "813c834419. Public domain (artist d. 1944; pre-1929 in the US).",
    "udnie.jpg": "Francis Picabia, Udnie, 1913. jcjohnson/fast-neural-style @ 813c834419. Public "
                 "domain (artist d. 1953; published 1913).",
    "the_kiss.jpg": "Gustav Klimt, The Kiss, 1907-08. agileguy/cli-setup @ 0dfc5d1a49. Public domain "
                    "(artist d. 1918).",
    "grande_jatte.jpg": "Georges Seurat, A Sunday Afternoon on the Island of La Grande Jatte, 1884-86. "
                        "agileguy/cli-setup @ 0dfc5d1a49. Public domain (artist d. 1891).",
    "shipwreck_minotaur.jpg": "J. M. W. Turner, The Wreck of a Transport Ship ('Shipwreck of the "
                              "Minotaur'), c.1810. lengstrom/fast-style-transfer @ 0d3d981f7a. "
                              "Public domain (artist d. 1851).",
    "mondrian_composition.jpg": "Piet Mondrian, grid composition c.1913. xunhuang1995/AdaIN-style @ "
                                "6d8ac287f3. Public domain (artist d. 1944; pre-1929 in the US).",
    "impression_sunrise.jpg": "Claude Monet, Impression, Sunrise, 1872. agileguy/cli-setup @ "
                              "0dfc5d1a49. Public domain (artist d. 1926).",
    "woman_with_hat.jpg": "Henri Matisse, Woman with a Hat, 1905. jcjohnson/neural-style @ 07c4b8299f. "
                          "Public domain (artist d. 1954; pre-1929 in the US).",
}
TEACHER_NOTE = ("Our own filter in train/teachers/; the student learned it on the content photos "
                "of ../shared/data/content (training data only, not redistributed).")

# How each bundled painting was made: its steps, oldest first, each with the commit that
# holds the model it made where one does; the last is the command rebuilt from its model.
RECIPE = ("400 steps of the recipe (the coarse style term at 1, `--face-weight 0.5`, the "
          "stability loss at 0.3 over the last quarter, exported as the moving average)")
HISTORY = {
    "composition-vii": [
        "2,000 steps on a GPU (`bash train/make_styles_gpu.sh composition-vii`: 0.410 style "
        "ratio, not shipped)",
        "650 steps on the CPU with `--style-weight 3 --tv-weight 0.2` (2026-12-04; in git at "
        "commit ded2c0a)",
        "2026-12-05 (thirteenth session): " + RECIPE + " with its own style and TV weights"],
    "grande-jatte": [
        "650 steps of `bash train/make_styles.sh paintings` (2026-12-03)",
        "400 steps at style weight 4, then 400 at style weight 5 on the CPU (2026-12-04, "
        "ninth session; in git at commit 5b424c5)",
        "400 steps with the coarse style term at 1 and `--face-weight 1`, exported as the "
        "moving average (twelfth session; in git at commit 78c2269)",
        "2026-12-05 (thirteenth session): " + RECIPE + " at style weight 5"],
    "impression-sunrise": [
        "2,000 steps on a GPU (in git at commit 62549f0)",
        "400 steps on the CPU with `--skin-weight 0.6` (2026-12-04, eighth session; in git at "
        "commit 6fdb5a7)",
        "2026-12-05 (twelfth session): 400 steps with the coarse style term at 1, style weight "
        "4 and `--face-weight 0.5`, exported as the moving average"],
    "mondrian": [
        "650 steps of its line of train/paintings.txt (the trainer's defaults for a new "
        "painting then, without the later `--ema`; one thread) into a scratch folder "
        "(2026-12-05, eleventh session)",
        "400 steps with `--coarse-style-weight 1 --face-weight 0.7` (in git at commit 690967f)",
        "2026-12-05 (thirteenth session): 400 steps at style weight 3 with the stability loss "
        "at 1 over the last quarter, exported as the moving average"],
    "shipwreck": [
        "2,000 steps on a GPU",
        "400 more steps of its own recipe on the CPU, nothing changed (2026-12-04; in git at "
        "commit 52f047c)",
        "400 steps with `--coarse-style-weight 0.5 --face-weight 0.3` (tenth session; in git "
        "at commit 024fae5)",
        "2026-12-05 (thirteenth session): " + RECIPE],
    "starry-night": [
        "2,000 steps on a GPU (in git at commit 2e9c223)",
        "400 more steps of its own recipe on the CPU (2026-12-04, ninth session; in git at "
        "commit 1d9631c)",
        "2026-12-05 (twelfth session): " + RECIPE + " (in git at commit 974762a)",
        "2026-12-05 (fourteenth session): 400 more steps of the same with the tone term at 0.3 "
        "(`--tone-weight 0.3`: the painting's light-dark contrast; its outputs' luminance SD was "
        "55% of the painting's, now 88%)"],
    "the-kiss": [
        "650 steps of `bash train/make_styles.sh paintings` (2026-12-03; in git at commit "
        "2e9c223)",
        "400 steps with `--face-weight 0.1` on the CPU (2026-12-04, ninth session; in git at "
        "commit 99f5a6c)",
        "2026-12-05 (twelfth session): " + RECIPE],
    "the-scream": [
        "2,000 steps on a GPU with `--size brush-wide --style-weight 1.5` (in git at commit "
        "ded2c0a)",
        "2026-12-05 (thirteenth session): " + RECIPE + ", with its own network, style weight "
        "1.5 and the painting at 614 px"],
    "udnie": [
        "earlier bundled versions (brush-wide, 49 of 57 faces) are in git at commit cc823aa",
        "2026-12-05 (fourteenth session): 2,500 steps from scratch on the CPU, `python -m train "
        "--name ud-large --size brush-large --style-image ../shared/data/styles/udnie.jpg "
        "--steps 2500 --lr-final 0.0001 --style-side 614 --tv-weight 0.2 --skin-weight 0 "
        "--stability-weight 0 --coarse-style-weight 0.5 --face-weight 0.5 --native-side 384 "
        "--threads 1` (about 30 minutes)",
        "600 steps from it with `--style-weight 5.5 --coarse-style-weight 2 --face-weight 1 "
        "--tone-weight 0.3` (the same network, TV, stability and sides; `--name ud-s55t`)",
        "600 more steps of the same from that model: the command shown, whose `--init-from` "
        "names the previous step's model (a scratch file, not kept; the steps above rebuild "
        "it)"],
    "woman-with-hat": [
        "2,000 steps on a GPU (in git at commit 99f5a6c)",
        "2026-12-05 (twelfth session): " + RECIPE],
}


def command(training: dict) -> str:
    """The training command, rebuilt from the config stored in the model: every setting
    that differs from TrainConfig's defaults, so it reproduces this very model."""
    from .config import LEGACY, TrainConfig, mode_defaults

    # the defaults that depend on the mode as TrainConfig resolves them
    defaults = ({f.name: f.default for f in dataclasses.fields(TrainConfig)}
                | mode_defaults(painting=not training.get("teacher")))
    # settings the model's mode never reads
    unused = ({"loss_norm", "style_weight", "style_weights", "style_side", "tv_weight",
               "coarse_style_weight", "skin_weight", "face_weight", "tone_weight"}
              if training.get("teacher")
              else {"l1_weight", "l2_weight", "edge_weight", "line_weight", "base_weight",
                    "adversarial_weight"})
    if training.get("teacher") and not training.get("content_weight"):
        unused |= {"style_taps", "content_blocks", "loss_net"}  # no loss network at all
    # where it was written, and how long it was allowed to run, are not its recipe
    unused |= {"name", "description", "out_dir", "run_dir", "content_dir", "max_minutes"}
    flags = [f"--name {training.get('name', '?')}"]
    for key, value in (LEGACY | training).items():
        if key in defaults and key not in unused and value != defaults[key]:
            if key == "style_image":
                value = "../shared/data/styles/" + Path(value).name
            flags.append(f"--{key.replace('_', '-')} {value}")
    return "`python -m train " + " ".join(flags) + "`"


def main() -> int:
    rows = ["# Bundled styles", "",
            "Made by our trainer (`train/`) with `train/make_styles.sh` or, on a GPU, "
            "`train/make_styles_gpu.sh`; each `.onnx` carries its "
            "full training config in its metadata (`livestyle.training`), from which the command "
            "below is rebuilt (settings that differ from the defaults). Regenerate this table "
            "with `python -m train.record`.", "",
            "| style | made from | command | steps | wall time | MAC/px | file | provenance and licence |",
            "|---|---|---|---|---|---|---|---|"]
    paintings = {p.stem for p in BUNDLED_DIR.glob("*.onnx")
                 if not read_style(p).training.get("teacher")}
    if paintings != HISTORY.keys():  # every bundled painting's history, and no retired one's
        raise SystemExit(f"train/record.py HISTORY does not match the bundled paintings: "
                         f"missing {sorted(paintings - HISTORY.keys())}, "
                         f"not bundled {sorted(HISTORY.keys() - paintings)}")
    for path in sorted(BUNDLED_DIR.glob("*.onnx")):
        s = read_style(path)
        t = s.training
        images = (t.get("style_image") or "?").split(",")
        source = (f"teacher `{t['teacher']}`" if t.get("teacher")
                  else Path(images[t.get("style_index", 0)]).name)
        prov = TEACHER_NOTE if t.get("teacher") else PROVENANCE.get(source, "see ../shared/data/SOURCES.md")
        secs = t.get("train_seconds") or t.get("seconds_this_run")
        wall = f"{secs / 60:.1f} min" if secs else "?"
        if t.get("device", "").startswith("cuda"):  # recorded by the trainer
            wall += " on a GPU"
        if t.get("resumed_from_step") and t["resumed_from_step"] == t.get("steps_done"):
            wall = "see below"  # exported from a checkpoint made before times were recorded
        elif t.get("resumed_from_step"):
            wall += f" (last resumed at step {t['resumed_from_step']})"
        how = command(t) if len(images) == 1 else (
            f"`bash train/make_styles.sh paintings`: one network with conditional instance norm "
            f"for {len(images)} paintings, this is style {t.get('style_index', 0)}")
        if t.get("recalibrated"):  # exported, then calibrated again (train/ink.py)
            r = t["recalibrated"]
            how += (f", then `python -m train.ink engines/{s.name}.onnx --out "
                    f"engines/{s.name}.onnx --overwrite` (ink gain {r['ink_gain']:g}, bias "
                    f"{r['ink_bias']:+g} on top of the first calibration; enlarged "
                    f"{'pixel for pixel' if s.upscale == 'nearest' else 'bilinearly'})")
        rows.append(f"| {s.name} | {source} | {how} | {t.get('steps_done', '?')} | {wall} | "
                    f"{s.macs_per_pixel} | {path.stat().st_size / 1024:.0f} KB | {prov} |")
    rows += ["", "Wall times are on a shared 2-core VM with no GPU (an AMD EPYC in some sessions, "
             "an Intel Xeon in others), often with other jobs running, and count every stretch "
             "of a resumed run (older models: only the last one), except those marked 'on a "
             "GPU'.",
             "", "The paintings' recipe and how it was found: docs/paintings.md. How each painting "
             "was made, oldest step first; the last step is its command above (a commit in "
             "brackets holds the model that step made; `--init-from engines/NAME.onnx` in a "
             "command is the model bundled before it):", ""] + [
                 f"- **{name}**: {'; then '.join(steps)}." for name, steps in HISTORY.items()] + [
             "", "GPU models: trained on 2026-12-04 by `bash train/make_styles_gpu.sh` on a lent "
             "NVIDIA H200, all side by side, with 6x the samples (batch 8, 2,000 steps); that "
             "machine could be sent only 64 MiB, so they read a copy of ../shared/data/content "
             "with each photo shrunk to a 640-px long side at JPEG quality 80 (the trainer takes "
             "them to 384 px anyway), and the loss network's weights rounded to fp16 and back "
             "(its features moved by 0.1-0.25%). Seven paintings run at a 320-px native side "
             "(the `--native-side 320` in their commands): for those not retrained since, it was "
             "set after training with train.export.set_native_side, which changes no weight. "
             "great-wave was bundled until 2026-12-05 and is left out since (below the floors: "
             "docs/paintings.md, \"Mondrian in, great-wave and udnie out\"); its model is in git "
             "at commit cc823aa. udnie, left out with it, is back (fourteenth session).",
             "", "The cartoon has two stages (`bash train/make_styles.sh cartoon`). Its "
             "`--init-from engines/cartoon.onnx` is the previous bundled cartoon, stage 1: the "
             "`toon` network trained 11,500 steps at a 640-px long side (about 1 h 30 min to "
             "step 6,403 on 2026-11-25 and 86 min from there on 2026-11-26, one thread, about 1 "
             "step a second, plus a 4-minute teacher pass over the photos at each start). Stage 2, "
             "the row above, grew its head to 16 channels and 3 convolutions (train/grow.py) and "
             "trained it at the teacher's 512-px working side, where it runs; the weights shipped "
             "are the moving average of its last steps (--ema, from the step it was resumed at), "
             "and its ink was calibrated on 16 training photos (train/ink.py). Its export "
             "predates the upscale in a style's metadata, so it was then calibrated again and "
             "marked to be enlarged its teacher's way (the command's last step); a new export "
             "does both itself."]
    out = BUNDLED_DIR / "README.md"
    write_atomic(out, "\n".join(rows) + "\n")
    print(out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
