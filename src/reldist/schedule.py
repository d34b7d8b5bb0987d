"""The schedule of a workspace: which releases are due, and how far each got.

Owns :func:`scan`, which reads only the ``id`` and ``send_at`` of every
``releases/*/release.toml`` (:func:`peek`; an old release is never loaded again) and asks the
ledger how far each release got, and :func:`decide`, which gives each one a :data:`State`:

=============  ==============================================================================
waiting        ``send_at`` is still to come
due            its time has come and no run has started it
late           due for more than :data:`LATE_AFTER` and not started (was the machine off?); it is
               still sent, up to ``[dispatch] max_late`` after ``send_at``
in progress    a run planned it and recipients are still queued, deferred or were being sent
               (one that a daily rate holds back stays in progress past ``max_late``; one that
               the rate kept from starting is not too late either: ``Progress.held``)
done           a run planned it and nothing is left to send (failed and unknown recipients wait
               for a person: ``reldist status``, ``reldist send --retry``)
too late       not done, and more than ``max_late`` after ``send_at``: reported once, never sent
broken         its release.toml cannot be read (or, once due, the release does not load)
=============  ==============================================================================

:func:`schedule` adds recipient counts for ``reldist schedule``. Sending is ``dispatch``'s job;
:func:`ahead_of_schedule` tells ``send``, ``check`` and their prompts that a release is not due yet.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from .describe import describe_duration, describe_time
from .errors import ReldistError, ReleaseError, place
from .job import Job
from .ledger import Ledger
from .ledgerrows import Status
from .names import check_id
from .release import Release, load_release, parse_when
from .settings import HELD_MARK
from .workspace import Workspace

__all__ = [
    "LATE_AFTER",
    "SENDABLE",
    "Progress",
    "Schedule",
    "Scheduled",
    "State",
    "ahead_of_schedule",
    "decide",
    "existing_ledger",
    "peek",
    "scan",
    "schedule",
    "too_late_mark",
]

State = Literal["waiting", "due", "late", "in progress", "done", "too late", "broken"]

#: A release due for longer than this that no run has started is shown as ``late``.
LATE_AFTER = dt.timedelta(minutes=15)
#: The states a dispatch run sends.
SENDABLE: tuple[State, ...] = ("due", "late", "in progress")

_PENDING: tuple[Status, ...] = ("queued", "deferred", "sending")
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the ledger says a release got."""

    counts: Mapping[Status, int] = field(default_factory=dict)
    started: bool = False  # a run planned it (rows or a send run in the ledger)
    held: bool = False  # its last dispatch stopped (or did not start it) because a daily rate was used up

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
    if age > max_late and not progress.held:
        # A release a daily rate holds back is continued however long that takes: the rate,
        # not a late machine, is what spreads it over days.
        return "too late"
    if progress.started:
        return "in progress"
    return "late" if age > LATE_AFTER else "due"


def ahead_of_schedule(release: Release, now: dt.datetime, tz: dt.tzinfo) -> str | None:
    """When ``release`` has a ``send_at`` still to come at ``now``: where and when dispatch sends it
    (``2026-12-03 10:00 (UTC+5), in 2 d 7 h``); else None (unscheduled, or due already)."""
    if release.send_at is None or release.send_at <= now:
        return None
    return f"{describe_time(release.send_at, tz)}, in {describe_duration(release.send_at - now)}"


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
        raise ReleaseError(f"not UTF-8 text ({exc.reason})", place=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise ReleaseError(f"{exc}", place=where) from None
    release_id = check_id(data.get("id", folder.name), where, given="id" in data)  # a slug, as load_release
    value = data.get("send_at")
    if value is not None and not isinstance(value, dt.datetime | str):
        raise ReleaseError(
            f"'send_at' = {value!r} is not a date and time with a zone, such as 2026-11-28T10:00:00+05:00",
            place=where,
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
    with existing_ledger(workspace) as ledger:
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
    last = ledger.last_run(release_id)  # a run that sent some, or found the rate used up before it
    held = last is not None and HELD_MARK in last[2]
    return Progress(counts, started, held)


def too_late_mark(send_at: dt.datetime) -> str:
    return f"too late (send_at {send_at.astimezone(dt.UTC).isoformat()})"


def _too_late_reported(ledger: Ledger, release_id: str, send_at: dt.datetime) -> bool:
    mark = too_late_mark(send_at)
    return any(outcome.startswith(mark) for _, _, _, outcome in ledger.runs(release_id, "dispatch"))


@contextlib.contextmanager
def existing_ledger(workspace: Workspace) -> Iterator[Ledger | None]:
    """The ledger if there is one; a look-only command never creates it."""
    if not workspace.has_ledger():
        yield None
        return
    with workspace.open_ledger(create=False) as ledger:
        yield ledger
