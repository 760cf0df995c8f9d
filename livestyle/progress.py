"""The progress line of a file run: frames done/total, fps, ETA.

On a terminal the line is rewritten in place a few times a second; elsewhere (a log file, a
pipe, CI) a line is printed every few seconds. The last state is always printed at the end.
Log messages printed through `log` clear the line first, so they never run into it. A stream
that fails (a terminal that was closed) is given up on: the run goes on without its line.
"""

from __future__ import annotations

import sys
import time


def clock(seconds: float) -> str:
    """1:05, 12:00, 1:02:03."""
    s = int(seconds + 0.5)
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(self, stream=None, tty: bool | None = None, every: float | None = None,
                 now=time.monotonic):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = every if every is not None else (0.25 if self.tty else 5.0)
        self._now = now
        self.total, self.unit = 0, "frames"
        self.done = 0
        self._t0 = self._last = None
        self._drawn = False  # a line is on the terminal without its newline
        self._shown = -1  # `done` when a line was last shown

    def start(self, total: int, unit: str = "frames") -> None:
        self.total, self.unit, self.done = total, unit, 0
        self._t0 = self._last = self._now()

    def line(self) -> str:
        elapsed = self._now() - self._t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            text = f"{self.done}/{self.total} {self.unit} ({100 * self.done // self.total}%)"
        else:
            text = f"{self.done} {self.unit}"
        text += f"  {rate:.1f} {'fps' if self.unit == 'frames' else self.unit + '/s'}"
        if self.total and rate > 0 and self.done < self.total:
            text += f"  ETA {clock((self.total - self.done) / rate)}"
        return text + f"  elapsed {clock(elapsed)}"

    def update(self, done: int, total: int | None = None) -> None:
        """`done` so far; `total` when it changed (a folder's file that is not an image)."""
        self.done = done
        if total is not None:
            self.total = total
        if self._t0 is None:
            return
        now = self._now()
        if now - self._last >= self.every:
            self._last = now
            self._show()

    def _write(self, text: str) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except OSError:  # EIO: the terminal was closed (SIGHUP is on its way)
            self.stream = None

    def _show(self) -> None:
        self._shown = self.done
        if self.tty:
            self._write(f"\r{self.line()}\033[K")
            self._drawn = True
        else:
            self._write(self.line() + "\n")

    def finish(self) -> None:
        """The final state, on a line of its own (once; no-op before `start`)."""
        if self._t0 is None:
            return
        if self.tty or self._shown != self.done:
            self._show()
        if self._drawn:
            self._write("\n")
            self._drawn = False
        self._t0 = None

    def log(self, message: str) -> None:
        if self._drawn:
            self._write("\r\033[K")
            self._drawn = False
        self._write(message + "\n")
