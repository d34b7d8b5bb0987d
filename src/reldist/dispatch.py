"""Scheduled dispatch: which releases are due, and sending them unattended (``reldist dispatch``).

Owns the schedule of a workspace and the dispatcher that cron runs. :func:`scan` reads only the
``id`` and ``send_at`` of every ``releases/*/release.toml`` (an old release is never loaded again)
and asks the ledger how far each release got; :func:`decide` gives each one a :data:`State`:

=============  ==============================================================================
waiting        ``send_at`` is still to come
due            its time has come and no run has started it
late           due for more than :data:`LATE_AFTER` and not started (was the machine off?); it is
               still sent, up to ``[dispatch] max_late`` after ``send_at``
in progress    a run planned it and recipients are still queued, deferred or were being sent
done           a run planned it and nothing is left to send (failed and unknown recipients wait
               for a person: ``reldist status``, ``reldist send --retry``)
too late       not done, and more than ``max_late`` after ``send_at``: reported once, never sent
broken         its release.toml cannot be read (or, once due, the release does not load)
=============  ==============================================================================

:func:`dispatch` holds the workspace lock for the whole run (a second dispatcher gets
:class:`~reldist.errors.LockHeldError` at once) and takes up the due, late and in-progress
releases one at a time, oldest ``send_at`` first: a full preflight, then
:func:`reldist.send.send_release`, which turns rows a killed run left ``sending`` into ``unknown``
and continues with the rest. After each release it looks again, so one that fell due meanwhile
goes out in the same run. A release that does not load is reported and the others go on; when the
mail server cannot be reached the run stops (the next run continues). ``now`` is injected, and
``sleep``/``clock`` go to the send engine, so tests never wait. One line per release and one per
run go to the log file (``[dispatch] log_file``, logfmt). :func:`schedule` adds recipient counts
for ``reldist schedule``. Printing is the CLI's job; this module does not print.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from .envelope import Outcome
from .errors import LockHeldError, ReldistError, ReleaseError, place
from .ledger import Ledger, Row, Status
from .plan import Preflight
from .release import load_release, parse_when
from .render import utc_offset
from .send import Job, SendResult, Sleep, send_release
from .workspace import Workspace

State = Literal["waiting", "due", "late", "in progress", "done", "too late", "broken"]
Action = Literal["sent", "stopped", "would send", "too late", "broken", "not tried"]

#: A release due for longer than this that no run has started is shown as ``late``.
LATE_AFTER = dt.timedelta(minutes=15)
#: Recipient lines (failed, deferred, unknown) reported per release; the rest are counted.
MAX_RECIPIENT_LINES = 20
#: Exit codes from mild to severe; a run's code is the most severe of its releases'.
SEVERITY = (0, 3, 1, 4)

_PENDING: tuple[Status, ...] = ("queued", "deferred", "sending")
_SENDABLE: tuple[State, ...] = ("due", "late", "in progress")
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the ledger says a release got."""

    counts: Mapping[Status, int] = field(default_factory=dict)
    started: bool = False  # a run planned it (rows or a send run in the ledger)

    @property
    def pending(self) -> int:
        """Recipients a run would still send to (queued, deferred, or caught mid-send)."""
        return sum(self.counts.get(status, 0) for status in _PENDING)

    @property
    def finished(self) -> bool:
        return self.started and not self.pending

    @property
    def recipients(self) -> int:
        """Planned recipients, not counting skipped contact rows and suppressed addresses."""
        return sum(n for status, n in self.counts.items() if status not in ("skipped", "suppressed"))

    @property
    def sent(self) -> int:
        return self.counts.get("sent", 0)


@dataclass(frozen=True, slots=True)
class Scheduled:
    """One release folder with a ``send_at`` (or whose release.toml cannot be read)."""

    folder: Path
    release_id: str
    send_at: dt.datetime | None  # in UTC; None only when broken
    state: State
    progress: Progress = field(default_factory=Progress)
    error: str = ""  # why it is broken
    reported: bool = False  # "too late" was reported by an earlier run
    recipients: int | None = None  # filled in by schedule()

    def age(self, now: dt.datetime) -> dt.timedelta:
        """How long ago ``send_at`` was (negative while waiting)."""
        return now - self.send_at if self.send_at is not None else dt.timedelta(0)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Every scheduled release of a workspace, oldest ``send_at`` first (unreadable ones first)."""

    entries: list[Scheduled]
    unscheduled: list[str]  # ids of releases without send_at: dispatch never sends them

    def next_waiting(self) -> Scheduled | None:
        return next((e for e in self.entries if e.state == "waiting"), None)


def decide(send_at: dt.datetime, now: dt.datetime, *, max_late: dt.timedelta, progress: Progress) -> State:
    """The state of a release due at ``send_at`` at the moment ``now`` (see the module docstring)."""
    if progress.finished:
        return "done"
    age = now - send_at  # a difference, not a comparison: safe for times in a DST fold
    if age < dt.timedelta(0):
        return "waiting"
    if age > max_late:
        return "too late"
    if progress.started:
        return "in progress"
    return "late" if age > LATE_AFTER else "due"


def peek(folder: Path, workspace: Path) -> tuple[str, dt.datetime | None]:
    """The id and ``send_at`` of a release folder, from its release.toml alone.

    Raises :class:`ReleaseError` naming the file when it cannot be read or ``send_at`` is not a
    date and time with a zone (a time without a zone is an error, never a guess).
    """
    toml = folder / "release.toml"
    where = place(toml, workspace)
    try:
        data = tomllib.loads(toml.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ReleaseError(f"{where}: not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ReleaseError(f"{where}: {exc}") from None
    release_id = data.get("id", folder.name)
    if not isinstance(release_id, str) or not release_id.strip():
        raise ReleaseError(f"{where}: 'id' must be a non-empty string, not {release_id!r}")
    value = data.get("send_at")
    if value is not None and not isinstance(value, dt.datetime | str):
        raise ReleaseError(
            f"{where}: 'send_at' = {value!r} is not a date and time with a zone, such as 2026-11-28T10:00:00+05:00"
        )
    return release_id, parse_when(value, where, "send_at")


def scan(workspace: Workspace, *, now: dt.datetime, ledger: Ledger | None) -> Schedule:
    """The state of every scheduled release at ``now``; reads release.toml files and the ledger only."""
    root = workspace.root
    max_late = dt.timedelta(seconds=workspace.config.dispatch.max_late)
    entries: list[Scheduled] = []
    unscheduled: list[str] = []
    peeked: list[tuple[Path, str, dt.datetime | None]] = []
    folders_of: dict[str, list[str]] = {}
    for folder in _release_folders(root):
        try:
            release_id, send_at = peek(folder, root)
        except ReleaseError as exc:
            entries.append(Scheduled(folder, folder.name, None, "broken", error=str(exc)))
            continue
        # In UTC: one clock for comparing, sorting and the ledger.
        peeked.append((folder, release_id, send_at.astimezone(dt.UTC) if send_at else None))
        folders_of.setdefault(release_id, []).append(place(folder, root))
    for folder, release_id, send_at in peeked:
        if len(folders_of[release_id]) > 1:
            # They would share their ledger rows: sending either could skip the other's recipients.
            shared = " and ".join(folders_of[release_id])
            error = f"{shared} have the same id {release_id!r}; give each release its own id"
            entries.append(Scheduled(folder, release_id, None, "broken", error=error))
        elif send_at is None:
            unscheduled.append(release_id)
        else:
            progress = _progress(ledger, release_id)
            state = decide(send_at, now, max_late=max_late, progress=progress)
            reported = (
                state == "too late" and ledger is not None and _too_late_reported(ledger, release_id, send_at)
            )
            entries.append(Scheduled(folder, release_id, send_at, state, progress, reported=reported))
    entries.sort(key=lambda e: (e.send_at is not None, e.send_at or _EPOCH, e.release_id, e.folder))
    return Schedule(entries, unscheduled)


def schedule(workspace: Workspace, *, now: dt.datetime) -> Schedule:
    """:func:`scan` with every release's recipient count, for ``reldist schedule``. Sends nothing.

    A planned release counts its ledger rows; one not planned yet counts the contacts the planner
    would queue (lists read, suppressions applied, nothing rendered). A release that does not load
    becomes ``broken`` here, a warning before it is due.
    """
    with _existing_ledger(workspace) as ledger:
        found = scan(workspace, now=now, ledger=ledger)
        entries = [_counted(workspace, entry, ledger) for entry in found.entries]
    return Schedule(entries, found.unscheduled)


def _counted(workspace: Workspace, entry: Scheduled, ledger: Ledger | None) -> Scheduled:
    if entry.state == "broken":
        return entry
    if entry.progress.started:
        return replace(entry, recipients=entry.progress.recipients)
    try:
        release = load_release(
            entry.folder, workspace=workspace.root, default_languages=workspace.config.languages
        )
        job = Job(workspace, release, ledger=ledger)
        count = sum(1 for item in job.planner.entries() if item.status == "queued")
    except ReldistError as exc:
        return replace(entry, state="broken", error=str(exc))
    return replace(entry, recipients=count)


# -- the dispatcher -------------------------------------------------------------------------------


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

    @property
    def outcome(self) -> str:
        """``sent 12, failed 1``, ``would send 13``, ``too late``, ``not tried``, …"""
        if self.result is not None:
            parts = [f"{status} {n}" for status, n in sorted(self.result.outcomes.items())]
            if self.result.recovered_unknown:
                parts.append(f"unknown from an earlier run {self.result.recovered_unknown}")
            if self.result.unreachable:
                parts.append("stopped: server unreachable")
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
    """The most severe exit code: 4 (server unreachable) > 1 (broken release) > 3 > 0."""
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
            with _existing_ledger(workspace) as ledger:
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
    while True:
        when = current()
        found = scan(workspace, now=when, ledger=ledger)
        todo = [e for e in found.entries if e.folder not in handled and _wanted(e)]
        if not todo:
            result.schedule = found
            return
        entry = todo[0]
        handled.add(entry.folder)
        if stopped is not None and entry.state in _SENDABLE:
            run = ReleaseRun(
                entry.release_id,
                entry.folder,
                entry.send_at,
                entry.state,
                "not tried",
                late_by=entry.age(when),
            )
        else:
            run = _take(workspace, ledger, entry, when, dry_run=dry_run, sleep=sleep, clock=clock)
            if run.result is not None and run.result.unreachable:
                stopped = run.result.unreachable
        result.releases.append(run)
        done(run)


def _wanted(entry: Scheduled) -> bool:
    return entry.state in (*_SENDABLE, "broken") or (entry.state == "too late" and not entry.reported)


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
            f"{_recipients(entry.progress.pending)} not sent" if entry.progress.started else "it was not sent"
        )
        run.action, run.exit_code = "too late", 3
        run.problems.append(
            f"{rid}: too late: due {describe_time(entry.send_at, workspace.config.timezone)}, "
            f"{describe_duration(run.late_by)} ago, more than max_late ({describe_duration(max_late)}); "
            f"{left}. To send it anyway: reldist send {place(entry.folder, workspace.root)}"
        )
        if not dry_run and ledger is not None:
            number = ledger.start_run(rid, "dispatch")
            ledger.finish_run(number, f"{_too_late_mark(entry.send_at)}: not sent")
        return run

    try:
        release = load_release(
            entry.folder, workspace=workspace.root, default_languages=workspace.config.languages
        )
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
        run.problems.append(f"{rid}: stopped: {exc}")
        return run
    run.result = sent
    if sent.recovered_unknown:
        run.problems.append(
            f"{rid}: {_recipients(sent.recovered_unknown)} being sent when an earlier run stopped; "
            f"marked unknown, as they may have it already: reldist status {rid}"
        )
    run.problems.extend(lines)
    if more:
        run.problems.append(f"{rid}: … and {more} more recipients not delivered: reldist status {rid}")
    if sent.unreachable:
        remaining = sent.counts.get("queued", 0) + sent.counts.get("deferred", 0)
        run.action, run.exit_code = "stopped", 4
        run.problems.append(
            f"{rid}: stopped: {sent.unreachable}; {remaining} recipients left for the next run"
        )
    elif sent.recovered_unknown or any(sent.outcomes.get(s) for s in ("failed", "deferred", "unknown")):
        run.exit_code = 3
    return run


# -- the log file ---------------------------------------------------------------------------------


class DispatchLog:
    """Appends one logfmt line (``key=value``) per release and per run to the dispatch log.

    A line is written with a single ``write`` on a file opened for appending, so a second
    dispatcher's "busy" line never interleaves with the running one's. A log that cannot be
    written does not stop the run; the error is kept in :attr:`errors` for the caller to report.
    """

    def __init__(self, path: Path | None, tz: dt.tzinfo) -> None:
        self.path = path
        self.tz = tz
        self.errors: list[str] = []

    def write(self, when: dt.datetime, fields: Mapping[str, object]) -> None:
        if self.path is None:
            return
        parts = [when.astimezone(self.tz).isoformat(timespec="seconds"), f"pid={os.getpid()}"]
        parts += [_logfmt(key, value) for key, value in fields.items() if value is not None and value != ""]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(" ".join(parts) + "\n")
        except OSError as exc:
            if not self.errors:
                self.errors.append(f"cannot write the dispatch log {self.path}: {exc.strerror or exc}")

    def release(self, when: dt.datetime, run: ReleaseRun) -> None:
        self.write(
            when,
            {
                "event": "release",
                "release": run.release_id,
                "send_at": run.send_at.astimezone(self.tz).isoformat() if run.send_at else None,
                "state": run.state,
                "action": run.action,
                "outcome": run.outcome,
                "late": describe_duration(run.late_by) if run.late_by > LATE_AFTER else None,
                "exit": run.exit_code,
                "error": run.problems[0] if run.exit_code and run.problems else None,
            },
        )

    def run(self, when: dt.datetime, result: DispatchResult) -> None:
        following = result.schedule.next_waiting() if result.schedule else None
        sent = sum(r.result.outcomes.get("sent", 0) for r in result.releases if r.result is not None)
        self.write(
            when,
            {
                "event": "run",
                "releases": len(result.releases),
                "sent": sent,
                "problems": len(result.problems),
                "exit": result.exit_code,
                "elapsed": f"{result.elapsed:.1f}s",
                "next": (
                    f"{following.release_id}@{following.send_at.astimezone(self.tz).isoformat()}"
                    if following is not None and following.send_at is not None
                    else None
                ),
            },
        )


def _logfmt(key: str, value: object) -> str:
    text = " ".join(str(value).split())  # one line, always
    if not text or any(c in text for c in ' "=\\'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{key}={text}"


# -- helpers --------------------------------------------------------------------------------------


def describe_time(when: dt.datetime, tz: dt.tzinfo) -> str:
    """``2026-11-28 10:00 (UTC+5)``, ``2026-10-25 02:30 CEST (UTC+2)`` in the zone ``tz``."""
    local = when.astimezone(tz)
    name = local.tzname() or ""
    label = f" {name}" if name[:1].isalpha() and name != "UTC" else ""
    return f"{local:%Y-%m-%d %H:%M}{label} ({utc_offset(local)})"


def describe_duration(span: dt.timedelta) -> str:
    """``2 d 3 h``, ``3 h 5 min``, ``4 min``, ``30 s`` (rounded down, the sign dropped)."""
    seconds = int(abs(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def _recipients(n: int) -> str:
    return "1 recipient was" if n == 1 else f"{n} recipients were"


def _release_folders(root: Path) -> list[Path]:
    folder = root / "releases"
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / "release.toml").is_file()
    )


def _progress(ledger: Ledger | None, release_id: str) -> Progress:
    if ledger is None:
        return Progress()
    counts = ledger.counts(release_id)
    started = any(counts.values()) or bool(ledger.runs(release_id, "send"))
    return Progress(counts, started)


def _too_late_mark(send_at: dt.datetime) -> str:
    return f"too late (send_at {send_at.astimezone(dt.UTC).isoformat()})"


def _too_late_reported(ledger: Ledger, release_id: str, send_at: dt.datetime) -> bool:
    mark = _too_late_mark(send_at)
    return any(outcome.startswith(mark) for _, _, _, outcome in ledger.runs(release_id, "dispatch"))


@contextlib.contextmanager
def _existing_ledger(workspace: Workspace) -> Iterator[Ledger | None]:
    """The ledger if there is one; a look-only command never creates it."""
    if not workspace.has_ledger():
        yield None
        return
    with workspace.open_ledger(create=False) as ledger:
        yield ledger


__all__ = [
    "LATE_AFTER",
    "DispatchLog",
    "DispatchResult",
    "Progress",
    "ReleaseRun",
    "Schedule",
    "Scheduled",
    "State",
    "decide",
    "describe_duration",
    "describe_time",
    "dispatch",
    "peek",
    "scan",
    "schedule",
    "worst",
]
