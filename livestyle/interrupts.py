"""Ctrl-C, SIGTERM and SIGHUP around native libraries. Standard library only: `python -m
livestyle` asks this while its own imports may be what was interrupted."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import threading
from collections.abc import Iterator

# the ways a run is ended from outside: Ctrl-C, `kill`, and the terminal closing (SIGHUP,
# which Windows does not have)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))
HANGUP = getattr(signal, "SIGHUP", None)
_HELD = STOP_SIGNALS


def leave_terminal() -> None:
    """After SIGHUP: stdout and stderr that are terminals (character devices) now write to
    /dev/null. The terminal was closed, and a write to it would fail (EIO) in the middle of
    finishing the outputs; what is still printed goes nowhere instead. Pipes and files keep
    what they get. Safe in a signal handler."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                if stat.S_ISCHR(os.fstat(fd).st_mode):
                    os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def caused_by_ctrl_c(error: BaseException | None) -> bool:
    """Whether a KeyboardInterrupt is among the causes and contexts of `error` (numpy reports
    a Ctrl-C during its import as ImportError; pybind11 one during a module's initialization,
    and the backends then report that as "not installed")."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block ends, then act as they would have.

    For what must not be cut in half: finalizing an output (between "encoder closed" and
    "file renamed"), and importing a native library (OpenCV, NumPy, OpenVINO, ONNX Runtime,
    torch), where a Python handler raising inside an extension's initialization leaves the
    library half made, and some then crash in the interpreter's teardown. Held here, the
    signal is recorded; at the end of the block the previous handlers are back and each
    recorded signal is raised again through them, at a safe point. Only the main thread runs
    signal handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in _HELD}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _raise_again(list(dict.fromkeys(caught)))


def _raise_again(signals: list[int]) -> None:
    """Each signal through its handler, in order, even when an earlier handler raised."""
    if signals:
        try:
            signal.raise_signal(signals[0])
        finally:
            _raise_again(signals[1:])
