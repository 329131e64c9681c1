"""The terminal of `vdcos up`: the children's lines, and one progress line kept below them.

On a TTY the progress line is redrawn in place (and moved below each new child line); when
the output is a file or a pipe a new progress state is a plain line of its own, at most one
every PLAIN_PROGRESS_SECONDS (1,000 VMs would otherwise print 1,000 lines).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

_CLEAR_LINE = "\r\x1b[K"
PLAIN_PROGRESS_SECONDS = 2.0


class Console:
    def __init__(self, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self._progress = ""
        self._clock = clock
        self._printed_at: float | None = None

    def line(self, text: str) -> None:
        """A line of output (a child's log line, a message) above the progress line."""
        if self.tty and self._progress:
            self.stream.write(_CLEAR_LINE + text + "\n" + self._progress)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def progress(self, text: str) -> None:
        if text == self._progress:
            return
        self._progress = text
        if self.tty:
            self.stream.write(_CLEAR_LINE + text)
        else:
            now = self._clock()
            if self._printed_at is not None and now - self._printed_at < PLAIN_PROGRESS_SECONDS:
                return  # the final state comes with end_progress
            self._printed_at = now
            self.stream.write(text + "\n")
        self.stream.flush()

    def end_progress(self, final: str) -> None:
        """Replace the progress line by a last, permanent line."""
        if self.tty and self._progress:
            self.stream.write(_CLEAR_LINE)
        self._progress = ""
        self.line(final)
