#!/usr/bin/env bash
# Trains the paintings on one NVIDIA GPU, all at once: one trainer per painting, side by side,
# since one of these small networks leaves a GPU mostly idle: the recipe of
# train/make_styles.sh (train/paintings.txt) with 6x the samples it can afford on a CPU
# (batch 8, 2,000 steps against batch 4, 650).
#
# usage: bash train/make_styles_gpu.sh [NAME ...]        (no names: every painting)
# environment (all optional):
#   DATA     a folder holding content/ (photos) and styles/ (the paintings); ../shared/data
#   OUT      where the models go; runs/gpu/models (copy the ones you want into engines/)
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
OUT=${OUT:-runs/gpu/models}
RUNS=${RUNS:-runs/gpu}
MINUTES=${MINUTES:-0}
EXTRA=${EXTRA:-}
S=$DATA/styles
source train/bundled_recipe.sh  # BUNDLED_RECIPE
COMMON=(--crop 160 --batch 8 --steps 2000 --threads 1 --content-dir "$DATA/content" --out-dir "$OUT"
        --sample-every 2000 --checkpoint-every 100 --log-every 50 --max-minutes "$MINUTES"
        --overwrite
        # the bundled recipe predates five of the trainer's defaults for a new painting
        "${BUNDLED_RECIPE[@]}")
mapfile -t PAINTINGS < <(grep -Ev '^(#|[[:space:]]*$)' train/paintings.txt)
# with 6x the samples these did better at a higher style weight (docs/paintings.md, "A lent
# GPU"); later settings win
declare -A GPU_OWN=([udnie]="--style-weight 3" [great-wave]="--style-weight 3")
known=$(printf '%s\n' "${PAINTINGS[@]}" | cut -d'|' -f1)
for n in "$@"; do  # a misspelt name is an error, not a silent skip
  grep -qx -- "$n" <<<"$known" || { echo "unknown painting: $n (known: $(paste -sd' ' <<<"$known"))" >&2; exit 64; }
done
mkdir -p "$RUNS"
pids=()
for spec in "${PAINTINGS[@]}"; do
  IFS='|' read -r name image desc own <<<"$spec"
  image=$S/$image
  own="$own ${GPU_OWN[$name]:-}"
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
echo "make_styles_gpu: ${#pids[@]} trainers, $failed failed; models in $OUT"
# a trainer stopped by MINUTES exported fewer steps than asked: say which
"${PYTHON:-python3}" - "$OUT" <<'EOF'
import sys
from pathlib import Path

from livestyle.styles import read_style

for path in sorted(Path(sys.argv[1]).glob("*.onnx")):
    t = read_style(path).training
    if t.get("steps_done", t.get("steps")) < t.get("steps", 0):
        print(f"  {path.name}: stopped at step {t['steps_done']} of {t['steps']} (MINUTES)")
EOF
exit "$failed"
