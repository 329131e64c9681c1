"""The terminal of `vdcos up`: the children's lines, and one progress line kept below them.

On a TTY the progress line is redrawn in place (and moved below each new child line); when
the output is a file or a pipe each new progress state is a plain line of its own.
"""

from __future__ import annotations

import sys
from typing import TextIO

_CLEAR_LINE = "\r\x1b[K"


class Console:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self._progress = ""

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
        self.stream.write(_CLEAR_LINE + text if self.tty else text + "\n")
        self.stream.flush()

    def end_progress(self, final: str) -> None:
        """Replace the progress line by a last, permanent line."""
        if self.tty and self._progress:
            self.stream.write(_CLEAR_LINE)
        self._progress = ""
        self.line(final)
