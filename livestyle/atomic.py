"""Files that appear whole or not at all: the one place livestyle (and its trainer) writes
a file the user keeps.

- `write_atomic(path, data)` / `atomic_open(path)`: bytes or text to a temporary file beside
  `path`, flushed to disk, then renamed over it. A crash, a full disk or Ctrl-C leaves `path`
  as it was.
- `partial_path(target)` + `publish(tmp, target)`: the same for writers that need a path of
  their own (a video encoder, torch.save): they write the temporary file, `publish` moves it.
  With `overwrite=False` publishing never replaces a file that appeared meanwhile: it fails
  with FileExistsError (a hard link is created only if the name is free, atomically).
- `OutputClaim(target)`: an exclusive claim on an output path for the length of a run, so
  two runs on one output cannot both write it (an advisory lock on a small file beside it,
  released by the kernel if the process is killed).
- Finalizing a file runs under `livestyle.interrupts.deferred_interrupts()`, so an interrupt
  never lands between "encoder closed" and "file renamed".

Temporary files carry the target's name and the writer's process id
(`talk-cartoon.livestyle-partial-4242.mp4`): one left by a killed process is recognisable at
a glance, and `stale_partials(target)` finds them for the next run to clean up.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path

PARTIAL_TAG = ".livestyle-partial-"


def partial_path(target: str | Path) -> Path:
    """Where a writer puts `target` until it is whole: same folder, same extension (encoders
    pick the container by it), the process id in the name."""
    target = Path(target)
    return target.with_name(f"{target.stem}{PARTIAL_TAG}{os.getpid()}{target.suffix}")


def stale_partials(target: str | Path) -> list[Path]:
    """Partial files for `target` left by other processes (killed, or crashed)."""
    target = Path(target)
    # "-audio": the copy that gets the source's sound (livestyle.audio)
    pattern = re.compile(re.escape(target.stem + PARTIAL_TAG) + r"(\d+)(?:-audio)?" +
                         re.escape(target.suffix) + "$")
    found = []
    with contextlib.suppress(OSError):
        for p in target.parent.iterdir():
            m = pattern.match(p.name)
            if m and int(m.group(1)) != os.getpid():
                found.append(p)
    return sorted(found)


def publish(tmp: str | Path, target: str | Path, overwrite: bool = True) -> Path:
    """Move the finished file `tmp` to `target` (same folder) in one step.

    overwrite=False: FileExistsError if `target` exists, even if it appeared a moment ago
    (link() refuses an existing name atomically; where the filesystem has no hard links the
    check and the rename are two steps)."""
    tmp, target = Path(tmp), Path(target)
    if overwrite:
        os.replace(tmp, target)
        return target
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "file exists", str(target)) from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK,
                           errno.ENOSYS, errno.EACCES):
            raise
        if target.exists():  # no hard links here (FAT, some network mounts)
            raise FileExistsError(errno.EEXIST, "file exists", str(target)) from None
        os.replace(tmp, target)
        return target
    os.unlink(tmp)
    return target


def fsync_file(path: str | Path) -> None:
    """Push a file's data to the disk: a rename must not reach it before the data does (and
    a full disk is often reported only here)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | Path, overwrite: bool = True, mode: int = 0o644):
    """A binary file to write that becomes `path` when the block ends without an exception
    (flushed to disk first); on any exception, KeyboardInterrupt included, the temporary
    file (`.<name>.<random>.tmp` beside it) is removed and `path` is left as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp makes it owner-only
        publish(tmp, path, overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_atomic(path: str | Path, data: bytes | str, overwrite: bool = True,
                 mode: int = 0o644) -> Path:
    """Write `data` to `path` whole or not at all; OSError (ENOSPC, EROFS, EACCES...) leaves
    nothing behind. overwrite=False: FileExistsError if `path` exists."""
    with atomic_open(path, overwrite, mode) as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


class OutputBusy(RuntimeError):
    """Another process holds the claim on this output."""


class OutputClaim:
    """Exclusive, for as long as it is held, among processes that claim the same path.

    The lock is an advisory lock on `.<name>.livestyle-lock` beside the target; the kernel
    drops it when the holder dies, so a killed run never blocks the next one."""

    def __init__(self, target: str | Path):
        self.target = Path(target)
        self.lock_path = self.target.with_name(f".{self.target.name}.livestyle-lock")
        self._fd: int | None = None
        while True:  # a holder that releases unlinks the file: lock the file that is there
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock(fd)
            except OSError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise OutputBusy(f"another livestyle run (process {holder}) is writing "
                                 f"{self.target}; wait for it or pick another --output") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.lock_path)  # unlinked while still locked: no one can slip in
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
