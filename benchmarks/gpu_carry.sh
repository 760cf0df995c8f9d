#!/usr/bin/env bash
# Fill benchmarks/carry/ (ignored by git) with what benchmarks/gpu_check.sh installs on a
# lent GPU machine that cannot download anything: pycuda's source archive (built there with
# its nvcc), its pure-Python dependencies, wheels of its two compiled ones for Python
# 3.10-3.14, setuptools and wheel (for --no-build-isolation), and the check photo.
# TensorRT is not carried: its libraries are over a gigabyte. About 3 MiB in all.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=benchmarks/carry
mkdir -p "$CARRY"
# --no-build-isolation: pip reads the archive's metadata with this machine's setuptools and
# numpy instead of fetching a build environment
pip download --no-deps --no-binary :all: --no-build-isolation -d "$CARRY" pycuda
pip download --no-deps --only-binary :all: -d "$CARRY" pytools platformdirs mako \
    typing_extensions setuptools wheel
for py in 3.10 3.11 3.12 3.13 3.14; do
    pip download --no-deps --only-binary :all: --python-version "$py" \
        --platform manylinux2014_x86_64 -d "$CARRY" siphash24 markupsafe
done
photo=../shared/data/content/kodak_kodim01.jpg
if [ -f "$photo" ]; then cp "$photo" "$CARRY/"; fi
du -sh "$CARRY"
