#!/usr/bin/env bash
# Trains the paintings at a 640-px native side (the whole 640x480 frame) on one NVIDIA GPU,
# all at once: one trainer per painting, side by side, since one of these small networks
# leaves a GPU mostly idle. On a CPU, train/make_styles.sh trains the 384-px ones instead.
#
# usage: bash train/make_styles_gpu.sh [NAME ...]        (no names: every painting)
# environment (all optional):
#   DATA     a folder holding content/ (photos) and styles/ (the paintings); ../shared/data
#   OUT      where the models go; engines
#   RUNS     checkpoints and sample grids; runs/gpu
#   MINUTES  each trainer stops after this many minutes and exports what it learned
#            (--max-minutes); 0: every step
#   PYTHON   the interpreter with torch; python3
#   EXTRA    settings added to every painting's (later ones win), e.g. "--style-weight 3";
#            to train such a variant beside the recipe, give it its own OUT and RUNS
# A run with a checkpoint in RUNS continues (--resume). Exit status: the number of trainers
# that failed (0: every model written).
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
OUT=${OUT:-engines}
RUNS=${RUNS:-runs/gpu}
MINUTES=${MINUTES:-0}
EXTRA=${EXTRA:-}
S=$DATA/styles
# The recipe of train/make_styles.sh scaled from a 384-px to a 640-px native side: photos at
# a 640-px long side, 256-px crops (160 x 640/384), each painting's targets 1024 px long
# (614 x 640/384; 640 where the 384-px recipe used 384), the brush-half network (brush's trunk
# at half resolution behind a strided stem, the last conv seeing the photo) or its wide trunk
# where the 384-px recipe used brush-wide; batch 8 (the GPU pays little for it).
COMMON=(--size brush-half --long-side 640 --crop 256 --batch 8 --steps 2000 --threads 1
        --content-dir "$DATA/content" --out-dir "$OUT" --sample-every 2000
        --checkpoint-every 100 --log-every 50 --max-minutes "$MINUTES" --overwrite)
PAINTINGS=(
  "starry-night|$S/starry_night.jpg|Vincent van Gogh, The Starry Night (1889)|--style-side 1024"
  "great-wave|$S/great_wave.jpg|Hokusai, The Great Wave off Kanagawa (c.1831)|--style-side 1024"
  "the-scream|$S/the_scream.jpg|Edvard Munch, The Scream (1893)|--size brush-half-wide --style-side 1024 --style-weight 1.5"
  "udnie|$S/udnie.jpg|Francis Picabia, Udnie (1913)|--tv-weight 0.2 --size brush-half-wide --style-side 1024"
  "composition-vii|$S/composition_vii.jpg|Wassily Kandinsky, Composition VII (1913)|--tv-weight 0.2 --style-side 1024 --style-weight 2.5"
  "the-kiss|$S/the_kiss.jpg|Gustav Klimt, The Kiss (1907-08)|--style-side 1024"
  "grande-jatte|$S/grande_jatte.jpg|Georges Seurat, A Sunday Afternoon on La Grande Jatte (1884-86)|--style-side 1024 --style-weight 2.5"
  "woman-with-hat|$S/woman_with_hat.jpg|Henri Matisse, Woman with a Hat (1905)|--style-side 1024 --style-weight 2.5"
  "impression-sunrise|$S/impression_sunrise.jpg|Claude Monet, Impression, Sunrise (1872)|--style-side 1024"
  "shipwreck|$S/shipwreck_minotaur.jpg|J. M. W. Turner, The Shipwreck of the Minotaur (c.1810)|--style-side 640"
)
known=$(printf '%s\n' "${PAINTINGS[@]}" | cut -d'|' -f1)
for n in "$@"; do  # a misspelt name is an error, not a silent skip
  grep -qx -- "$n" <<<"$known" || { echo "unknown painting: $n (known: $(paste -sd' ' <<<"$known"))" >&2; exit 64; }
done
mkdir -p "$RUNS"
pids=()
for spec in "${PAINTINGS[@]}"; do
  IFS='|' read -r name image desc own <<<"$spec"
  if (($#)) && ! printf '%s\n' "$@" | grep -qx -- "$name"; then continue; fi
  resume=()
  [ -f "$RUNS/$name/checkpoint.pt" ] && resume=(--resume)
  # shellcheck disable=SC2086  # $own and $EXTRA are lists of settings
  "${PYTHON:-python3}" -m train --name "$name" --style-image "$image" --description "$desc" "${COMMON[@]}" \
    --run-dir "$RUNS" $own $EXTRA "${resume[@]}" >"$RUNS/$name.log" 2>&1 &
  pids+=("$!")
  echo "started $name (pid $!): log $RUNS/$name.log"
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
echo "make_styles_gpu: ${#pids[@]} trainers, $failed failed"
exit "$failed"
