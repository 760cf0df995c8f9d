"""What the keys (and signals) change while a run goes on, and the HUD text that shows it.

The preview window turns key presses into action names (sinks/preview.py KEYS); here each
action changes the `Controls` the loop reads every frame, or asks the StyleSwitcher for
another style.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from livestyle.sinks.preview import HELP
from livestyle.switching import StyleSwitcher
from livestyle.timers import STAGES, StageTimers

# the stroke scales [ and ] step through
STROKES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)


@dataclass
class Controls:
    """What the keys (and signals) change while running."""

    blend: float = 1.0
    stroke: float = 1.0  # the generator runs at 1/stroke of the processing size: larger
    # strokes and outlines, and faster ([ and ] change it live)
    show_original: bool = False
    hud: bool = True
    quit: bool = False
    snapshot: int = 0  # snapshots asked for (s pressed) and not yet taken
    running: bool = False  # set by run_loop while it checks `quit` every frame
    on_stop: list = field(default_factory=list)  # called by request_stop (source.interrupt)

    def request_stop(self) -> bool:
        """Ask the running loop to end after the frame it is on (safe in a signal handler);
        a source waiting for a frame stops waiting.

        False when no loop is running or a stop was already asked for: the caller should then
        interrupt harder (the CLI raises KeyboardInterrupt)."""
        if not self.running or self.quit:
            return False
        self.quit = True
        for hook in self.on_stop:
            hook()
        return True


def apply_action(action: str, controls: Controls, switcher: StyleSwitcher) -> None:
    if action == "quit":
        controls.quit = True
    elif action == "next":
        switcher.request(switcher.wanted + 1)
    elif action == "previous":
        switcher.request(switcher.wanted - 1)
    elif action.startswith("style:"):
        i = int(action.split(":")[1])
        if i < len(switcher.styles):
            switcher.request(i)
    elif action == "original":
        controls.show_original = not controls.show_original
    elif action == "more":
        controls.blend = min(1.0, round(controls.blend + 0.1, 2))
    elif action == "less":
        controls.blend = max(0.0, round(controls.blend - 0.1, 2))
    elif action in ("bigger", "finer"):
        i = STROKES.index(min(STROKES, key=lambda v: abs(v - controls.stroke)))
        i = min(i + 1, len(STROKES) - 1) if action == "bigger" else max(i - 1, 0)
        controls.stroke = STROKES[i]
    elif action == "snapshot":
        controls.snapshot += 1
    elif action == "hud":
        controls.hud = not controls.hud


def hud_lines(switcher: StyleSwitcher, timers: StageTimers, controls: Controls, dropped: int,
              size: tuple[int, int]) -> list[str]:
    name = "ORIGINAL" if controls.show_original else switcher.style.name
    loading = f" (loading {switcher.styles[switcher.wanted].name})" if (
        switcher.wanted != switcher.index) else ""
    stages = " ".join(f"{s[:5]} {timers.recent_ms(s):.1f}" for s in STAGES[1:])
    return [
        f"{name}{loading}  [{switcher.index + 1}/{len(switcher.styles)}]  blend {controls.blend:.1f}"
        f"  stroke {controls.stroke:g}x",
        f"{timers.fps():5.1f} fps  {switcher.backend.name} @ {size[0]}x{size[1]}  "
        f"dropped {dropped}",
        f"ms: {stages}",
        HELP,
    ]
