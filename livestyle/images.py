"""Images in and out: `--source photo.jpg -o photo-styled.png`, and a folder of images to a
folder (one image per image, same names, in name order).

Each image is written whole or not at all (atomic.write_atomic), never over an existing file
unless `overwrite`; the output (file or folder) is claimed for the run like a video
(atomic.OutputClaim). A file in a source folder that OpenCV cannot read is skipped with a
note; an image source that cannot be read at all fails before anything is written.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from livestyle.atomic import write_atomic
from livestyle.camera import Frame, SourceError, SourceInfo
from livestyle.config import IMAGE_SUFFIXES, SourceConfig, is_image
from livestyle.sinks.base import Sink, SinkError, claim_output


def list_images(folder: Path) -> list[Path]:
    """The images directly in `folder`, by name (hidden files left out)."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and is_image(p) and not p.name.startswith("."))


def _read(path: Path) -> np.ndarray | None:
    # imdecode of the bytes, not imread: a path OpenCV cannot spell (non-ASCII on Windows)
    # still reads; IMREAD_COLOR applies the EXIF orientation and gives 8-bit BGR
    try:
        data = np.fromfile(path, np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


class ImageSource:
    """The frames of one image or of every image in a folder, in order. `names` grows with
    the file name of each frame returned, so a folder sink writes frame i as names[i].

    `repeat`: after the last image, show it again (at `fps`) until interrupted: a photo in
    the preview window, where the keys change the style."""

    def __init__(self, cfg: SourceConfig, repeat: bool = False, log=print, fps: float = 30.0):
        root = Path(cfg.source)
        self.paths = list_images(root) if root.is_dir() else [root]
        if not self.paths:
            raise SourceError(f"no images in {root} (looked for {', '.join(IMAGE_SUFFIXES)})")
        self._log, self._repeat, self._fps = log, repeat, fps
        self.skipped: list[Path] = []
        self._next = 0
        self._first = self._load_next()
        if self._first is None:
            raise SourceError(f"cannot read any image in {root}" if root.is_dir() else
                              f"cannot read image {root}: not an image OpenCV can decode")
        h, w = self._first.shape[:2]
        self.info = SourceInfo(str(root), w, h, fps)
        self.announced = len(self.paths)  # the total, for the progress line
        self.names: list[str] = []
        self.dropped = 0
        self.truncated = ""
        self._index = 0
        self._last: np.ndarray | None = None
        self._interrupted = False

    def _load_next(self) -> np.ndarray | None:
        """The next readable image (its path is self.paths[self._next - 1]); None at the end."""
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            image = _read(path)
            if image is not None:
                return image
            self.skipped.append(path)
            self._log(f"skipped {path}: not an image OpenCV can decode")
        return None

    def read(self, timeout: float | None = None) -> Frame | None:
        if self._interrupted:
            return None
        if self._first is not None:
            image, self._first = self._first, None
        else:
            image = self._load_next()
        if image is None:
            if not (self._repeat and self._last is not None):
                return None
            time.sleep(1.0 / self._fps)
            image = self._last
        else:
            self.names.append(self.paths[self._next - 1].name)
            self._last = image
        frame = Frame(image, self._index, time.perf_counter())
        self._index += 1
        return frame

    def interrupt(self) -> None:
        self._interrupted = True

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ImageSink(Sink):
    """Writes each frame as an image: to `path` (one image), or, when `folder` is set, to
    `path`/names[i] (names: the source's, set after it opens), made if missing.

    Raises SinkError when another run writes `path`, or, without `overwrite`, when `path`
    exists (one image) or holds an image of a source name (`source_names`)."""

    name = "images"

    def __init__(self, path: str | Path, folder: bool = False, overwrite: bool = False,
                 source_names: list[str] = (), log=None):
        self.path, self.folder, self.overwrite = Path(path), folder, overwrite
        self._log = log or (lambda m: None)
        self.names: list[str] = []
        self.written: list[Path] = []
        if not overwrite:
            taken = ([n for n in source_names if (self.path / n).exists()] if folder else
                     [self.path.name] if self.path.exists() else [])
            if taken:
                where = f" in {self.path}" if folder else ""
                raise SinkError(f"{', '.join(taken[:3])}{' ...' if len(taken) > 3 else ''} "
                                f"exist{'s' if len(taken) == 1 else ''}{where}; pass "
                                "--overwrite (-y) to replace, or pick another --output")
        self._claim = claim_output(self.path)
        if folder:
            try:
                self.path.mkdir(exist_ok=True)
            except OSError as e:
                self._claim.release()
                raise SinkError(f"cannot make folder {self.path}: {e.strerror}") from None

    def send(self, frame: np.ndarray) -> None:
        i = len(self.written)
        target = self.path / self.names[i] if self.folder else self.path
        if not self.folder and i:
            raise SinkError(f"{self.path} is one image; the source gave more than one frame")
        ok, data = cv2.imencode(target.suffix.lower(), frame)
        if not ok:
            raise SinkError(f"cannot encode {target}: OpenCV has no {target.suffix} encoder")
        try:
            write_atomic(target, data.tobytes(), overwrite=self.overwrite)
        except FileExistsError:
            raise SinkError(f"{target} appeared while this run was writing; kept it, and "
                            "stopped") from None
        except OSError as e:
            raise SinkError(f"cannot write image {target}: {e.strerror or e}") from None
        self.written.append(target)

    def close(self) -> None:
        if self._claim is not None:
            self._claim.release()
            self._claim = None
