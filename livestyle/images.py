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


# outputs that can hold transparency: an image with an alpha channel keeps it there (the
# colours are stylized, the alpha is carried through); any other output gets it composited
ALPHA_SUFFIXES = (".png", ".webp", ".tif", ".tiff")
BACKGROUND = 255  # what transparent pixels are composited over: white, as a page shows them


def _read(path: Path) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """(8-bit BGR image, its alpha or None, '') or (None, None, why it cannot be read)."""
    # imdecode of the bytes, not imread: a path OpenCV cannot spell (non-ASCII on Windows)
    # still reads; IMREAD_COLOR applies the EXIF orientation and gives 8-bit BGR
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as e:  # a permission error is not a broken image: say which it is
        return None, None, e.strerror or str(e)  # "Permission denied"
    alpha = _alpha(data) if data.size else None
    if alpha is None:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    else:
        # IMREAD_UNCHANGED (the alpha) ignores the EXIF orientation that IMREAD_COLOR
        # applies: take both unturned and turn them together, the same way
        image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is not None:
            turn = ORIENT[exif_orientation(data.tobytes())]
            image, alpha = turn(image), turn(alpha)
            if image.shape[:2] != alpha.shape:
                alpha = None
    if image is None:
        return None, None, ("the file is empty" if not data.size
                            else "not an image OpenCV can decode")
    return image, alpha, ""


def _alpha(data: np.ndarray) -> np.ndarray | None:
    """The 8-bit alpha channel, as stored (before any EXIF orientation), of an encoded PNG,
    WebP or TIFF whose pixels are not all opaque; None for every other image."""
    head = data[:12].tobytes()
    if not (head.startswith(b"\x89PNG") or head[8:12] == b"WEBP"
            or head[:4] in (b"II*\x00", b"MM\x00*")):
        return None  # JPEG, BMP: no alpha channel to look for (and no second decode)
    full = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if full is None or full.ndim != 3 or full.shape[2] not in (2, 4):
        return None
    alpha = full[..., -1]
    if alpha.dtype == np.uint16:
        alpha = (alpha >> 8).astype(np.uint8)
    elif alpha.dtype != np.uint8:  # float TIFF: 0-1
        alpha = (np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8)
    if alpha.min() == 255:
        return None  # an alpha channel with nothing transparent: nothing to keep
    return np.ascontiguousarray(alpha)


# EXIF orientation (1-8) -> what turns the stored pixels upright, as viewers (and OpenCV's
# IMREAD_COLOR) show them
ORIENT = {
    1: lambda a: a,
    2: lambda a: cv2.flip(a, 1),  # mirrored left-right
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),  # mirrored top-bottom
    5: lambda a: cv2.transpose(a),  # mirrored along the main diagonal
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
    7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),  # the other diagonal
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of an encoded PNG (eXIf chunk), WebP (EXIF chunk) or TIFF
    (its first directory); 1 where there is none or it cannot be read."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            pos = 8
            while pos + 8 <= len(data):
                size = int.from_bytes(data[pos:pos + 4], "big")
                kind = data[pos + 4:pos + 8]
                if kind == b"eXIf":
                    return _tiff_orientation(data[pos + 8:pos + 8 + size])
                if kind == b"IEND":
                    break
                pos += 12 + size  # length, type, data, CRC
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            pos = 12
            while pos + 8 <= len(data):
                size = int.from_bytes(data[pos + 4:pos + 8], "little")
                if data[pos:pos + 4] == b"EXIF":
                    return _tiff_orientation(data[pos + 8:pos + 8 + size])
                pos += 8 + size + (size & 1)  # chunks are padded to an even size
        elif data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_orientation(data)
    except (ValueError, IndexError):
        pass
    return 1


def _tiff_orientation(exif: bytes) -> int:
    """Tag 0x0112 of the first directory of TIFF-structured EXIF data, or 1. (Data that
    starts "Exif\\0\\0", as in a JPEG, is not what a PNG or WebP holds, and OpenCV does not
    turn the colours for it: neither is the alpha.)"""
    order = {b"II": "little", b"MM": "big"}.get(exif[:2])
    if order is None:
        return 1

    def num(at: int, n: int) -> int:
        if at + n > len(exif):
            raise ValueError("truncated EXIF")
        return int.from_bytes(exif[at:at + n], order)

    ifd = num(4, 4)
    for i in range(num(ifd, 2)):
        entry = ifd + 2 + 12 * i
        if num(entry, 2) == 0x0112:  # Orientation: one SHORT, in the value field
            value = num(entry + 8, 2)
            return value if value in ORIENT else 1
    return 1


def composite(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """`image` over a white background where `alpha` is transparent."""
    a = alpha[..., None].astype(np.float32) / 255.0
    return (image * a + BACKGROUND * (1.0 - a) + 0.5).astype(np.uint8)


class ImageSource:
    """The frames of one image or of every image in a folder, in order. `names` grows with
    the file name of each frame returned, so a folder sink writes frame i as names[i].

    `repeat`: after the last image, show it again (at `fps`) until interrupted: a photo in
    the preview window, where the keys change the style.

    Transparency: `output_suffix(name)` is the suffix of the file the image `name` is
    written to (None: it is only shown). Where that can hold it (ALPHA_SUFFIXES), an image's
    alpha is set aside in `alphas` (one entry per frame, None where there is none) for the
    sink and its colours are stylized as they are; elsewhere the image is composited over
    white first, and the log says so."""

    def __init__(self, cfg: SourceConfig, repeat: bool = False, log=print, fps: float = 30.0,
                 output_suffix=None):
        root = Path(cfg.source)
        self.paths = list_images(root) if root.is_dir() else [root]
        if not self.paths:
            raise SourceError(f"no images in {root} (looked for {', '.join(IMAGE_SUFFIXES)})")
        self._log, self._repeat, self._fps = log, repeat, fps
        self._output_suffix = output_suffix or (lambda name: None)
        self.alphas: list[np.ndarray | None] = []
        self._alpha: np.ndarray | None = None  # the alpha kept of the image last loaded
        self.skipped: list[Path] = []
        self._next = 0
        self._first = self._load_next()
        if self._first is None:
            raise SourceError(f"cannot read any image in {root}" if root.is_dir() else
                              f"cannot read image {root}: {self._why}")
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
        """The next readable image (its path is self.paths[self._next - 1]), composited
        unless its alpha is kept (then in self._alpha); None at the end."""
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            image, alpha, self._why = _read(path)
            if image is None:
                self.skipped.append(path)
                self._log(f"skipped {path}: {self._why}")
                continue
            suffix = self._output_suffix(path.name)
            if alpha is not None and suffix not in ALPHA_SUFFIXES:
                self._log(f"{path.name} has transparent pixels, which "
                          + (f"a {suffix} output" if suffix else "the window")
                          + " cannot hold: composited over white (a .png or .webp output "
                          "keeps them)")
                image, alpha = composite(image, alpha), None
            elif alpha is not None:
                self._log(f"{path.name}: its transparency is kept (the colours are stylized, "
                          "the alpha channel carried through)")
            self._alpha = alpha
            return image
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
            self.alphas.append(self._alpha)
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
        self.alphas: list[np.ndarray | None] = []  # the source's: each frame's kept alpha
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
        alpha = self.alphas[i] if i < len(self.alphas) else None
        if alpha is not None:  # the source's transparency, at the size written
            if alpha.shape != frame.shape[:2]:
                alpha = cv2.resize(alpha, (frame.shape[1], frame.shape[0]),
                                   interpolation=cv2.INTER_LINEAR)
            frame = np.dstack([frame, alpha])
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
