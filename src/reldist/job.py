"""One release about to go out from one workspace: the object check, preview, send and dispatch share.

Owns :class:`Job`, which builds the renderer, the message builder (with the DKIM signer when
``[dkim]`` is set), the composer and the planner once, and offers what each command needs of
them: the preflight, the preflight and the plan in one pass, the message of one ledger row
(:meth:`Job.outgoing`) and every recipient's message in turn (:meth:`Job.walk`). It sends nothing
and picks no transport: that is ``send``'s business.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from .compose import Built, Composer
from .engine import Limiter
from .envelope import Outgoing
from .ledger import Ledger, PlanEntry
from .ledgerrows import Row
from .message import MessageBuilder
from .plan import Planner, Preflight, contact_from_json
from .ratelimit import RateLimiter, lookback
from .release import Release
from .render import Renderer
from .settings import Rate
from .workspace import Workspace

__all__ = ["Job", "Planned"]


@dataclass(frozen=True, slots=True)
class Planned:
    """A plan made before :func:`reldist.send.send_release` (:meth:`Job.preflight_and_plan`)."""

    number: int
    recovered: int  # rows a dead run had left 'sending', now 'unknown'


class Job:
    """One release about to be sent from one workspace: renderer, builder and planner built once."""

    def __init__(
        self,
        workspace: Workspace,
        release: Release,
        *,
        lists: Sequence[str] = (),
        where: Sequence[tuple[str, str]] = (),
        strict: bool = False,
        ledger: Ledger | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        self.workspace = workspace
        self.release = release
        self.renderer = Renderer(workspace.config, release, now=now)
        signer = None
        if workspace.config.dkim is not None:  # dkimpy costs ~17 MB when imported: only if used
            from .dkim import signer_for

            signer = signer_for(workspace.config)
        self.builder = MessageBuilder(workspace.config, release, signer=signer)
        self.composer = Composer(self.renderer, self.builder)
        suppressed = None
        if ledger is not None:
            from .contacts import read_suppressed

            suppressed = {key: reason for key, (_, reason, _) in ledger.suppressions().items()}
            suppressed.update(read_suppressed(workspace.root))
        self.planner = Planner(
            workspace,
            release,
            self.renderer,
            self.builder,
            lists=lists,
            where=where,
            strict=strict,
            suppressed=suppressed,
        )

    def preflight(self) -> Preflight:
        return self.planner.preflight()

    def preflight_and_plan(self, ledger: Ledger) -> tuple[Preflight, Planned]:
        """The preflight and the planning in one pass over the lists (for ``send --yes`` and
        ``dispatch``, where nobody is asked in between), for :func:`reldist.send.send_release`.
        Rows a dead run left ``sending`` become ``unknown`` first, as ``send_release`` does, so
        that the plan sees them as such (a newly suppressed one becomes ``suppressed``). Nothing
        is planned if the preflight raises."""
        recovered = ledger.recover_interrupted(self.release.id)
        report = Preflight(self.release)
        number = ledger.plan(self.release.id, self.planner.entries(report, build=True))
        return report, Planned(number, recovered)

    def message_date(self, now: dt.datetime | None = None) -> dt.datetime:
        """The ``Date`` a preview or a test copy shows: what the real message will carry, in the
        workspace's zone, on the day the release is scheduled to go out (``send_at``) when that is
        still to come, else now."""
        now = now or dt.datetime.now(dt.UTC)
        send_at = self.release.send_at
        when = send_at if send_at is not None and send_at > now else now
        return when.astimezone(self.workspace.config.timezone)

    def outgoing(self, row: Row, *, message_id: str | None = None) -> Outgoing:
        """Render and build the message of one ledger row."""
        if row.contact is None:  # pragma: no cover - only queued rows are sent, and they carry one
            raise ValueError(f"row {row.id} has no contact")
        contact = contact_from_json(row.contact)
        built = self.composer.build(
            contact,
            message_id=message_id or row.message_id or self.builder.new_message_id(row.id),
            date=dt.datetime.now(self.workspace.config.timezone),  # Date: in the sender's zone
        )
        return Outgoing(
            seq=row.id,
            address=contact.address,
            envelope=self.builder.envelope(contact, seq=row.id),
            data=built.data,
            message_id=built.message_id,
            canonical=True,
        )

    def walk(
        self, report: Preflight, *, date: dt.datetime | None = None, sign: bool = True
    ) -> Iterator[tuple[PlanEntry, Built | None]]:
        """Every planned recipient with its built message (None for a skipped or suppressed row),
        for ``check`` and ``preview``.

        Fills ``report`` as the preflight does (counts, problems, sizes); holds one message at a
        time. ``sign=False`` leaves out the DKIM signature (the key was proved when it was loaded).
        """
        date = date or dt.datetime.now(dt.UTC)
        number = 0
        for entry in self.planner.entries(report):
            if entry.status != "queued" or entry.contact is None:
                yield entry, None
                continue
            number += 1
            built = self.composer.build(
                contact_from_json(entry.contact),
                message_id=self.builder.new_message_id(number),
                date=date,
                sign=sign,
            )
            report.largest = max(report.largest, len(built.data))
            report.total_bytes += len(built.data)
            yield entry, built


@contextmanager
def rate_limiter(
    ledger: Ledger,
    rates: Sequence[Rate],
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
) -> Iterator[Limiter]:
    """The limiter of one run, for the journalists' messages and test copies alike: on PostgreSQL
    the shared one, on a connection of its own that is closed afterwards (every sender's grants
    count); else one that starts from the ledger's history as far back as the longest rate."""
    if rates and ledger.dialect == "postgresql":
        from . import senders

        rate_db = senders.rate_connection(ledger)
        try:
            yield senders.SharedRateLimiter(rates, rate_db, sleep=sleep)
        finally:
            rate_db.close()
        return
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=lookback(rates))
    history = ledger.sent_times(since) if rates else ()
    yield RateLimiter(rates, clock=clock, sleep=sleep, history=history)
