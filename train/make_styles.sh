#!/usr/bin/env bash
# Trains the bundled styles in engines/, one after another, each resumable (--resume).
# Usage: bash train/make_styles.sh [name ...]    (no names: all of them)
# Content photos and paintings come from ../shared/data; see engines/README.md for the record.
set -euo pipefail
cd "$(dirname "$0")/.."
S=../shared/data/styles
# style weight 3: with the U-Net skips the content survives easily, and at weight 1 the
# paintings came out as little more than a colour grade (starry-night, 1000 steps)
COMMON=(--size fast --crop 160 --batch 4 --steps 1000 --style-weight 3 --sample-every 100
        --run-dir runs --resume)
declare -A ARGS=(
  [starry-night]="--style-image $S/starry_night.jpg --style-weight 1 --description Vincent+van+Gogh,+The+Starry+Night+(1889)"
  [great-wave]="--style-image $S/great_wave.jpg --description Hokusai,+The+Great+Wave+off+Kanagawa+(c.1831)"
  [the-scream]="--style-image $S/the_scream.jpg --description Edvard+Munch,+The+Scream+(1893)"
  [composition-vii]="--style-image $S/composition_vii.jpg --description Wassily+Kandinsky,+Composition+VII+(1913)"
  [udnie]="--style-image $S/udnie.jpg --description Francis+Picabia,+Udnie+(1913)"
  [the-kiss]="--style-image $S/the_kiss.jpg --description Gustav+Klimt,+The+Kiss+(1907-08)"
  [grande-jatte]="--style-image $S/grande_jatte.jpg --description Georges+Seurat,+La+Grande+Jatte+(1884-86)"
  [cartoon]="--teacher cartoon --steps 1500 --description Cartoon:+flat+colours+and+clean+outlines+(learned+from+our+cartoon+filter)"
  [sketch]="--teacher sketch --steps 1500 --description Pencil+sketch+(learned+from+our+sketch+filter)"
)
ORDER=(cartoon sketch starry-night great-wave the-scream composition-vii udnie the-kiss grande-jatte)
for name in "${@:-${ORDER[@]}}"; do
  read -r -a extra <<<"${ARGS[$name]}"
  # descriptions are stored with + for spaces in the table above to survive word splitting
  for i in "${!extra[@]}"; do extra[$i]=${extra[$i]//+/ }; done
  # per-style flags come last, so they override the common ones
  echo "== $name: python -m train --name $name ${COMMON[*]} ${extra[*]}"
  python -m train --name "$name" "${COMMON[@]}" "${extra[@]}"
done
