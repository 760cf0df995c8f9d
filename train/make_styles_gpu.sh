#!/usr/bin/env bash
# Trains the paintings on one NVIDIA GPU, all at once: one trainer per painting, side by side,
# since one of these small networks leaves a GPU mostly idle. SIDE=384: the recipe of
# train/make_styles.sh (train/paintings.txt) with 4x the samples it can afford on a CPU (batch
# 8, 2,000 steps); SIDE=640: the same scaled to the whole 640x480 frame.
#
# usage: bash train/make_styles_gpu.sh [NAME ...]        (no names: every painting)
# environment (all optional):
#   SIDE     the native side, 384 or 640; 384
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
SIDE=${SIDE:-384}
DATA=${DATA:-../shared/data}
OUT=${OUT:-engines}
RUNS=${RUNS:-runs/gpu}
MINUTES=${MINUTES:-0}
EXTRA=${EXTRA:-}
S=$DATA/styles
COMMON=(--batch 8 --steps 2000 --threads 1 --content-dir "$DATA/content" --out-dir "$OUT"
        --sample-every 2000 --checkpoint-every 100 --log-every 50 --max-minutes "$MINUTES"
        --overwrite)
case "$SIDE" in
  384) COMMON+=(--crop 160)
       mapfile -t PAINTINGS < <(grep -v '^#' train/paintings.txt | sed "s#|#|$S/#") ;;
  # the 384-px recipe scaled to a 640-px native side: photos at a 640-px long side, 256-px
  # crops (160 x 640/384), each painting's targets at 1024 px (614 x 640/384; 640 for 384),
  # the brush-half network (brush's trunk at half resolution behind a strided stem, the last
  # conv seeing the photo) or its wide trunk where the 384-px recipe has brush-wide
  640) COMMON+=(--size brush-half --long-side 640 --crop 256)
       mapfile -t PAINTINGS < <(grep -v '^#' train/paintings.txt | sed "s#|#|$S/#" |
         sed -e 's/--style-side 614/--style-side 1024/' -e 's/--size brush-wide/--size brush-half-wide/' \
             -e '/--style-side/!s/$/|--style-side 640/' -e 's/||--style-side/|--style-side/') ;;
  *) echo "SIDE must be 384 or 640, got $SIDE" >&2; exit 64 ;;
esac
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
