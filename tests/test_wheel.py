"""The package as users get it from an index: a wheel, installed into a fresh environment.

The wheel is built from a copy of this checkout and installed into a new venv (which reads this
interpreter's site-packages for the heavy dependencies, already here, so nothing is downloaded),
then the installed `livestyle` runs from a folder outside the repository.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLED = sorted(p.stem for p in (REPO / "engines").glob("*.onnx"))


def checkout_copy(dst: Path) -> Path:
    """This checkout's files (tracked, and untracked ones git does not ignore) copied to `dst`:
    pip builds a local project in place, and a build/ folder left by an earlier build keeps
    files since deleted (a style no longer bundled) and would put them in the wheel."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"],
                                cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked archive)
        return Path(shutil.copytree(REPO, dst, ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "*.egg-info", "runs", "__pycache__", ".venv*")))
    for name in filter(None, listed.split(b"\0")):
        src = REPO / os.fsdecode(name)
        if src.is_file():  # not one deleted from the working tree but still in the index
            target = dst / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dst


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    source = checkout_copy(root / "source")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(root / "dist"), str(source)], check=True, timeout=600)
    wheel = next((root / "dist").glob("livestyle-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=300)
    venv_python = root / "venv" / "bin" / "python"
    # the heavy dependencies come from this interpreter's own site-packages, also when it is
    # itself a venv (where --system-site-packages would reach the base Python's, without them)
    venv_site = subprocess.run([str(venv_python), "-c", "import site; print(site.getsitepackages()[0])"],
                               capture_output=True, text=True, check=True).stdout.strip()
    Path(venv_site, "outer-site-packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(venv_python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, timeout=300)
    work = root / "work"  # outside the repository: nothing can come from the checkout
    work.mkdir()
    env = dict(os.environ, LIVESTYLE_STYLES=str(root / "user-styles"), PYTHONPATH="")
    (root / "user-styles").mkdir()
    return wheel, root / "venv" / "bin", work, env


def test_wheel_holds_the_styles_and_no_top_level_trainer(wheel_env):
    wheel = wheel_env[0]
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(Path(n).stem for n in names if n.startswith("livestyle/engines/")
                  and n.endswith(".onnx")) == BUNDLED
    assert {"livestyle/train/loop.py", "livestyle/train/content_faces.json"} <= set(names)
    tops = {n.split("/")[0] for n in names}
    assert tops == {"livestyle", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1]
                    + ".dist-info"}, tops


def test_installed_wheel_lists_and_runs_the_bundled_styles(wheel_env, tmp_path):
    _, bin_dir, work, env = wheel_env
    where = subprocess.run([str(bin_dir / "python"), "-c", "import livestyle; print(livestyle.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    assert str(bin_dir.parent) in where.stdout, "the test must run the installed wheel"

    styles = subprocess.run([str(bin_dir / "livestyle"), "styles"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    assert styles.returncode == 0, styles.stderr
    for name in BUNDLED:
        assert name in styles.stdout

    clip = work / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    rng = np.random.default_rng(0)
    for _ in range(6):
        writer.write(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
    writer.release()
    run = subprocess.run([str(bin_dir / "livestyle"), "run", "--source", str(clip), "--style",
                          "cartoon", "-o", "out.mp4", "--no-preview"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    cap = cv2.VideoCapture(str(work / "out.mp4"))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == 6
