"""`livestyle doctor`: what works on this machine, and how to fix what does not."""

from __future__ import annotations

import glob
import importlib.util
import os
import platform
import subprocess
import sys

import cv2

from livestyle.backends import AUTO_ORDER, REGISTRY, BackendUnavailable, create
from livestyle.gpu import cuda_device_count, driver_cuda_version
from livestyle.sinks.preview import display_available
from livestyle.sinks.vcam import setup_help
from livestyle.styles import catalogue, user_dir_problem

OK, NO = "ok ", "-- "


def _cameras(max_index: int = 4) -> list[str]:
    if sys.platform.startswith("linux"):
        nodes = sorted(glob.glob("/dev/video*"))
        if not nodes:
            return []
        candidates = [int(n.removeprefix("/dev/video")) for n in nodes if n[10:].isdigit()]
    else:
        candidates = list(range(max_index))
    found = []
    for i in candidates[:max_index]:
        cap = cv2.VideoCapture(i)
        if cap.isOpened():
            ok, frame = cap.read()
            if ok:
                found.append(f"{i}: {frame.shape[1]}x{frame.shape[0]}")
        cap.release()
    return found


def _vcam() -> tuple[bool, str]:
    try:
        import pyvirtualcam
    except ImportError:
        return False, "pyvirtualcam is not installed: pip install pyvirtualcam"
    try:
        with pyvirtualcam.Camera(64, 48, 30) as cam:
            return True, f"virtual camera available: {cam.device}"
    except RuntimeError as e:
        return False, f"{e}\n     fix: {setup_help()}"


def _gpu_packages() -> tuple[bool, str]:
    """TensorRT and pycuda, asked only where there is a CUDA device, through the TensorRT
    backend's own check: everything missing, each with its fix (pycuda has no wheels, so its
    fix is the CUDA toolkit, then pip)."""
    from livestyle.backends.tensorrt import require_tensorrt

    try:
        trt = require_tensorrt()
    except BackendUnavailable as e:
        return False, f"TensorRT backend packages: {e}"
    return True, f"TensorRT backend packages: tensorrt {trt.__version__} and pycuda"


# opens, shows and closes a real window; run in its own process, where an abort of Qt (a
# display that refuses us) ends only this probe
WINDOW_TEST = """
import sys, cv2, numpy as np
cv2.namedWindow("livestyle doctor", cv2.WINDOW_NORMAL | cv2.WINDOW_GUI_NORMAL)
cv2.imshow("livestyle doctor", np.full((48, 64, 3), 128, np.uint8))
cv2.waitKey(300)
shown = cv2.getWindowProperty("livestyle doctor", cv2.WND_PROP_VISIBLE) >= 1
cv2.destroyAllWindows()
cv2.waitKey(1)
sys.exit(0 if shown else 3)
"""


def _preview() -> tuple[bool, str]:
    """Whether a preview window opens here: the display is asked first (preview's own check),
    then a test window really opens, in a child process."""
    ok, why = display_available()
    if ok:
        try:
            r = subprocess.run([sys.executable, "-c", WINDOW_TEST], capture_output=True,
                               text=True, timeout=60)
        except subprocess.TimeoutExpired:
            ok, why = False, "a test window did not open within 60 s"
        else:
            ok = r.returncode == 0
            last = (r.stderr.strip().splitlines() or [""])[-1]
            why = ("a test window opened but was not shown" if r.returncode == 3 else
                   f"a test window could not open (exit {r.returncode}"
                   + (f": {last}" if last else "") + ")")
    return ok, ("preview window: available (a test window opened and closed)" if ok else
                f"preview window: {why}; use --no-preview with --output or --vcam")


def main() -> int:
    print(f"livestyle doctor: Python {platform.python_version()} on {platform.platform()}, "
          f"{os.cpu_count()} CPU cores, OpenCV {cv2.__version__}")
    lines: list[tuple[bool, str]] = []

    cams = _cameras()
    lines.append((bool(cams), "cameras: " + ", ".join(cams) + " (`livestyle cameras` lists "
                  "their modes)" if cams else
                  "cameras: none found; use --source FILE or URL, or plug in a webcam"))
    lines.append(_preview())
    lines.append(_vcam())

    count, why = cuda_device_count()
    cuda = driver_cuda_version()
    driver = f", driver for CUDA {cuda[0]}.{cuda[1]}" if cuda else ""
    lines.append((count > 0, f"NVIDIA GPU: {count} CUDA device(s){driver}" if count else
                  f"NVIDIA GPU: {why} (the CPU backends are used)"))
    if count:
        lines.append(_gpu_packages())

    entries = catalogue(read_all=True)
    used = [e for e in entries if e.used]
    good = [e for e in used if e.style]
    probe = good[0].path if good else None
    lines.append((bool(good), f"styles: {len(good)} installed" if good else
                  f"styles: none of the {len(used)} found can be read" if used else
                  "styles: none installed; `livestyle train` makes one"))
    for e in entries:
        if e.error:  # each broken file, also one that a bundled style of its name stands in for
            lines.append((False, f"style {e.name} ({e.origin}) is BROKEN: {e.error}"
                          + (f"\n     -> {e.note}" if e.note else "")))
    problem = user_dir_problem()
    if problem:
        lines.append((False, f"styles folder: {problem}"))
    for name in AUTO_ORDER + ["torch"]:
        module = REGISTRY[name][0]
        if probe is None:
            spec_ok = importlib.util.find_spec(module) is not None
            lines.append((False, f"backend {name}: not checked (no style to load)"
                          if spec_ok else f"backend {name}: missing"))
            continue
        try:
            create(name, probe).close()
            lines.append((True, f"backend {name}: works"))
        except (BackendUnavailable, ValueError) as e:
            lines.append((False, f"backend {name}: {e}"))
    for ok, text in lines:
        print(("  " + (OK if ok else NO)) + text)
    print("`livestyle run --backend auto` picks the first working backend in the order "
          + " > ".join(AUTO_ORDER))
    return 0
