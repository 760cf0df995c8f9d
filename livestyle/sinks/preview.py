"""The preview window (OpenCV highgui): the stylized stream, a HUD, and keyboard controls.

Keys: n / right = next style, p / left = previous, 1-9 = style by number, space = original
vs stylized, + / - = blend strength, [ / ] = finer / bigger strokes, s = snapshot PNG, h = HUD on/off, q / Esc = quit.
Closing the window (its title-bar button, or the window manager) quits exactly like q.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time

import cv2
import numpy as np

from livestyle.sinks.base import Sink, SinkError

WINDOW = "livestyle"

# cv2.waitKeyEx codes -> actions the pipeline understands
KEYS: dict[int, str] = {
    ord("q"): "quit", 27: "quit",
    ord("n"): "next", ord("p"): "previous",
    0xFF53: "next", 0xFF51: "previous",  # right / left arrows (X11 keysyms)
    ord(" "): "original",
    ord("+"): "more", ord("="): "more", ord("-"): "less", ord("_"): "less",
    ord("["): "finer", ord("]"): "bigger",
    ord("s"): "snapshot", ord("h"): "hud",
    **{ord(str(i)): f"style:{i - 1}" for i in range(1, 10)},
}

HELP = "n/p style  1-9 pick  space original  +/- blend  [/] stroke  s snap  h HUD  q quit"


def display_available() -> tuple[bool, str]:
    """Can a window open here? (False, why) where it cannot, found without touching OpenCV's
    highgui: on Linux its Qt aborts the whole process (exit 134) when $DISPLAY is unset or
    names a display no X server answers on, so the X server is asked first, over its socket."""
    if not sys.platform.startswith("linux"):
        return True, ""
    display = os.environ.get("DISPLAY", "")
    if not display:
        return False, ("no X display ($DISPLAY is not set" + (
            "; under Wayland the window needs XWayland's $DISPLAY" if
            os.environ.get("WAYLAND_DISPLAY") else "") + ")")
    why = x_server_problem(display)
    return (False, why) if why else (True, "")


def x_server_problem(display: str, timeout: float = 2.0) -> str:
    """'' if an X server accepts connections at `display` (":0", ":1.0", "host:10",
    "unix:0"), else why not. Only the socket is tried: a server that refuses us for want of
    authorization still fails later, in Qt (`livestyle doctor` opens a real window)."""
    m = re.fullmatch(r"(?:(?P<host>[^:]*)/)?(?P<host2>[^:/]*):(?P<num>\d+)(?:\.\d+)?", display)
    if not m:
        return f"$DISPLAY={display!r} is not an X display name (such as :0)"
    host = m["host2"] or m["host"] or ""
    num = int(m["num"])
    try:
        if host in ("", "unix") or host.startswith("/"):
            addresses = [f"/tmp/.X11-unix/X{num}", f"\0/tmp/.X11-unix/X{num}"]  # file, abstract
            for address in addresses:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(timeout)
                    try:
                        s.connect(address)
                        return ""
                    except OSError as e:
                        error = e
            raise error
        with socket.create_connection((host, 6000 + num), timeout=timeout):
            return ""
    except OSError as e:
        return (f"no X server answers on display {display} ($DISPLAY): "
                f"{e.strerror or e}")


NOTICE_SECONDS = 4.0
ERROR_COLOR = (60, 60, 255)  # BGR: a red that stays readable on the dark band


def draw_hud(frame: np.ndarray, lines: list[str], error: str = "") -> np.ndarray:
    """Text over a dark band at the top-left, drawn on a copy; `error` last, in red."""
    out = frame.copy()
    colors = [(255, 255, 255)] * len(lines)
    if error:
        lines, colors = [*lines, error], [*colors, ERROR_COLOR]
    # the widest line fills at most 95% of the frame, and the text is never larger than 0.6
    widest = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)[0][0] for t in lines)
    scale = min(0.6, 0.95 * (frame.shape[1] - 12) / widest)
    lh = max(8, int(22 * scale / 0.5))
    w = int(widest * scale) + 12
    band = out[: lh * len(lines) + 8, :w]
    band[:] = (band * 0.4).astype(np.uint8)
    for i, (text, color) in enumerate(zip(lines, colors)):
        cv2.putText(out, text, (6, lh * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    color, 1, cv2.LINE_AA)
    return out


class PreviewWindow(Sink):
    name = "preview"

    def __init__(self, title: str = WINDOW):
        ok, why = display_available()
        if not ok:
            raise SinkError(f"cannot open a preview window: {why}. Run with --no-preview and "
                            "--output FILE or --vcam, or start a desktop session")
        self.title = title
        self.hud_lines: list[str] = []
        self.show_hud = True
        # GUI_NORMAL: no Qt toolbar or status bar, only the picture
        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        # let the GUI map and expose the new window now: resized later, before Qt had seen it
        # mapped, it stayed black for good in about 1 run in 15 (Qt 5 on X11, no window manager)
        cv2.waitKey(1)
        self._shown = False
        self._open = True
        self._closed_by_user = False
        self._notice: tuple[str, bool, float] = ("", False, 0.0)  # text, error, until

    def notice(self, text: str, error: bool = False) -> None:
        """Show `text` for a few seconds (in red if `error`), with or without the HUD."""
        self._notice = (text, error, time.monotonic() + NOTICE_SECONDS)

    def send(self, frame: np.ndarray) -> None:
        if self._closed_by_user:
            return
        text, error, until = self._notice
        if text and time.monotonic() > until:
            text = ""
        lines = list(self.hud_lines) if self.show_hud else []
        if text and not error:
            lines.append(text)
        if lines or (text and error):
            frame = draw_hud(frame, lines, text if error else "")
        try:
            if not self._shown:
                cv2.resizeWindow(self.title, frame.shape[1], frame.shape[0])
                self._shown = True
            cv2.imshow(self.title, frame)
        except cv2.error:  # the window is gone (closed between two frames)
            self._closed_by_user = True

    def poll(self) -> list[str]:
        """Actions from keys pressed since the last call (also pumps the GUI event loop)."""
        if self._closed_by_user:
            return ["quit"]
        actions = []
        try:
            key = cv2.waitKeyEx(1)
            while key != -1:
                action = KEYS.get(key) or KEYS.get(key & 0xFF)
                if action:
                    actions.append(action)
                key = cv2.waitKeyEx(1)
            visible = not self._shown or cv2.getWindowProperty(
                self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:  # highgui has already destroyed the window
            visible = False
        if not visible:
            self._closed_by_user = True
            actions.append("quit")  # the user closed the window: as if q was pressed
        return actions

    def close(self) -> None:
        if self._open:
            self._open = False
            if self._closed_by_user:
                return  # highgui destroyed it; destroyWindow would raise "NULL guiReceiver"
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)  # let highgui process the destroy
            except cv2.error:
                pass  # closed by the user at the last moment: nothing left to release
