"""`livestyle cameras`: the cameras found and the modes each offers (size, fps, pixel format).

Where cameras are: on Linux the V4L2 nodes /dev/videoN, named by sysfs
(/sys/class/video4linux/videoN/name); elsewhere OpenCV's camera indexes 0, 1, ... tried in
turn. What each offers: the device is asked, through OpenCV, for each common size in each
common pixel format at up to 60 fps, and what the driver settles on is read back; a device
that cannot do a size answers with one it can, so each mode it really has appears once.
This finds the modes among the common sizes, not every size a driver lists (no tool outside
OpenCV is needed).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from livestyle.paths import for_opencv

COMMON_SIZES = [(320, 240), (640, 360), (640, 480), (800, 600), (1024, 768), (1280, 720),
                (1280, 960), (1600, 1200), (1920, 1080), (2560, 1440), (3840, 2160)]
FOURCCS = ["MJPG", "YUYV"]  # what webcams offer: compressed (fast at large sizes) and raw
ASK_FPS = 60.0  # the driver answers with the highest rate it has at or below this
NON_LINUX_INDEXES = 6


@dataclass(frozen=True)
class Mode:
    width: int
    height: int
    fps: float
    fourcc: str

    def __str__(self) -> str:
        fps = f"{self.fps:g} fps" if self.fps > 0 else "fps not reported"
        return f"{self.width}x{self.height:<6} {fps:<16} {self.fourcc or '?'}"


@dataclass
class Camera:
    source: str  # what `livestyle run --source` takes
    device: str = ""  # /dev/videoN on Linux
    name: str = ""  # the driver's name for it, where the platform tells
    modes: list[Mode] = field(default_factory=list)
    problem: str = ""  # why it gives no picture ('' when it does)


def fourcc_text(value: float) -> str:
    """OpenCV's CAP_PROP_FOURCC number -> its four characters ('' when there are none)."""
    v = int(value)
    text = "".join(chr((v >> (8 * i)) & 0xFF) for i in range(4))
    if v <= 0 or not all(c.isprintable() for c in text):
        return ""
    return text.strip()


def read_mode(cap) -> Mode:
    """The mode a capture is in now, as its driver reports it."""
    return Mode(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                round(float(cap.get(cv2.CAP_PROP_FPS)), 2), fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)))


def probe_modes(cap, sizes=COMMON_SIZES, fourccs=FOURCCS) -> list[Mode]:
    """Ask an opened capture for each size in each pixel format and keep what it reports back,
    once each, smallest first. A capture that ignores requests (a file, a stream) gives its one
    mode."""
    seen = {read_mode(cap)}
    for code in fourccs:
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*code))
        for w, h in sizes:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
            cap.set(cv2.CAP_PROP_FPS, ASK_FPS)
            seen.add(read_mode(cap))
    modes = [m for m in seen if m.width > 0 and m.height > 0]
    return sorted(modes, key=lambda m: (m.width * m.height, m.width, m.fourcc, m.fps))


def linux_devices(dev_root: str | Path = "/dev",
                  sysfs_root: str | Path = "/sys/class/video4linux") -> list[tuple[int, str, str]]:
    """(index, device path, name) of every /dev/videoN, in index order. The name comes from
    sysfs; a node whose sysfs `index` is not 0 is a camera's second node (UVC metadata), which
    gives no picture, so it is left out."""
    found = []
    for node in Path(dev_root).glob("video*"):
        m = re.fullmatch(r"video(\d+)", node.name)
        if not m:
            continue
        info = Path(sysfs_root) / node.name
        if _read(info / "index") not in ("", "0"):
            continue
        found.append((int(m[1]), str(node), _read(info / "name")))
    return sorted(found)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _open(source: str):
    if source.isdigit():
        api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        return cv2.VideoCapture(int(source), api)
    with for_opencv(source) as name:  # a file name that is not UTF-8 crashes OpenCV
        return cv2.VideoCapture(name)


def examine(source: str, device: str = "", name: str = "") -> Camera:
    """Open a source, list its modes, and check that it gives a picture."""
    cam = Camera(source, device, name)
    quiet = cv2.utils.logging
    level = quiet.getLogLevel()
    quiet.setLogLevel(quiet.LOG_LEVEL_ERROR)  # OpenCV's own warnings for a missing index
    cap = _open(source)
    try:
        if not cap.isOpened():
            cam.problem = "cannot be opened (no such device, or no permission to use it)"
            return cam
        cam.modes = probe_modes(cap)
        ok, frame = cap.read()
        if not ok or frame is None:
            cam.problem = ("opens but gives no picture (in use by another program, or a "
                           "virtual camera nothing is sending to)")
    finally:
        cap.release()
        quiet.setLogLevel(level)
    return cam


def find(dev_root: str | Path = "/dev", sysfs_root: str | Path = "/sys/class/video4linux",
         platform: str = sys.platform) -> tuple[list[Camera], str]:
    """Every camera here, examined, and where they were looked for."""
    if platform.startswith("linux"):
        devices = linux_devices(dev_root, sysfs_root)
        where = f"{Path(dev_root) / 'video*'}"
        return [examine(str(i), path, name) for i, path, name in devices], where
    cams = []
    for i in range(NON_LINUX_INDEXES):
        cam = examine(str(i))
        if cam.problem.startswith("cannot be opened"):
            continue
        cams.append(cam)
    return cams, f"camera indexes 0 to {NON_LINUX_INDEXES - 1}"


def report(cams: list[Camera]) -> str:
    lines = []
    for cam in cams:
        kind = "camera" if cam.source.isdigit() or cam.source.startswith("/dev/") else "source"
        title = f"{kind} {cam.source}" + (f"  {cam.device}" if cam.device else "")
        lines.append(title + (f"  {cam.name}" if cam.name else ""))
        for m in cam.modes:
            lines.append(f"  {m}")
        if cam.problem:
            lines.append(f"  -- {cam.problem}")
        elif cam.modes and cam.source.isdigit():
            # the largest mode up to 720p at a video rate: what the generator can keep up with
            smooth = [m for m in cam.modes if m.fps >= 25 and m.width * m.height <= 1280 * 720]
            best = max(smooth or cam.modes, key=lambda m: (m.width * m.height, m.fps))
            lines.append(f"  use: livestyle run --source {cam.source} --size "
                         f"{best.width}x{best.height}" + (f" --fps {best.fps:g}" if best.fps > 0 else ""))
    return "\n".join(lines)


def main(sources: list[str] | None = None) -> int:
    """0: at least one camera gives a picture; 1: none found, or none gives a picture."""
    if sources:
        cams, where = [examine(s) for s in sources], ", ".join(sources)
    else:
        cams, where = find()
    if not cams:
        print(f"no camera found (looked at {where}). Plug in a webcam (on Linux its driver "
              "makes /dev/video0), or use --source FILE or URL.", file=sys.stderr)
        return 1
    print(report(cams))
    if not any(c.modes and not c.problem for c in cams):
        print(f"no camera here gives a picture (looked at {where})", file=sys.stderr)
        return 1
    return 0
