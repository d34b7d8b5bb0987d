"""Showing a send as it goes: a rich progress bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from collections import Counter
from types import TracebackType
from typing import Any

import click

from ..envelope import Outcome
from ..ledgerrows import Row


class Progress:
    """Called once per recipient's final outcome. Use as a context manager around the send."""

    def __init__(self, *, label: str, quiet: bool = False) -> None:
        self.total = 0
        self.label = label
        self.quiet = quiet
        self.counts: Counter[str] = Counter()
        self.started = time.monotonic()
        self._bar: Any = None
        self._task: Any = None
        self._next_log = 0.1
        if sys.stderr.isatty() and not quiet:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )

    def __enter__(self) -> Progress:
        return self

    def begin(self, total: int) -> None:
        """The run knows how many recipients it will send to: show the bar."""
        self.total = total
        self.started = time.monotonic()
        if self._bar is not None and total:
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=total, counts="", rate="")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, row: Row, outcome: Outcome) -> None:
        self.counts[outcome.status] += 1
        done = sum(self.counts.values())
        if outcome.status != "sent":
            code = f"{outcome.code} " if outcome.code else ""
            line = f"{outcome.status}: {row.address} ({row.source}): {code}{outcome.reply}"
            if self._bar is not None:
                self._bar.console.print(line, markup=False, highlight=False)
            elif not self.quiet:
                click.echo(line, err=True)
        if self._bar is not None and self._task is not None:
            elapsed = max(time.monotonic() - self.started, 1e-6)
            counts = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
            self._bar.update(self._task, completed=done, counts=counts, rate=f"{done / elapsed:.0f}/s")
        elif not self.quiet and self.total >= 20 and done / self.total >= self._next_log:
            self._next_log += 0.1
            click.echo(f"{self.label}: {done}/{self.total} done ({self._summary()})", err=True)

    def _summary(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
