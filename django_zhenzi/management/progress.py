"""A plain-text progress bar for commands that work through many items."""

from __future__ import annotations

from django.core.management.base import OutputWrapper


class Progress:
    """A plain-text progress bar: redrawn in place on a terminal, a line per 10% elsewhere."""

    WIDTH = 30

    def __init__(self, stream: OutputWrapper, total: int, *, enabled: bool) -> None:
        self.stream = stream
        self.total = total
        self.enabled = enabled and total > 0
        self.in_place = stream.isatty()
        self.done = 0
        self.shown = -1  # the last percentage (terminal) or tenth (elsewhere) written
        self.drawn_length = 0

    def advance(self, count: int = 1) -> None:
        self.done = min(self.total, self.done + count)
        if not self.enabled:
            return
        percent = self.done * 100 // self.total
        step = percent if self.in_place else percent // 10
        if step != self.shown:
            self.shown = step
            self._draw(percent)

    def clear(self) -> None:
        """Remove the bar so other output can be written (a terminal only)."""
        if self.enabled and self.in_place and self.shown >= 0:
            self.stream.write("\r" + " " * self.drawn_length + "\r", style_func=str, ending="")
            self.stream.flush()

    def redraw(self) -> None:
        if self.enabled and self.in_place and self.shown >= 0:
            self._draw(self.done * 100 // self.total)

    def finish(self) -> None:
        if self.enabled and self.in_place and self.shown >= 0:
            self.stream.write("", style_func=str)  # keep the full bar, end its line

    def _draw(self, percent: int) -> None:
        filled = self.WIDTH * self.done // self.total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        text = f"[{bar}] {self.done}/{self.total} {percent}%"
        self.drawn_length = len(text)
        if self.in_place:
            self.stream.write("\r" + text, style_func=str, ending="")
        else:
            self.stream.write(text, style_func=str)
        self.stream.flush()
