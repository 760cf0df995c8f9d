#!/usr/bin/env bash
# The GPU path checked in one go, on a lent machine with one NVIDIA GPU and nothing to
# download (issue 21). In at most 8 minutes it
#   1. prints the GPU and its driver;
#   2. installs livestyle (no dependencies fetched) and what benchmarks/carry/ holds: pycuda,
#      built here with this machine's nvcc; TensorRT only if its libraries are present
#      (installed, or wheels in carry/), else it says so and leaves TensorRT out;
#   3. runs the GPU tests (pytest -m gpu) and fails on a skip as on a failure: on a GPU
#      machine a skipped test is a check that did not run, not a pass;
#   4. runs `livestyle bench` with torch-cuda (and TensorRT when present) at 720p and 1080p
#      on two styles;
#   5. writes the bench JSON, the test report and summary.txt (one line per backend: fps,
#      ms, precision, GPU memory) under $OUT if set, else benchmarks/results/gpu-<time>/.
# Fill benchmarks/carry/ first, where there is a network: benchmarks/gpu_carry.sh.
# It keeps to a budget of 480 s ($GPU_CHECK_BUDGET_S if set); a step with no time left is
# not run and counts as a failure.
#
# usage: benchmarks/gpu_check.sh [--out DIR] [--carry DIR] [--styles A,B]
#                                [--tests-only] [--no-bench] [--pytest 'ARGS']
#   --tests-only    only step 3 (no GPU info required, nothing installed, no bench)
#   --no-bench      steps 1-3 (e.g. while training shares the GPU: its timings would be
#                   the training's too); bench afterwards with step 4's command
#   --pytest ARGS   the test selection instead of the GPU tests (with --tests-only, this is
#                   how the skip-counting is tested on a machine without a GPU)
# exit status: 0 all passed, 1 something failed or was skipped, 2 usage or no GPU.

set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

BUDGET_S="${GPU_CHECK_BUDGET_S:-480}"  # seconds for the whole check (the variable: for tests)
OUT_DIR="${OUT:-}"
CARRY=benchmarks/carry
STYLES=""
TESTS_ONLY=0
BENCH=1
PYTEST_ARGS=""
PY="${PYTHON:-python3}"

usage() { sed -n '/^# usage:/,/^# exit status/p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || { echo "--out needs a folder" >&2; exit 2; }; OUT_DIR="$2"; shift 2 ;;
        --carry) [ $# -ge 2 ] || { echo "--carry needs a folder" >&2; exit 2; }; CARRY="$2"; shift 2 ;;
        --styles) [ $# -ge 2 ] || { echo "--styles needs two names, A,B" >&2; exit 2; }
                  STYLES="$2"; shift 2 ;;
        --tests-only) TESTS_ONLY=1; shift ;;
        --no-bench) BENCH=0; shift ;;
        --pytest) [ $# -ge 2 ] || { echo "--pytest needs its arguments, quoted" >&2; exit 2; }
                  PYTEST_ARGS="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
if [ -n "$STYLES" ] && ! [[ "$STYLES" =~ ^[^,]+,[^,]+$ ]]; then
    echo "--styles takes two style names, comma-separated (A,B), got: $STYLES" >&2
    exit 2
fi

[ -n "$OUT_DIR" ] || OUT_DIR="benchmarks/results/gpu-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT_DIR" || exit 2
exec > >(tee -a "$OUT_DIR/gpu_check.log") 2>&1

STATUS=0
fail() { echo "FAIL: $*"; STATUS=1; }
left() { echo $((BUDGET_S - SECONDS)); }  # seconds left of the budget (may be <= 0)
# a step's time limit: never `timeout 0` (no limit at all) or a negative one; a step with no
# time left is not run (the caller says so and fails)
at_least_1() { if [ "$1" -ge 1 ]; then echo "$1"; else echo 1; fi; }
step() { echo; echo "== $* ($(left) s left)"; }

# ---------------------------------------------------------------- 1. the GPU
step "GPU and driver"
if ! nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap \
        --format=csv,noheader 2>&1; then
    if [ "$TESTS_ONLY" = 0 ]; then
        echo "no NVIDIA GPU or driver here (nvidia-smi failed): this script is for a GPU machine"
        exit 2
    fi
    echo "(no GPU: --tests-only goes on)"
fi

# ---------------------------------------------------------------- 2. installs
HAVE_TRT=0
if [ "$TESTS_ONLY" = 0 ]; then
    step "install (nothing downloaded)"
    if ! "$PY" -c "import setuptools" 2>/dev/null; then
        "$PY" -m pip install -q --no-index --find-links "$CARRY" setuptools wheel \
            || fail "setuptools is missing and not carried ($CARRY)"
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . \
        || fail "livestyle does not install without fetching"
    "$PY" - <<'PYEOF' || fail "livestyle needs a package it does not use here"
import sys
for name in ("openvino", "av", "pyvirtualcam"):  # absent is fine where they are unused
    if name not in sys.modules:
        sys.modules[name] = None
import livestyle.bench, livestyle.cli, livestyle.backends.tensorrt
import livestyle.backends.torch_cuda
print("livestyle imports without OpenVINO, PyAV and pyvirtualcam")
PYEOF
    if "$PY" -c "import pycuda.driver" 2>/dev/null; then
        echo "pycuda: already installed"
    elif ls "$CARRY"/pycuda-*.tar.gz >/dev/null 2>&1; then
        nvcc_path=$(command -v nvcc || true)
        if [ -n "$nvcc_path" ]; then
            export CUDA_ROOT="${CUDA_ROOT:-$(dirname "$(dirname "$nvcc_path")")}"
            half=$(( $(left) / 2 ))
            if [ "$half" -lt 1 ]; then
                fail "pycuda: no time left to build it ($(left) s of ${BUDGET_S} s left)"
            else
                echo "pycuda: building from $(ls "$CARRY"/pycuda-*.tar.gz) with $nvcc_path"
                timeout "$(at_least_1 "$half")" "$PY" -m pip install -q --no-index \
                    --find-links "$CARRY" --no-build-isolation pycuda
                rc=$?
                if [ "$rc" = 124 ]; then
                    fail "pycuda: its build did not finish in its $half s (half the time left)"
                elif [ "$rc" != 0 ]; then
                    fail "pycuda does not build here (pip exit $rc, see above)"
                fi
            fi
        else
            fail "pycuda: no nvcc on PATH to build it with"
        fi
    else
        fail "pycuda: not installed and not carried (run benchmarks/gpu_carry.sh first)"
    fi
    if "$PY" -c "import tensorrt" 2>/dev/null; then
        HAVE_TRT=1
    elif ls "$CARRY"/tensorrt*.whl >/dev/null 2>&1; then
        "$PY" -m pip install -q --no-index --find-links "$CARRY" tensorrt && HAVE_TRT=1
    fi
    if [ "$HAVE_TRT" = 1 ]; then
        echo "TensorRT: $("$PY" -c 'import tensorrt; print(tensorrt.__version__)')"
    else
        echo "TensorRT: not present here, and its libraries (over a gigabyte, from NVIDIA's"
        echo "  index) are too large to carry: the TensorRT tests and bench rows are left out"
    fi
fi

# ---------------------------------------------------------------- 3. tests
step "tests (a skip counts as a failure)"
photo=../shared/data/content/kodak_kodim01.jpg
if [ ! -f "$photo" ] && [ -f "$CARRY/kodak_kodim01.jpg" ]; then
    export LIVESTYLE_CHECK_IMAGE="$CARRY/kodak_kodim01.jpg"
fi
if [ -z "$PYTEST_ARGS" ]; then
    PYTEST_ARGS="tests/test_gpu_path.py -m gpu"
    [ "$HAVE_TRT" = 1 ] || [ "$TESTS_ONLY" = 1 ] || PYTEST_ARGS="$PYTEST_ARGS -k 'not tensorrt'"
fi
report="$OUT_DIR/gpu-tests.xml"
rm -f "$report"
tests_left=$(left)
if [ "$tests_left" -le 0 ]; then
    fail "no time left for the tests ($tests_left s of ${BUDGET_S} s left): not run"
else
echo "pytest $PYTEST_ARGS"
eval "timeout $(at_least_1 "$tests_left") \"\$PY\" -m pytest -q -rs -p no:cacheprovider --junitxml=\"\$report\" $PYTEST_ARGS"
pytest_rc=$?
"$PY" - "$report" "$pytest_rc" <<'PYEOF' || STATUS=1
import sys
import xml.etree.ElementTree as ET

path, rc = sys.argv[1], int(sys.argv[2])
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError) as e:
    sys.exit(f"FAIL: no test report ({e}); pytest exited {rc}")
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
count = {k: sum(int(s.get(k, 0)) for s in suites)
         for k in ("tests", "failures", "errors", "skipped")}
ran = count["tests"] - count["skipped"]
print(f"tests: {count['tests']} collected, {ran - count['failures'] - count['errors']} "
      f"passed, {count['failures'] + count['errors']} failed, {count['skipped']} skipped")
problems = []
if count["tests"] == 0:
    problems.append("no test ran")
if count["skipped"]:
    problems.append(f"{count['skipped']} skipped: on a GPU machine a skip is a check that "
                    "did not run, not a pass")
if count["failures"] or count["errors"] or rc not in (0, 5):
    problems.append(f"failures (pytest exited {rc})")
if problems:
    sys.exit("FAIL: " + "; ".join(problems))
PYEOF
fi

# ---------------------------------------------------------------- 4. bench
if [ "$TESTS_ONLY" = 0 ] && [ "$BENCH" = 1 ]; then
    step "bench"
    if [ -z "$STYLES" ]; then  # the first two bundled styles
        STYLES=$(ls engines/*.onnx | head -2 | xargs -n1 basename | sed 's/\.onnx$//' | paste -sd,)
    fi
    names="torch-cuda"
    [ "$HAVE_TRT" = 1 ] && names="tensorrt,torch-cuda"
    bench_left=$(left)
    if [ "$bench_left" -lt 60 ]; then
        fail "no time left for the bench ($bench_left s of ${BUDGET_S} s left): not run"
    else
        timeout "$(at_least_1 $(( bench_left - 10 )))" "$PY" -m livestyle bench --backends "$names" \
            --resolutions 720p,1080p --style "$STYLES" --frames 60 --warmup 10 \
            --seconds 3 --no-reference --out "$OUT_DIR/bench-gpu.json" \
            || fail "livestyle bench (exit $?)"
    fi
    # ------------------------------------------------------------ 5. summary
    "$PY" - "$OUT_DIR/bench-gpu.json" "$OUT_DIR/summary.txt" <<'PYEOF' || fail "no summary"
import json
import sys

report = json.load(open(sys.argv[1]))
lines = [f"GPU: {report['machine'].get('gpu')}; versions: "
         + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v)]
by_backend: dict[str, list] = {}
for r in report["model"]:
    by_backend.setdefault(r["backend"], []).append(r)
for backend, rows in by_backend.items():
    cells = [f"{r['style']} {r['resolution']} {r['fps']} fps {r['median_ms']} ms"
             for r in rows]
    mem = max((r.get("gpu_memory_backend_mib") or 0) for r in rows)
    lines.append(f"{backend}: " + "; ".join(cells) + f"; precision {rows[0]['precision']}; "
                 f"GPU memory {mem:.0f} MiB (most one backend added)")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
fi

echo
[ "$STATUS" = 0 ] && echo "gpu_check: all passed ($SECONDS s)" \
                  || echo "gpu_check: FAILED ($SECONDS s); see $OUT_DIR/gpu_check.log"
echo "results in $OUT_DIR"
exit "$STATUS"
