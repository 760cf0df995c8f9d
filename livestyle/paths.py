"""File names whatever their bytes. Standard library only (the CLI sets up printing before
anything heavy loads).

A POSIX file name is bytes; Python hands one that is not valid UTF-8 (a Latin-1 `café.mp4`
from an old archive) as a str with the odd bytes as lone surrogates (PEP 383,
"surrogateescape"). The standard library and PyAV give the OS the original bytes back;
OpenCV's bindings cannot take such a str (its VideoCapture crashes the process). So:

- `for_opencv(path)`: a name OpenCV can open for the same file, for as long as the block
  runs: the path itself when it is valid UTF-8, else a symbolic link with a plain name (and
  the same extension, by which OpenCV picks a container) in a private temporary folder.
  Nothing is created beside the user's file, and the folder is removed when the block ends
  (once OpenCV has opened the file it holds its own descriptor).
- `printable_names()`: stdout and stderr write such a name's original bytes, as `ls` does
  into a pipe, instead of failing (stdout's default) or printing `\\udce9` (stderr's).
"""

from __future__ import annotations

import codecs
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ERRORS = "livestyle-names"  # the codec error handler printable_names() installs


def is_utf8(path: str | os.PathLike) -> bool:
    """Whether every byte of the name is valid UTF-8 (no escaped byte in it)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@contextlib.contextmanager
def for_opencv(path: str | os.PathLike) -> Iterator[str]:
    """A name OpenCV can take for `path` (see the module's docstring); the file itself need
    not exist yet (a writer creates it through the link)."""
    name = os.fspath(path)
    if is_utf8(name):
        yield name
        return
    suffix = Path(name).suffix
    folder = tempfile.mkdtemp(prefix="livestyle-name-")
    try:
        link = os.path.join(folder, "file" + (suffix if is_utf8(suffix) else ""))
        os.symlink(os.path.abspath(name), link)
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _original_bytes(error: UnicodeError) -> tuple[bytes, int]:
    """Codec error handler: an escaped byte goes out as itself (surrogateescape); any other
    character the stream's encoding lacks as a backslash escape (backslashreplace)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = bytearray()
    for c in error.object[error.start:error.end]:
        o = ord(c)
        if 0xDC80 <= o <= 0xDCFF:
            out.append(o - 0xDC00)
        else:
            out += (f"\\x{o:02x}" if o <= 0xFF else f"\\u{o:04x}" if o <= 0xFFFF
                    else f"\\U{o:08x}").encode("ascii")
    return bytes(out), error.end


def printable_names() -> None:
    """Let sys.stdout and sys.stderr print any file name (see the module's docstring)."""
    codecs.register_error(ERRORS, _original_bytes)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(Exception):  # a stream a caller replaced, or closed
                reconfigure(errors=ERRORS)
