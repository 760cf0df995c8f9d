"""Style switching: one backend per loaded style, the next one loaded on a thread, and the
pairing of every stylized frame with the source frame it came from.

A pipelined GPU backend (delay 1, see backends/base.py) returns each frame's result one call
late; the switcher keeps the source frames in flight beside it, so the loop only ever sees
ready (source frame, stylized frame) pairs, in order, whatever the backend's delay and
across style switches.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from livestyle import backends
from livestyle.styles import Style

LOAD_NOTE_EVERY = 5.0  # seconds between "waiting for style X" lines while close() waits


class StyleSwitcher:
    """Holds one backend per loaded style; loads the next one on a thread, so switching never
    stalls the stream: the old style keeps running until the new one is ready.

    `infer(frame, small)` runs `small` (the frame at processing size) through the current
    style and returns the (frame, stylized) pairs that are ready, oldest first: one per call
    with a delay-0 backend; none on the first call, then one per call, with a delay-1 one.
    `flush()` returns the pairs still in flight (at the end of a run). A requested style
    takes over inside `infer`, once loaded: the old style's frames in flight come out first.
    A stylized array may be a buffer its backend reuses: use it before the next `infer`.

    `close()` closes every backend once, waiting for a style still loading (so that no
    loader is left inside native code, and nothing it built is left unclosed).

    At most two styles are held: the current one and the one asked for next. A style
    switched away from is closed, and so is one that finishes loading after another was
    asked for instead: on a GPU each holds its engine and activation memory for the largest
    frame, so keeping every style visited would grow the memory with each one (coming back
    to a style loads it again, from the engine cache, while the current one keeps running).
    """

    def __init__(self, styles: list[Style], backend: str, threads: int = 0, log=print):
        self.styles = styles
        self._backend_name, self._threads, self._log = backend, threads, log
        self._loaded: dict[int, backends.Backend] = {}
        self._loading: dict[int, threading.Thread] = {}  # the latest loader of each style
        self._loaders: list[tuple[int, threading.Thread]] = []  # every one, for close()
        # styles whose loader has not yet decided what becomes of its backend: a request for
        # one of these starts no second load. A loader leaves it (under the lock) when it
        # decides, before it closes a backend passed over: asked for again while that closes,
        # the style is loaded anew rather than waiting on a thread that will store nothing
        self._pending: set[int] = set()
        self._errors: dict[int, Exception] = {}
        self._lock = threading.Lock()  # guards _loaded, _pending, _errors and _closed
        self._closed = False
        self._in_flight: deque[np.ndarray] = deque()  # source frames whose result is to come
        self.index = 0
        self.wanted = 0
        self._load(0)  # the first style loads in the foreground: its errors stop the run
        if 0 in self._errors:
            raise self._errors.pop(0)

    def _load(self, i: int) -> None:
        try:
            b = backends.create(self._backend_name, self.styles[i].path, threads=self._threads)
        except Exception as e:  # noqa: BLE001 - reported to the user, the run goes on
            with self._lock:
                self._errors[i] = e
                self._pending.discard(i)
            return
        with self._lock:
            self._pending.discard(i)
            # `wanted` may have moved on while this loaded: then nobody will switch to it
            if not self._closed and i in (self.wanted, self.index):
                self._loaded[i] = b
                return
        b.close()  # closed, or passed over while it loaded: nobody else will close it

    @property
    def backend(self) -> backends.Backend:
        return self._loaded[self.index]

    @property
    def style(self) -> Style:
        return self.styles[self.index]

    def request(self, i: int) -> None:
        """Switch to style `i` (modulo the count) as soon as it is loaded; starts loading it."""
        i %= len(self.styles)
        self.wanted = i
        with self._lock:  # one asked for earlier and loaded, but not switched to: let go
            passed = [j for j in self._loaded if j not in (i, self.index)]
            gone = [self._loaded.pop(j) for j in passed]
        for b in gone:
            b.close()
        with self._lock:
            busy = self._closed or i in self._loaded or i in self._pending
            if not busy:
                # not a daemon: the interpreter waits for a load still under way at exit,
                # instead of finalizing while the thread is inside native code (a TensorRT
                # build)
                t = threading.Thread(target=self._load, args=(i,), name=f"livestyle-load-{i}")
                self._pending.add(i)
                self._loading[i] = t
                self._loaders = [(j, u) for j, u in self._loaders if u.is_alive()] + [(i, t)]
        if not busy:
            t.start()

    def infer(self, frame: np.ndarray, small: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """`small` through the current style: the (source frame, stylized) pairs now ready."""
        ready = self._switch()
        self._in_flight.append(frame)
        try:
            styled = self.backend.infer(small)
        except BaseException:
            self._in_flight.pop()  # the frame is dropped: the next result is not its
            raise
        if styled is not None:
            self._check(styled)
            ready.append((self._in_flight.popleft(), styled))
        return ready

    def _check(self, styled: np.ndarray) -> None:
        """ValueError for a style whose result is not a colour frame (a one-channel output
        would otherwise be written as a gray image, or fail deep in a video encoder)."""
        if styled.dtype == np.uint8 and styled.ndim == 3 and styled.shape[2] == 3:
            return
        channels = styled.shape[2] if styled.ndim == 3 else 1
        what = (f"{channels}-channel {styled.dtype}" if styled.ndim in (2, 3)
                else f"{styled.dtype} {styled.shape}")
        raise ValueError(f"style {self.style.name} ({self.style.path}) gives {what} frames, "
                         "not colour ones (height x width x 3, uint8 BGR): it is not a "
                         "livestyle generator; re-export it with `livestyle train`")

    def flush(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The pairs still in flight in the current style, oldest first."""
        return self._drain(self.backend)

    def _drain(self, backend: backends.Backend) -> list[tuple[np.ndarray, np.ndarray]]:
        out = [(self._in_flight.popleft(), styled) for styled in backend.flush()]
        for _, styled in out:
            self._check(styled)
        return out

    def _switch(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Move to the wanted style if it is loaded: the old style's pairs still in flight."""
        if self.wanted == self.index:
            return []
        with self._lock:
            err = self._errors.pop(self.wanted, None)
            ready = self.wanted in self._loaded
        if err is not None:
            self._log(f"cannot load style {self.styles[self.wanted].name}: {err}")
            self.wanted = self.index
            return []
        if not ready:
            return []
        drained = self._drain(self.backend)
        self.index = self.wanted
        self._log(f"style: {self.style.name}")
        self._unload_others()
        return drained

    def _unload_others(self) -> None:
        """Close every loaded style but the current one (the old one's frames are drained;
        `wanted` is the current one here)."""
        with self._lock:
            others = [i for i in self._loaded if i != self.index]
            gone = [self._loaded.pop(i) for i in others]
        for b in gone:
            b.close()

    @property
    def loaded(self) -> list[int]:
        """The styles whose backend is held now (the current one, and the next once loaded)."""
        with self._lock:
            return sorted(self._loaded)

    def close(self) -> None:
        """Close every loaded backend. A style still loading is waited for, saying so every
        LOAD_NOTE_EVERY seconds (a TensorRT engine build takes minutes); a KeyboardInterrupt
        ends the wait, and the loader then closes what it built itself. Idempotent."""
        with self._lock:
            self._closed = True
            loading = [(i, t) for i, t in self._loaders if t.is_alive()]
        try:
            for i, t in loading:
                t.join(LOAD_NOTE_EVERY)
                while t.is_alive():
                    self._log(f"waiting for style {self.styles[i].name} to finish loading "
                              "before closing (Ctrl-C to stop waiting)")
                    t.join(LOAD_NOTE_EVERY)
        finally:
            with self._lock:
                loaded = list(self._loaded.values())
                self._loaded.clear()
            for b in loaded:
                b.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
