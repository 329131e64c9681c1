"""Runs a few child processes as one command: started in order, stopped together.

`python -m devcluster` (API server, simulation) and `vdcos up` (plus the operator) run their
parts in separate processes so that they use more than one core. The user still sees one
command: the children's output comes through ours, Ctrl-C or SIGTERM stops them all (the
last started first), and a child that exits on its own is reported - which one, its exit
code, the tail of its output - and stops the rest with a non-zero exit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

TAIL_LINES = 20
STOP_SECONDS = 20.0  # a child that ignores SIGTERM this long is killed
_PR_SET_PDEATHSIG = 1


class ChildFailed(Exception):
    """A child exited while the others ran (or before it was ready)."""

    def __init__(self, child: Child) -> None:
        self.child = child
        super().__init__(child.failure_report())


@dataclass
class Child:
    name: str
    argv: list[str]
    process: asyncio.subprocess.Process
    tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    markers: dict[str, asyncio.Event] = field(default_factory=dict)
    output_done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pid(self) -> int:
        return self.process.pid

    def failure_report(self) -> str:
        code = self.process.returncode
        how = (f"was killed by signal {-code}" if code is not None and code < 0
               else f"exited with code {code}")
        lines = "\n".join(f"  | {line}" for line in self.tail) or "  | (no output)"
        return f"{self.name} (pid {self.pid}) {how}. Its last output:\n{lines}"


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it if the supervisor dies (even by SIGKILL).

    Without this a killed `vdcos up` would leave an API server and an operator running.
    Linux only; elsewhere the children outlive a supervisor killed with -9.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """The children of one command, and the signals that stop them."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self.children: list[Child] = []
        self._write = write or _write_stdout
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._failed: Child | None = None
        self._changed = asyncio.Event()

    # ---- starting ------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop_requested.set)

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested.is_set()

    async def start(self, name: str, argv: list[str], *, markers: tuple[str, ...] = (),
                    env: dict[str, str] | None = None) -> Child:
        """Start a child; `markers` are output substrings `wait_for` can wait on."""
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            # Its own session: the terminal's Ctrl-C reaches only us, and we stop the
            # children in order (operator first, API server last) instead of all at once.
            start_new_session=True, preexec_fn=_die_with_parent)
        child = Child(name, argv, process,
                      markers={marker: asyncio.Event() for marker in markers})
        self.children.append(child)
        asyncio.get_running_loop().create_task(self._pump(child), name=f"output of {name}")
        return child

    async def _pump(self, child: Child) -> None:
        """Copy a child's output to ours, keep its tail, and notice its markers and exit."""
        stream = child.process.stdout
        assert stream is not None
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than the stream's limit: take it in pieces
                raw = await stream.read(65536)
            if not raw:
                break
            line = raw.decode(errors="replace").rstrip("\n")
            child.tail.append(line)
            for marker, event in child.markers.items():
                if marker in line:
                    event.set()
            self._write(line)
        await child.process.wait()
        child.output_done.set()
        if not self._stopping and self._failed is None:
            self._failed = child
        self._changed.set()

    # ---- waiting -------------------------------------------------------------------------

    async def wait_for(self, child: Child, marker: str, timeout: float) -> None:
        """Until `child` prints `marker`; ChildFailed if any child exits first."""
        await self.until(child.markers[marker].wait(), timeout,
                         f"{child.name} did not print {marker!r} within {timeout:g}s")

    async def until(self, awaitable: Awaitable[object], timeout: float, what: str) -> None:
        """Await `awaitable`, unless a child fails or a stop is asked for first."""
        task = asyncio.ensure_future(awaitable)
        try:
            while not task.done():
                self._raise_if_failed()
                if self.stop_requested:
                    raise asyncio.CancelledError
                self._changed.clear()
                changed = asyncio.ensure_future(self._changed.wait())
                stop = asyncio.ensure_future(self._stop_requested.wait())
                done, _ = await asyncio.wait({task, changed, stop}, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                stop.cancel()
                if not done:
                    raise TimeoutError(what)
            self._raise_if_failed()
            task.result()
        finally:
            task.cancel()

    def _raise_if_failed(self) -> None:
        if self._failed is not None:
            raise ChildFailed(self._failed)

    async def run_until_stopped(self) -> int:
        """Until Ctrl-C/SIGTERM (exit 0) or a child exits (reported; exit 1)."""
        while self._failed is None and not self.stop_requested:
            self._changed.clear()
            changed = asyncio.ensure_future(self._changed.wait())
            stop = asyncio.ensure_future(self._stop_requested.wait())
            await asyncio.wait({changed, stop}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            stop.cancel()
        return 1 if self._failed is not None else 0

    async def run(self, start: Callable[[], Awaitable[None]]) -> int:
        """The whole life of a supervising command: `start` the children (it waits for each
        to be ready), run until Ctrl-C/SIGTERM or a child's exit, stop all. The exit code:
        0 when asked to stop, 1 when a child failed or did not start in time."""
        self.install_signal_handlers()
        code = 0
        try:
            await start()
            code = await self.run_until_stopped()
        except ChildFailed:
            code = 1
        except TimeoutError as error:
            print(f"Error: {error}", file=sys.stderr, flush=True)
            code = 1
        except asyncio.CancelledError:
            if not self.stop_requested:
                raise
        print("Stopping...", flush=True)
        await self.stop_all()
        self.report_failure()
        return code

    # ---- stopping ------------------------------------------------------------------------

    def report_failure(self) -> None:
        if self._failed is not None:
            print(f"Error: {self._failed.failure_report()}", file=sys.stderr, flush=True)

    async def stop_all(self) -> None:
        """SIGTERM each running child, the last started first; SIGKILL what hangs."""
        self._stopping = True
        for child in reversed(self.children):
            if child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(child.output_done.wait(), STOP_SECONDS)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        child.process.kill()
                    await child.process.wait()
            else:
                await child.output_done.wait()


def _write_stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
