"""``reldist inbox``: read the replies mailbox and record what came back.

Sources: an IMAP folder (``[inbox]``, through imap-tools; processed messages are MOVEd to
``processed_folder`` — COPY and delete where MOVE is missing — never deleted), a Maildir or an
mbox file (read only). Each message is classified (``classify``), matched to a delivery (our
Message-ID in the returned message, In-Reply-To or References; else a signed token in the
subject or a VERP address; else the recipient among recent deliveries) and recorded in one
transaction keyed on the incoming Message-ID (or a digest), so running twice records nothing
twice and a run killed half-way loses nothing: what was recorded but not yet moved is moved by
the next run. Unmatched and unrecognised messages stay where they are.

Locks: ``inbox`` does not take the workspace lock. It must run while a long ``send`` or
``dispatch`` holds it (a bounce or an unsubscribe read mid-send stops the messages not yet sent:
``Ledger.mark_sending`` checks suppressions as it claims each row), and its writes are short
transactions that SQLite's own write lock and busy timeout order with the sender's. What it
does take is a lock of its own, one mailbox reader per ledger (:func:`one_reader`), so that two
readers (cron and a person, or two dispatchers on a PostgreSQL ledger) never classify and move
the same messages at once; the second is told so (exit 75) rather than waiting.
"""

from __future__ import annotations

import contextlib
import mailbox
import os
import ssl
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..config import Config
from ..describe import count
from ..errors import ConfigError, ReldistError
from ..ledger import Ledger
from ..ledgerdb import LOCK_CLASS, describe
from ..ledgerrows import Row
from ..tokens import Keys, verify_verp
from .classify import classify
from .incoming import Report, message_key, parse
from .store import Feedback, Kind, unsubscribe

if TYPE_CHECKING:
    from .settings import InboxSettings

__all__ = [
    "Inbox",
    "InboxBusyError",
    "InboxError",
    "Summary",
    "imap_source",
    "maildir_source",
    "mbox_source",
    "one_reader",
    "read_inbox",
]

#: One incoming message: (a key to move it by, or None; its bytes).
Item = tuple[str | None, bytes]
Outcome = Kind | Literal["duplicate", "unmatched"]


class InboxError(ReldistError, ConnectionError):
    """The mailbox could not be reached or read."""

    exit_code = 4


class InboxBusyError(ReldistError, BlockingIOError):
    """Another process is reading the mailbox into the same ledger."""

    exit_code = 75


@contextlib.contextmanager
def one_reader(ledger: Ledger, config: Config) -> Iterator[None]:
    """Hold the ledger's mailbox-reader lock; :class:`InboxBusyError` at once when another
    process has it. SQLite: a ``flock`` on ``<ledger>.inbox.lock`` beside the file (released
    when the holder dies); PostgreSQL: a session advisory lock (released when its connection
    drops), so readers on different machines exclude each other too."""
    busy = "another reldist is reading the mailbox into this ledger; try again when it is done"
    if ledger.dialect == "postgresql":
        got = ledger.db.execute("SELECT pg_try_advisory_lock(?, hashtext('inbox'))", (LOCK_CLASS,))
        if not got.fetchone()[0]:
            raise InboxBusyError(busy, place=describe(ledger.path))
        try:
            yield
        finally:
            with contextlib.suppress(ReldistError):  # a lost connection has dropped the lock already
                ledger.db.execute("SELECT pg_advisory_unlock(?, hashtext('inbox'))", (LOCK_CLASS,))
        return
    from ..workspace import flocked

    path = config.ledger_path.with_name(config.ledger_path.name + ".inbox.lock")
    with flocked(path) as (_, held):
        if not held:
            raise InboxBusyError(busy, place=path.name)
        yield


@dataclass(slots=True)
class Summary:
    """What one run found."""

    outcomes: Counter[str] = field(default_factory=Counter)
    suppressed: int = 0
    moved: int = 0
    lines: list[str] = field(default_factory=list)  # one per message, for --dry-run and -v

    @property
    def read(self) -> int:
        return sum(self.outcomes.values())

    def text(self, *, where: str) -> str:
        shown = ", ".join(f"{count} {name}" for name, count in sorted(self.outcomes.items()) if count)
        return (
            f"inbox: {count(self.read, 'message')} read from {where}" + (f": {shown}" if shown else "")
            + f"; {count(self.suppressed, 'address', 'addresses')} suppressed"
            + (f"; {self.moved} moved" if self.moved else "")
        )  # fmt: skip


_FEEDBACK: dict[str, Kind] = {
    "complaint": "complained",
    "unsubscribe": "unsubscribed",
    "auto-reply": "auto-replied",
    "reply": "replied",
}
_BOUNCES: dict[str, Kind] = {
    "hard": "bounced",
    "soft": "soft-bounced",
    "policy": "policy-bounced",
    "": "soft-bounced",
}


class Inbox:
    """Classify, match and record incoming messages into one ledger."""

    def __init__(
        self,
        ledger: Ledger,
        keys: Keys | None,
        *,
        soft_limit: int = 3,
        dry_run: bool = False,
        days: float = 60.0,
    ) -> None:
        self.feedback = Feedback(ledger)
        self.keys = keys
        self.soft_limit = soft_limit
        self.dry_run = dry_run
        self.days = days
        self.keep_lines = dry_run  # one line a message, for --dry-run and -v (memory grows with them)

    def match(self, report: Report) -> Row | None:
        """The delivery a report is about: by Message-ID, by token, by recipient address."""
        for message_id in report.message_ids:
            row = self.feedback.by_message_id(message_id)
            if row is not None:
                return row
        if self.keys is not None:
            for token in report.tokens:
                row = self.feedback.by_token(self.keys, token)
                if row is None and (row_id := verify_verp(self.keys, token)) is not None:
                    row = self.feedback.by_id(row_id)
                if row is not None:
                    return row
        for address in report.recipients:
            row = self.feedback.by_address(address, days=self.days)
            if row is not None:
                return row
        return None

    def handle(self, raw: bytes) -> tuple[Outcome, str]:
        """Record one message; returns what it was and a line describing it."""
        message = parse(raw)
        key = message_key(message, raw)
        if self.feedback.seen(key):
            return "duplicate", f"{key}: recorded before"
        report = classify(message, raw)
        if report.kind == "unknown":
            return "unmatched", f"{key}: not a report or a reply"
        row = self.match(report)
        if row is None:
            return "unmatched", f"{key}: {report.kind}, matches no delivery"
        kind = _BOUNCES[report.severity] if report.kind == "bounce" else _FEEDBACK[report.kind]
        line = f"{key}: {kind} {row.address} ({row.release_id}){' ' + report.detail if report.detail else ''}"
        if self.dry_run:
            return kind, line
        if kind == "unsubscribed":
            unsubscribe(self.feedback, row, source="unsubscribe-mail", incoming=key, detail=report.detail)
            return kind, line
        with self.feedback.transaction():
            self.feedback.record(
                row, kind, source="inbox", detail=report.detail, happened_at=report.date, incoming=key
            )
            if kind == "bounced":
                self.feedback.suppress(
                    row.address, reason=f"hard bounce: {report.detail}"[:300], source="bounce"
                )
            elif kind == "complained":
                self.feedback.suppress(
                    row.address, reason=f"spam complaint ({row.release_id})", source="complaint"
                )
            elif kind == "soft-bounced" and self.feedback.soft_bounces(row.address) >= self.soft_limit:
                self.feedback.suppress(
                    row.address,
                    reason=f"{self.soft_limit} soft bounces; last: {report.detail}"[:300],
                    source="bounce",
                )
        return kind, line

    def run(
        self, items: Iterator[Item], *, move: Callable[[list[str]], None] | None = None, batch: int = 100
    ) -> Summary:
        """Handle every message, ``batch`` at a time in one transaction (a commit per message
        would cost more than reading it); after each commit, hand the keys of the recorded (and
        duplicate) ones to ``move``. Killed half-way, the next run finds what was committed
        (duplicates, moved then) and records the rest."""
        summary = Summary()
        before = len(self.feedback.suppressions())
        chunk: list[Item] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= batch:
                self._batch(chunk, summary, move)
                chunk = []
        if chunk:
            self._batch(chunk, summary, move)
        summary.suppressed = len(self.feedback.suppressions()) - before
        return summary

    def _batch(self, chunk: list[Item], summary: Summary, move: Callable[[list[str]], None] | None) -> None:
        done: list[str] = []
        with self.feedback.transaction():
            for key, raw in chunk:
                outcome, line = self.handle(raw)
                summary.outcomes[outcome] += 1
                if self.keep_lines:
                    summary.lines.append(line)
                if key is not None and outcome != "unmatched":
                    done.append(key)
        if move is not None and done and not self.dry_run:
            move(done)
            summary.moved += len(done)


# -- sources --------------------------------------------------------------------------------------


def maildir_source(path: Path) -> Iterator[Item]:
    if not (path / "cur").is_dir() and not (path / "new").is_dir():
        raise ConfigError("not a Maildir (no cur/ or new/ folder)", place=str(path))
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in box.iterkeys():
        yield None, box.get_bytes(key)


def mbox_source(path: Path) -> Iterator[Item]:
    if not path.is_file():
        raise ConfigError("no such mbox file", place=str(path))
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for key in box.iterkeys():
            yield None, box.get_bytes(key)
    finally:
        box.close()


@dataclass(slots=True)
class ImapSession:
    """An open IMAP folder: its messages, and moving them to the processed folder."""

    settings: InboxSettings
    box: object = None

    def items(self) -> Iterator[Item]:
        from imap_tools import MailMessage

        box = self.box
        assert box is not None
        for message in box.fetch(mark_seen=False, bulk=100):  # type: ignore[attr-defined]
            assert isinstance(message, MailMessage)
            yield message.uid or None, message.obj.as_bytes()

    def move(self, uids: list[str]) -> None:
        self.box.move(uids, self.settings.processed_folder)  # type: ignore[attr-defined]


def imap_source(
    settings: InboxSettings, *, environ: os._Environ[str] | dict[str, str] | None = None, place: str = ""
) -> ImapSession:
    """Log in and select ``settings.folder``; the processed folder is created when missing.
    Errors in the settings name ``place`` (the config file) and the ``[inbox]`` key."""
    import asyncio

    import imap_tools
    from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted

    from ..settings import SmtpSettings, is_loopback
    from ..transport.secrets import Secrets

    s = settings
    if s.security == "none" and not is_loopback(s.host):
        raise ConfigError(
            f'[inbox] security = "none" is for a server on this machine only, not {s.host}', place=place
        )
    context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
    smtp_like = SmtpSettings(
        host=s.host, port=s.port, security=s.security, username=s.username, password_env=s.password_env,
        password_command=s.password_command, token_command=s.token_command, auth=s.auth, timeout=s.timeout,
    )  # fmt: skip
    credentials = asyncio.run(
        Secrets(
            smtp_like, environ if environ is not None else os.environ, table="inbox", place=place
        ).credentials()
    )
    if credentials is None:  # parse_inbox refuses this; a library caller may not have used it
        raise ConfigError(
            "[inbox] needs 'username' and a password_env, password_command or token_command", place=place
        )
    try:
        if s.security == "tls":
            box: MailBox | MailBoxStartTls | MailBoxUnencrypted = MailBox(
                s.host, s.port, timeout=s.timeout, ssl_context=context
            )
        elif s.security == "starttls":
            box = MailBoxStartTls(s.host, s.port, timeout=s.timeout, ssl_context=context)
        else:
            box = MailBoxUnencrypted(s.host, s.port, timeout=s.timeout)
        if credentials.mechanism == "xoauth2":
            box.xoauth2(credentials.username, credentials.secret.value, initial_folder=None)
        else:
            box.login(credentials.username, credentials.secret.value, initial_folder=None)
        # imaplib keeps the capabilities the server showed before login; servers add MOVE
        # after it (Dovecot does). MOVE is atomic, COPY+delete is not: ask again.
        typ, data = box.client.capability()
        if typ == "OK" and data and isinstance(data[-1], bytes):
            box.client.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())
        if not box.folder.exists(s.processed_folder):
            box.folder.create(s.processed_folder)
        box.folder.set(s.folder)
    except (OSError, ssl.SSLError, imap_tools.errors.MailboxLoginError) as exc:
        raise InboxError(str(exc), place=f"[inbox] {s.host}:{s.port}") from None
    except imap_tools.errors.UnexpectedCommandStatusError as exc:
        raise InboxError(f"the server said {exc}", place=f"[inbox] {s.host}:{s.port}") from None
    return ImapSession(s, box)


def read_inbox(
    config: Config,
    *,
    maildir: Path | None = None,
    mbox: Path | None = None,
    dry_run: bool = False,
    lines: bool = False,
) -> tuple[Summary, str]:
    """Read ``maildir``, ``mbox`` or the ``[inbox]`` IMAP folder into ``config``'s ledger;
    returns the summary and where it read."""
    from ..render import unsubscribe_keys

    settings = config.inbox
    if maildir is None and mbox is None and settings is None:
        raise ConfigError(
            "no [inbox] table; add one (README, 'Reading the replies') or pass --maildir DIR or --mbox FILE",
            place=config.path.name,
        )
    keys = unsubscribe_keys(config)
    with (
        Ledger.open(config.ledger) as ledger,
        one_reader(ledger, config) if not dry_run else contextlib.nullcontext(),
    ):
        inbox = Inbox(
            ledger,
            keys,
            soft_limit=settings.soft_bounce_limit if settings else 3,
            days=settings.match_days if settings else 60,
            dry_run=dry_run,
        )
        inbox.keep_lines = dry_run or lines
        if maildir is not None:
            return inbox.run(maildir_source(maildir)), str(maildir)
        if mbox is not None:
            return inbox.run(mbox_source(mbox)), str(mbox)
        assert settings is not None
        session = imap_source(settings, place=config.path.name)
        try:
            return inbox.run(session.items(), move=session.move), f"{settings.host} {settings.folder}"
        finally:
            session.box.logout()  # type: ignore[attr-defined]
