"""The dispatcher that cron runs (``reldist dispatch``): every due release sent, unattended.

:func:`dispatch` holds the workspace lock for the whole run (a second dispatcher gets
:class:`~reldist.errors.LockHeldError` at once) and takes up the due, late and in-progress
releases of the schedule (:mod:`reldist.schedule`) one at a time, oldest ``send_at`` first: a
full preflight, then :func:`reldist.send.send_release`, which turns rows a killed run left
``sending`` into ``unknown`` and continues with the rest. After each release it looks again, so
one that fell due meanwhile goes out in the same run. A release that does not load is reported
and the others go on; when the mail server cannot be reached, or a daily rate is used up
(``held``), the run stops (the next run continues). ``now`` is injected, and ``sleep``/``clock`` go to the send engine, so tests never
wait. One line per release and one per run go to the log file (:mod:`reldist.dispatchlog`).
Printing is the CLI's job; this module does not print.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .describe import count, describe_duration, describe_time, recipients_were
from .dispatchlog import DispatchLog
from .engine import SendResult, Sleep
from .envelope import Outcome
from .errors import LockHeldError, ReldistError, place
from .job import Job
from .ledger import Ledger
from .ledgerrows import Row
from .leftovers import refuse_unfilled
from .plan import Preflight
from .release import load_release
from .schedule import SENDABLE, Schedule, Scheduled, State, existing_ledger, scan, too_late_mark
from .send import send_release
from .settings import HELD_MARK
from .workspace import Workspace

__all__ = ["DispatchResult", "ReleaseRun", "dispatch", "worst"]

Action = Literal["sent", "held", "stopped", "would send", "too late", "broken", "not tried"]

#: Recipient lines (failed, deferred, unknown) reported per release; the rest are counted.
MAX_RECIPIENT_LINES = 20
#: Exit codes from mild to severe; a run's code is the most severe of its releases'.
SEVERITY = (0, 3, 1, 4)


@dataclass(slots=True)
class ReleaseRun:
    """What one dispatch run did with one release."""

    release_id: str
    folder: Path
    send_at: dt.datetime | None
    state: State  # as the run found it
    action: Action
    exit_code: int = 0  # 0, 1 (broken), 3 (recipients failed, deferred, unknown; too late), 4
    late_by: dt.timedelta = dt.timedelta(0)  # how long after send_at the run took it up
    result: SendResult | None = None
    would_send: int = 0  # --dry-run: recipients it would send to now
    problems: list[str] = field(default_factory=list)  # one line each, for stderr
    cause: str | None = None  # what stopped or broke the release (the log's error), if anything
    resume_at: dt.datetime | None = None  # held: when the rate allows the next message

    @property
    def outcome(self) -> str:
        """``sent 12, failed 1``, ``would send 13``, ``too late``, ``not tried``, …"""
        if self.result is not None:
            parts = [f"{status} {n}" for status, n in sorted(self.result.outcomes.items())]
            if self.result.recovered_unknown:
                parts.append(f"unknown from an earlier run {self.result.recovered_unknown}")
            if self.result.unreachable:
                parts.append(
                    "stopped: server unreachable"
                    if self.result.stop_code == 4
                    else "stopped: the server refuses our settings"
                )
            elif self.result.held is not None:
                parts.append(f"held by the rate {self.result.held.rate.text}")
            return ", ".join(parts) or "nothing left to send"
        if self.action == "would send":
            return f"would send {self.would_send}"
        return self.action


@dataclass(slots=True)
class DispatchResult:
    """What one dispatch run did; ``exit_code`` is the most severe of its releases' codes."""

    started: dt.datetime
    dry_run: bool = False
    releases: list[ReleaseRun] = field(default_factory=list)
    schedule: Schedule | None = None  # as it stood when the run ended
    warnings: list[str] = field(default_factory=list)  # the log file cannot be written, …
    elapsed: float = 0.0

    @property
    def exit_code(self) -> int:
        return worst(run.exit_code for run in self.releases)

    @property
    def problems(self) -> list[str]:
        return [line for run in self.releases for line in run.problems] + self.warnings


def worst(codes: Iterable[int]) -> int:
    """The most severe exit code: an interruption (130, 143) > 4 (server unreachable) > 1 (broken
    release) > 3 > 0."""
    return max(codes, key=lambda code: SEVERITY.index(code) if code in SEVERITY else len(SEVERITY), default=0)


def dispatch(
    workspace: Workspace,
    *,
    now: dt.datetime,
    dry_run: bool = False,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.time,
    on_release: Callable[[ReleaseRun], None] | None = None,
) -> DispatchResult:
    """Send every release whose ``send_at`` has come and that is not finished, oldest first.

    ``now`` is the time the run starts (time zone required); the run's later times are ``now``
    plus what ``clock`` says has passed. ``on_release`` hears of each release as it is done.
    Raises :class:`LockHeldError` at once when another process holds the workspace lock. With
    ``dry_run`` nothing is sent, recorded or logged, and no lock is taken.
    """
    if now.utcoffset() is None:
        raise ValueError(f"dispatch: now={now.isoformat()} has no time zone")
    config = workspace.config
    log = DispatchLog(None if dry_run else config.dispatch.log_file, config.timezone)
    start = clock()
    result = DispatchResult(started=now, dry_run=dry_run)

    def current() -> dt.datetime:
        return now + dt.timedelta(seconds=max(0.0, clock() - start))

    def done(run: ReleaseRun) -> None:
        log.release(current(), run)
        if on_release is not None:
            on_release(run)

    try:
        if dry_run:
            with existing_ledger(workspace) as ledger:
                _run(workspace, ledger, result, current, done, dry_run=True, sleep=sleep, clock=clock)
        else:
            with workspace.lock("reldist dispatch"), workspace.open_ledger() as ledger:
                _run(workspace, ledger, result, current, done, dry_run=False, sleep=sleep, clock=clock)
    except LockHeldError as exc:
        log.write(now, {"event": "busy", "error": str(exc), "exit": exc.exit_code})
        result.warnings.extend(log.errors)
        raise
    except BaseException as exc:
        log.write(current(), {"event": "run", "error": f"aborted: {type(exc).__name__}: {exc}"})
        raise
    result.elapsed = max(0.0, clock() - start)
    log.run(current(), result)
    result.warnings.extend(log.errors)
    return result


def _run(
    workspace: Workspace,
    ledger: Ledger | None,
    result: DispatchResult,
    current: Callable[[], dt.datetime],
    done: Callable[[ReleaseRun], None],
    *,
    dry_run: bool,
    sleep: Sleep,
    clock: Callable[[], float],
) -> None:
    handled: set[Path] = set()
    stopped: str | None = None
    held: ReleaseRun | None = None  # the release a used-up daily rate stopped
    while True:
        when = current()
        found = scan(workspace, now=when, ledger=ledger)
        todo = [e for e in found.entries if e.folder not in handled and _wanted(e)]
        if not todo:
            result.schedule = found
            return
        entry = todo[0]
        handled.add(entry.folder)
        if stopped is not None and entry.state in SENDABLE:
            run = ReleaseRun(
                entry.release_id,
                entry.folder,
                entry.send_at,
                entry.state,
                "not tried",
                late_by=entry.age(when),
            )
            if held is not None and held.result is not None and held.result.held and ledger is not None:
                # Held back by the same rate: say until when, and record it, so that the wait
                # does not make this release too late either (``schedule.decide``).
                run.resume_at = held.resume_at
                until = dt.datetime.fromtimestamp(held.result.held.until, dt.UTC).isoformat(
                    timespec="seconds"
                )
                number = ledger.start_run(entry.release_id, "dispatch")
                ledger.finish_run(
                    number, f"not tried: {HELD_MARK} {held.result.held.rate.text} until {until}"
                )
        else:
            run = _take(workspace, ledger, entry, when, dry_run=dry_run, sleep=sleep, clock=clock)
            if run.result is not None and run.result.interrupted:
                stopped = "interrupted"
            elif run.result is not None and run.result.unreachable:
                stopped = run.result.unreachable
            elif run.action == "held":
                stopped, held = "held", run  # the rate counts every release's messages: the others wait too
        result.releases.append(run)
        done(run)


def _wanted(entry: Scheduled) -> bool:
    return entry.state in (*SENDABLE, "broken") or (entry.state == "too late" and not entry.reported)


def _take(
    workspace: Workspace,
    ledger: Ledger | None,
    entry: Scheduled,
    when: dt.datetime,
    *,
    dry_run: bool,
    sleep: Sleep,
    clock: Callable[[], float],
) -> ReleaseRun:
    """Send (or, for a dry run, count) one release; never raises a ReldistError."""
    rid = entry.release_id
    run = ReleaseRun(rid, entry.folder, entry.send_at, entry.state, "sent", late_by=entry.age(when))
    if entry.state == "broken":
        run.action, run.exit_code = "broken", 1
        run.problems.append(f"{rid}: not sent: {entry.error}")
        return run
    if entry.state == "too late":
        assert entry.send_at is not None  # only broken entries lack it
        max_late = dt.timedelta(seconds=workspace.config.dispatch.max_late)
        left = (
            f"{recipients_were(entry.progress.pending)} not sent"
            if entry.progress.started
            else "it was not sent"
        )
        run.action, run.exit_code = "too late", 3
        run.problems.append(
            f"{rid}: too late: due {describe_time(entry.send_at, workspace.config.timezone)}, "
            f"{describe_duration(run.late_by)} ago, more than max_late ({describe_duration(max_late)}); "
            f"{left}. To send it anyway: reldist send {place(entry.folder, workspace.root)}"
        )
        if not dry_run and ledger is not None:
            number = ledger.start_run(rid, "dispatch")
            ledger.finish_run(number, f"{too_late_mark(entry.send_at)}: not sent")
        return run

    try:
        release = load_release(
            entry.folder, workspace=workspace.root, default_languages=workspace.config.languages
        )
        refuse_unfilled(release, workspace.root, place(entry.folder, workspace.root))
        job = Job(workspace, release, ledger=ledger, now=when)
        planned = None
        if dry_run or ledger is None:
            report = Preflight(release)
            queued = [e.address_key for e in job.planner.entries(report, build=True) if e.status == "queued"]
        else:  # one pass over the lists: preflight and plan (nothing is planned if it fails)
            report, planned = job.preflight_and_plan(ledger)
    except ReldistError as exc:
        run.action, run.exit_code = "broken", 1
        run.problems.append(f"{rid}: not sent: {exc}")
        return run
    if not entry.progress.started:  # bad contact rows are reported when the release is planned
        run.problems.extend(f"{rid}: skipped: {skipped}" for skipped in report.invalid)
    if dry_run:
        finished = set()
        if ledger is not None:
            finished = {
                r.address.casefold() for r in ledger.rows(rid) if r.status not in ("queued", "deferred")
            }
        run.action = "would send"
        run.would_send = sum(1 for key in queued if key not in finished)
        return run
    assert ledger is not None  # a real run always opens the ledger

    lines: list[str] = []
    more = 0

    def note(row: Row, outcome: Outcome) -> None:
        nonlocal more
        if outcome.status == "sent":
            return
        if len(lines) < MAX_RECIPIENT_LINES:
            code = f"{outcome.code} " if outcome.code else ""
            lines.append(
                f"{rid}: {outcome.status}: {row.address} ({row.source}): {code}{outcome.reply}".rstrip()
            )
        else:
            more += 1

    try:
        sent = send_release(job, ledger, sleep=sleep, clock=clock, on_result=note, planned=planned)
    except ReldistError as exc:
        run.action, run.exit_code = "broken", 1
        run.cause = f"{rid}: stopped: {exc}"
        run.problems.append(run.cause)
        return run
    run.result = sent
    if sent.recovered_unknown:
        run.problems.append(
            f"{rid}: {recipients_were(sent.recovered_unknown)} being sent when an earlier run stopped; "
            f"marked unknown, as they may have it already: reldist status {rid}"
        )
    run.problems.extend(lines)
    if more:
        run.problems.append(f"{rid}: … and {more} more recipients not delivered: reldist status {rid}")
    if sent.interrupted:
        run.action, run.exit_code = "stopped", sent.exit_code
        run.cause = f"{rid}: interrupted by {signal.Signals(sent.interrupted).name}; the rest is left for the next run"
        run.problems.append(run.cause)
    elif sent.unreachable:
        remaining = sent.counts.get("queued", 0) + sent.counts.get("deferred", 0)
        run.action, run.exit_code = "stopped", sent.stop_code
        run.cause = (
            f"{rid}: stopped: {sent.unreachable}; {count(remaining, 'recipient')} left for the next run"
        )
        run.problems.append(run.cause)
    elif sent.recovered_unknown or any(sent.outcomes.get(s) for s in ("failed", "deferred", "unknown")):
        run.exit_code = 3
    if sent.held is not None and not (sent.interrupted or sent.unreachable):
        # Not a problem: the daily cap is spent, and the next run after resume_at goes on.
        run.action = "held"
        run.resume_at = dt.datetime.fromtimestamp(sent.held.until, dt.UTC)
    return run


# -- helpers --------------------------------------------------------------------------------------
