"""Run configuration: frozen dataclasses with commented defaults, validated up front.

Everything here is checked before a camera opens, so a bad flag fails in milliseconds with a
message that says what to change.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from livestyle.frames import UPSCALE_FLAGS
from livestyle.steady import DEFAULT_STRENGTH, MAX_STRENGTH


class ConfigError(ValueError):
    """A setting that cannot work; the message names the flag and what to do."""


# what an image source or output may be (OpenCV reads and writes each of these)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")


def max_threads() -> int:
    """The most inference or training threads a flag may ask for: beyond a few per core a
    runtime only spends its time starting threads (ONNX Runtime hangs at 100,000)."""
    return max(64, 4 * (os.cpu_count() or 1))


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


@dataclass(frozen=True)
class SourceConfig:
    source: str = "0"  # camera index, video file path, or URL (rtsp://, http://, ...)
    width: int = 640  # size asked of a camera (it may give another; the run reports it)
    height: int = 480
    fps: float = 30.0  # rate asked of a camera
    loop: bool = False  # replay a video file forever
    realtime: bool | None = None  # pace files at their own fps; None = pace when a window/vcam shows it

    @property
    def is_camera(self) -> bool:
        return self.source.isdigit()

    @property
    def is_url(self) -> bool:
        return "://" in self.source

    @property
    def is_images(self) -> bool:
        """An image file, or a folder of images."""
        return not (self.is_camera or self.is_url) and (
            is_image(self.source) or Path(self.source).is_dir())


@dataclass(frozen=True)
class RunConfig:
    styles: tuple[str, ...] = ()  # style names or .onnx paths; the first one runs first
    source: SourceConfig = field(default_factory=SourceConfig)
    backend: str = "auto"  # auto | openvino | onnxruntime | torch | torch-cuda | tensorrt
    scale: float | None = None  # processing size / frame size; None = auto (CPU: <= 640x480)
    blend: float = 1.0  # 1 = fully stylized, 0 = the original
    stroke: float = 1.0  # stroke scale: the generator runs at 1/stroke of the processing size,
    # so strokes and outlines come out this many times larger (and it runs faster)
    upscale: str = "style"  # how a smaller result is enlarged: the style's way, linear, nearest
    steady: float = DEFAULT_STRENGTH  # temporal steadying of a video's still parts (0 = off)
    preview: bool = True  # a window with HUD and keys
    vcam: bool = False  # a virtual camera for Zoom / Meet / OBS
    vcam_device: str | None = None  # e.g. /dev/video10; None = the first loopback device
    vcam_backend: str | None = None  # pyvirtualcam backend (v4l2loopback, obs, ...); None = auto
    output: str | None = None  # video file to write (mp4); for an image source an image
    # file, for a folder of images a folder
    output_size: tuple[int, int] | None = None  # (w, h) of what is written (file, vcam);
    # 0 for one side keeps the aspect ratio; None = the frame's size
    overwrite: bool = False  # replace an existing output file (never the source itself)
    audio: bool = True  # a video output keeps a video file source's sound (--no-audio: not)
    snapshot_dir: str = "."  # where the `s` key saves PNGs
    max_frames: int = 0  # stop after this many frames; 0 = until the source ends or `q`
    threads: int = 0  # inference threads; 0 = the backend's default (all cores)

    def validate(self, more_sinks: bool = False) -> "RunConfig":
        """Self, checked; ConfigError says what to change. `more_sinks`: the caller adds sinks
        of its own (bench, soak), so no window, camera or file is still something to show."""
        if not self.styles:
            raise ConfigError("no style given: pass --style NAME (`livestyle styles` lists them)")
        if self.scale is not None and not 0.05 <= self.scale <= 2.0:
            raise ConfigError(f"--scale {self.scale} is out of range: use 0.05-2.0 (e.g. 0.5 "
                              "runs the generator at half size and upscales)")
        if not 0.5 <= self.stroke <= 4.0:
            raise ConfigError(f"--stroke {self.stroke} is out of range: use 0.5-4 (2 = strokes "
                              "twice as large)")
        if self.upscale not in ("style", *UPSCALE_FLAGS):
            raise ConfigError(f"--upscale {self.upscale!r} is not one of style, "
                              f"{', '.join(UPSCALE_FLAGS)}")
        if not 0.0 <= self.blend <= 1.0:
            raise ConfigError(f"--blend {self.blend} is out of range: use 0.0-1.0")
        if not 0.0 <= self.steady <= MAX_STRENGTH:
            raise ConfigError(f"--steady {self.steady} is out of range: use 0 (off) to "
                              f"{MAX_STRENGTH:g} (default {DEFAULT_STRENGTH:g})")
        s = self.source
        if s.width < 1 or s.height < 1 or s.width > 7680 or s.height > 4320:
            raise ConfigError(f"impossible size {s.width}x{s.height}: use 1x1 to 7680x4320")
        if not 0 < s.fps <= 480:
            raise ConfigError(f"--fps {s.fps} is out of range: use 1-480")
        if self.max_frames < 0:
            raise ConfigError(f"--max-frames {self.max_frames} is negative: use 0 (no limit) "
                              "or more")
        if self.threads < 0:
            raise ConfigError(f"--threads {self.threads} is negative: use 0 (all cores) or more")
        if self.threads > max_threads():
            raise ConfigError(f"--threads {self.threads} is far more than this machine's "
                              f"{os.cpu_count()} cores: use 0 (all cores) or at most "
                              f"{max_threads()}")
        if self.output_size is not None:
            w, h = self.output_size
            if not (0 <= w <= 7680 and 0 <= h <= 4320) or w + h == 0 or 0 < min(w, h) < 2:
                raise ConfigError(f"--output-size {w}x{h} is out of range: use 2x2 to 7680x4320, "
                                  "or 0 for one side to keep the aspect ratio (1280x0)")
        if not (s.is_camera or s.is_url or Path(s.source).is_file() or
                Path(s.source).is_dir()):
            raise ConfigError(f"source {s.source!r} is not a camera index, a URL, an existing "
                              "file or folder; pass --source 0 for the first webcam or a video, "
                              "image or folder path")
        if self.output and s.is_images:
            self._validate_image_output()
        elif self.output:
            out = Path(self.output)
            if is_image(out):
                raise ConfigError(f"--output {out} is an image but the source is a video or "
                                  "camera; give a video name (.mp4, .mkv, .mov or .avi)")
            if out.suffix.lower() not in VIDEO_SUFFIXES:
                raise ConfigError(f"--output {out}: use a .mp4, .avi, .mkv or .mov name "
                                  "(or an image name, or a folder, for an image source)")
            parent = out.parent if str(out.parent) else Path(".")
            if not parent.is_dir() or not os.access(parent, os.W_OK):
                raise ConfigError(f"--output {out}: folder {parent} does not exist or is not "
                                  "writable; pick another path")
            if _same_file(out, s.source):
                raise ConfigError(f"--output {out} is the source video itself "
                                  f"({s.source}); writing it would destroy the source. "
                                  "Pick another output name")
            if out.is_dir():
                raise ConfigError(f"--output {out} is a folder; give a file name such as "
                                  f"{out / 'styled.mp4'}")
            if (out.exists() or out.is_symlink()) and not self.overwrite:
                raise ConfigError(f"--output {out} exists; pass --overwrite (-y) to replace "
                                  "it, or pick another name")
        if not (self.preview or self.vcam or self.output or self.max_frames or more_sinks):
            raise ConfigError("nothing to show: with --no-preview, pass --vcam and/or --output")
        return self

    def _validate_image_output(self) -> None:
        """An image source writes an image; a folder of images, a folder of images."""
        src, out = Path(self.source.source), Path(self.output)
        parent = out.parent if str(out.parent) else Path(".")
        if src.is_dir():
            if (out.exists() and not out.is_dir()) or out.suffix.lower() in (
                    IMAGE_SUFFIXES + VIDEO_SUFFIXES):
                raise ConfigError(f"--output {out}: the source {src} is a folder, so the "
                                  "output is a folder too (one image per image, same names)")
            if out.exists() and os.path.samefile(out, src):
                raise ConfigError(f"--output {out} is the source folder itself; writing there "
                                  "would replace the source images. Pick another folder")
            if not out.exists() and not parent.is_dir():
                raise ConfigError(f"--output {out}: folder {parent} does not exist; the output "
                                  "folder is made only inside an existing one")
            return
        if not is_image(out):
            raise ConfigError(f"--output {out}: the source {src} is an image, so the output is "
                              f"an image too: use one of {', '.join(IMAGE_SUFFIXES)}")
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise ConfigError(f"--output {out}: folder {parent} does not exist or is not "
                              "writable; pick another path")
        if _same_file(out, str(src)):
            raise ConfigError(f"--output {out} is the source image itself ({src}); writing "
                              "it would destroy the source. Pick another output name")
        if (out.exists() or out.is_symlink()) and not self.overwrite:
            raise ConfigError(f"--output {out} exists; pass --overwrite (-y) to replace it, "
                              "or pick another name")

    def to_dict(self) -> dict:
        return asdict(self)


def _same_file(a: Path, source: str) -> bool:
    """Whether `a` and `source` name one file: through symlinks, `..`, another spelling of
    the path, or a hard link."""
    b = Path(source)
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False
