"""Progress of long commands: a ``rich`` bar on a terminal, plain lines otherwise.

Progress goes to standard error, results to standard output, so a script that reads the
results is not disturbed. Plain mode (a pipe, a log file, CI) writes one line per step,
flushed at once, so a log shows where a long run is.

Privacy reason: progress names files, customers and periods and counts only, never a
row value; callers pass only such text.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Protocol


class Progress(Protocol):
    """What long work reports: the item it starts, a step within it, and a finished item's line."""

    def start(self, item: str) -> None: ...

    def step(self, what: str) -> None: ...

    def done(self, line: str, *, stream: IO[str] | None = None) -> None: ...

    def tick(self, line: str) -> None: ...


class PlainProgress:
    """One flushed line per item and step on ``err``; finished lines on ``out`` (not a terminal)."""

    def __init__(self, label: str, total: int | None, out: IO[str], err: IO[str]) -> None:
        self.label, self.total, self.out, self.err = label, total, out, err
        self.index = 0
        self.item = ""
        self.t0 = time.perf_counter()

    def start(self, item: str) -> None:
        self.index += 1
        self.item = item
        self._err(f"{self.label} [{self.index}/{self.total}] {item}")

    def step(self, what: str) -> None:
        self._err(f"{self.label} [{self.index}/{self.total}] {self.item}: {what}")

    def done(self, line: str, *, stream: IO[str] | None = None) -> None:
        target = stream or self.out
        print(line, file=target, flush=True)

    def tick(self, line: str) -> None:
        """One item finished (no separate start): its line, at once."""
        self.index += 1
        self.done(line)

    def finish(self) -> None:
        of = f" of {self.total}" if self.total is not None else ""
        self._err(f"{self.label}: {self.index}{of} done in {time.perf_counter() - self.t0:.1f} s")

    def _err(self, line: str) -> None:
        print(line, file=self.err, flush=True)


class RichProgress:
    """A ``rich`` bar with the current item, step and elapsed time; finished lines printed above it."""

    def __init__(self, label: str, total: int | None, out: IO[str], err: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichBar

        self.out = out
        self.bar = RichBar(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=Console(file=err, highlight=False), transient=True,
        )  # fmt: skip
        self.label = label
        self.task = self.bar.add_task(label, total=total)
        self.item = ""
        self.started = 0

    def start(self, item: str) -> None:
        if self.started:
            self.bar.advance(self.task)
        self.started += 1
        self.item = item
        self.bar.update(self.task, description=f"{self.label}: {item}")

    def step(self, what: str) -> None:
        self.bar.update(self.task, description=f"{self.label}: {self.item} — {what}")

    def tick(self, line: str) -> None:
        self.bar.advance(self.task)
        self.done(line)

    def done(self, line: str, *, stream: IO[str] | None = None) -> None:
        target = stream or self.out
        if target.isatty():  # the same terminal as the bar: print above it, not through it
            self.bar.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=target, flush=True)

    def finish(self) -> None:
        if self.bar.tasks[0].total is not None:
            self.bar.update(self.task, completed=self.bar.tasks[0].total)


class SilentProgress:
    """No output (library calls, Dagster runs)."""

    def start(self, item: str) -> None:
        return None

    def step(self, what: str) -> None:
        return None

    def done(self, line: str, *, stream: IO[str] | None = None) -> None:
        return None

    def tick(self, line: str) -> None:
        return None


@contextmanager
def progress(
    label: str, total: int | None, *, out: IO[str] | None = None, err: IO[str] | None = None, rich: bool | None = None
) -> Iterator[PlainProgress | RichProgress]:
    """A progress reporter for ``total`` items (None: not known ahead): ``rich`` on a terminal, else plain lines."""
    out = out or sys.stdout
    err = err or sys.stderr
    use_rich = err.isatty() if rich is None else rich
    if use_rich:
        reporter = RichProgress(label, total, out, err)
        with reporter.bar:
            yield reporter
            reporter.finish()
    else:
        plain = PlainProgress(label, total, out, err)
        yield plain
        plain.finish()
