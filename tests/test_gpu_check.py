"""benchmarks/gpu_check.sh, as far as it runs without a GPU: its arguments, and its refusal
to count a skipped test as a pass (in --tests-only mode, which needs no GPU)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from livestyle.gpu import has_cuda

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def run(*args: str, tmp_path: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "out")}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=timeout)


def test_help_and_bad_arguments(tmp_path):
    shown = run("--help", tmp_path=tmp_path)
    assert shown.returncode == 0 and "--tests-only" in shown.stdout
    for args, words in [(("--bogus",), "unknown argument: --bogus"),
                        (("--styles", "cartoon"), "two style names"),
                        (("--out",), "--out needs a folder"),
                        (("--pytest",), "--pytest needs")]:
        out = run(*args, tmp_path=tmp_path)
        assert out.returncode == 2 and words in out.stderr, (args, out.stderr)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU")
def test_without_a_gpu_it_stops_before_installing_anything(tmp_path):
    out = run(tmp_path=tmp_path)
    assert out.returncode == 2 and "no NVIDIA GPU" in out.stdout
    assert "install" not in out.stdout.split("no NVIDIA GPU")[1]


@pytest.mark.skipif(has_cuda(), reason="this machine has a GPU: its GPU tests would run")
def test_skipped_gpu_tests_are_a_failure_not_a_pass(tmp_path):
    """Here every GPU test skips (no device): pytest itself exits 0, the script must not."""
    out = run("--tests-only", tmp_path=tmp_path)
    assert out.returncode == 1, out.stdout
    assert "skipped: on a GPU machine a skip is a check that did not run" in out.stdout
    assert "0 passed" in out.stdout
    assert (tmp_path / "out" / "gpu-tests.xml").is_file()
    assert "FAILED" in (tmp_path / "out" / "gpu_check.log").read_text()


def test_a_selection_that_passes_or_fails_is_reported_as_such(tmp_path):
    out = run("--tests-only", "--pytest", "tests/test_gpu_path.py -k test_fits_profile",
              tmp_path=tmp_path)
    assert out.returncode == 0 and "1 passed, 0 failed, 0 skipped" in out.stdout, out.stdout
    failing = tmp_path / "test_failing.py"
    failing.write_text("def test_fails():\n    assert False\n")
    out = run("--tests-only", "--pytest", str(failing), tmp_path=tmp_path)
    assert out.returncode == 1 and "1 failed" in out.stdout, out.stdout
    out = run("--tests-only", "--pytest", "tests/test_gpu_path.py -k no_such_test",
              tmp_path=tmp_path)
    assert out.returncode == 1 and "no test ran" in out.stdout, out.stdout


def test_livestyle_imports_without_openvino_pyav_or_pyvirtualcam():
    """What the lent GPU machine lacks: the bench and GPU backends must not need them."""
    code = ("import sys\n"
            "for m in ('openvino', 'av', 'pyvirtualcam'):\n"
            "    sys.modules[m] = None\n"
            "import livestyle.bench, livestyle.cli, livestyle.backends.tensorrt\n"
            "import livestyle.backends.torch_cuda\n"
            "from livestyle.cli import main\n"
            "try:\n"
            "    main(['bench', '--help'])\n"
            "except SystemExit as e:\n"
            "    sys.exit(e.code)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "--backends" in out.stdout, out.stderr


def test_a_spent_budget_fails_the_step_instead_of_running_it_without_a_limit(tmp_path):
    """`timeout $(left)` with the budget spent was `timeout 0` (no limit at all) or a negative
    one: now the step is not run, and the check fails saying why."""
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "out"),
           "GPU_CHECK_BUDGET_S": "0"}
    out = subprocess.run(["bash", str(SCRIPT), "--tests-only", "--pytest",
                          "tests/test_gpu_path.py -k test_fits_profile"],
                         cwd=REPO, env=env, text=True, capture_output=True, timeout=120)
    assert out.returncode == 1, out.stdout
    assert "FAIL: no time left for the tests" in out.stdout, out.stdout
    assert "pytest tests/test_gpu_path.py" not in out.stdout  # not started
    assert not (tmp_path / "out" / "gpu-tests.xml").exists()
