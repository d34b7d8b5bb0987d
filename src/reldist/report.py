"""Reading the ledger for people: per-release summaries and per-recipient reports.

Owns the shapes of ``reldist status`` and ``reldist report``: :func:`summary` (counts, the
failures with the server's words, the unknowns, what to do next) and :func:`report_rows` /
:func:`write_report` (one row a recipient as table, CSV or JSON). Reads the ledger only.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TextIO

from .ledger import Ledger
from .ledgerrows import STATUSES, Row, Status

Format = Literal["table", "csv", "json"]
REPORT_KEYS = (
    "address",
    "name",
    "outlet",
    "language",
    "template",
    "status",
    "attempts",
    "smtp_code",
    "smtp_reply",
    "reason",
    "message_id",
    "source",
    "first_attempt_at",
    "sent_at",
    "updated_at",
    "feedback",
    "feedback_at",
    "feedback_detail",
)
#: {delivery id: (kind, happened_at, detail)}: each delivery's most recent feedback event.
LatestFeedback = Mapping[int, tuple[str, str, str]]


@dataclass(slots=True)
class Summary:
    """What the ledger knows of one release."""

    release_id: str
    counts: dict[Status, int]
    failed: list[Row] = field(default_factory=list)
    deferred: list[Row] = field(default_factory=list)
    unknown: list[Row] = field(default_factory=list)
    skipped: list[Row] = field(default_factory=list)
    tests: dict[str, int] = field(default_factory=dict)  # test copies by status (sent, deferred…)
    last_run: tuple[str, str | None, str] | None = None
    feedback: dict[str, int] = field(default_factory=dict)  # deliveries per feedback kind
    bounces: list[tuple[str, str, str]] = field(default_factory=list)  # hard: (address, when, DSN)
    replies: list[tuple[str, str, str]] = field(
        default_factory=list
    )  # people's: (address, when, first lines)
    refused: set[str] = field(default_factory=set)  # failed addresses now suppressed: never retried

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def next_steps(self) -> list[str]:
        steps = []
        rid = self.release_id
        if self.counts["queued"]:
            steps.append(f"{self.counts['queued']} not sent yet: 'reldist send {rid}' continues")
        if self.counts["deferred"] or self.counts["failed"] > len(self.refused):
            steps.append(
                f"to try deferred recipients again (and failed ones, once the cause is fixed): "
                f"'reldist send {rid} --retry'"
            )
        if self.counts["unknown"] or self.counts["sending"]:
            steps.append(
                f"unknown recipients may have the message already; check with them or the server's log, "
                f"then 'reldist send {rid} --resend-unknown' to send to them again"
            )
        if self.counts["skipped"]:
            steps.append("fix the skipped contact rows (file:line above), then send again to reach them")
        return steps


def summary(ledger: Ledger, release_id: str) -> Summary:
    result = Summary(release_id=release_id, counts=ledger.counts(release_id))
    for row in ledger.rows(release_id, ("failed", "deferred", "unknown", "sending", "skipped")):
        bucket = {
            "failed": result.failed,
            "deferred": result.deferred,
            "skipped": result.skipped,
        }.get(row.status, result.unknown)
        bucket.append(row)
    if result.failed:
        suppressed = ledger.suppressions()
        result.refused = {row.address for row in result.failed if row.address.casefold() in suppressed}
    result.tests = dict(Counter(status for _, _, status, _ in ledger.test_sends(release_id)))
    result.last_run = ledger.last_run(release_id)
    from .feedback.store import Feedback

    feedback = Feedback(ledger)
    result.feedback = {str(kind): count for kind, count in feedback.counts(release_id).items()}
    result.bounces = [(e.address, e.happened_at, e.detail) for e in feedback.events(release_id, ("bounced",))]
    # every reply, oldest first: report's feedback column shows only the latest event, which a
    # later auto-reply would hide
    result.replies = [(e.address, e.happened_at, e.detail) for e in feedback.events(release_id, ("replied",))]
    return result


def latest_feedback(ledger: Ledger, release_id: str) -> LatestFeedback:
    """Each delivery's most recent feedback event, for :func:`write_report`."""
    from .feedback.store import Feedback

    return Feedback(ledger).latest(release_id)


def local_time(stamp: str | None, tz: dt.tzinfo | None) -> str | None:
    """A ledger time (ISO 8601, UTC) in the workspace's zone, to the second; still ISO 8601."""
    if stamp is None or tz is None:
        return stamp
    return dt.datetime.fromisoformat(stamp).astimezone(tz).isoformat(timespec="seconds")


def report_rows(
    rows: Iterable[Row], tz: dt.tzinfo | None = None, feedback: LatestFeedback | None = None
) -> Iterable[dict[str, object]]:
    """One plain dict a recipient; times in ``tz`` (the workspace's zone) when given; ``feedback``
    gives each delivery's latest feedback (``bounced``, ``replied``...; "" when none)."""
    for row in rows:
        kind, at, detail = (feedback or {}).get(row.id, ("", None, ""))
        yield {
            "address": row.address,
            "name": row.name,
            "outlet": _outlet(row.contact),
            "language": row.language,
            "template": row.template,
            "status": row.status,
            "attempts": row.attempts,
            "smtp_code": row.smtp_code,
            "smtp_reply": row.smtp_reply,
            "reason": row.reason,
            "message_id": row.message_id,
            "source": row.source,
            "first_attempt_at": local_time(row.first_attempt_at, tz),
            "sent_at": local_time(row.sent_at, tz),
            "updated_at": local_time(row.updated_at, tz),
            "feedback": kind,
            "feedback_at": local_time(at, tz),
            "feedback_detail": detail,
        }


def _outlet(contact: str | None) -> str:
    """The contact's ``outlet`` column, from the JSON the ledger keeps (none for a bad row)."""
    if not contact:
        return ""
    import json

    fields = json.loads(contact).get("fields") or {}
    return str(fields.get("outlet", ""))


# A cell Excel (or LibreOffice, Google Sheets) would take as a formula: OWASP's list, plus the
# full-width forms some spreadsheets also accept.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def excel_safe(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula (OWASP "CSV
    injection"): a text starting with ``= + - @``, a tab or a line break gets a leading ``'``.
    Numbers and empty cells are left alone."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_report(
    rows: Iterable[Row],
    fmt: Format,
    out: TextIO,
    *,
    tz: dt.tzinfo | None = None,
    delimiter: str = ",",
    feedback: LatestFeedback | None = None,
) -> None:
    """Write one line/object a recipient. CSV starts with a BOM so that Excel reads it as UTF-8."""
    records = report_rows(rows, tz, feedback)
    if fmt == "json":
        import json

        out.write(json.dumps(list(records), ensure_ascii=False, indent=2) + "\n")
    elif fmt == "csv":
        out.write("\ufeff")
        import csv

        writer = csv.DictWriter(out, fieldnames=REPORT_KEYS, lineterminator="\r\n", delimiter=delimiter)
        writer.writeheader()
        for record in records:
            writer.writerow({key: excel_safe(value) for key, value in record.items()})
    else:
        _write_table(records, out)


def _write_table(records: Iterable[dict[str, object]], out: TextIO) -> None:
    """The screen table: one line a recipient, columns as wide as their widest cell up to 60
    characters (longer ones end in …), plain text (no colour, no markup read from the cells)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="", expand=False)
    for header in ("address", "status", "tries", "code", "server's reply", "reason", "feedback"):
        table.add_column(header, max_width=60, no_wrap=True, overflow="ellipsis")
    keys = ("address", "status", "attempts", "smtp_code", "smtp_reply", "reason", "feedback")
    for record in records:
        table.add_row(*(Text(str(record[k]) if record[k] is not None else "") for k in keys))
    console = Console(file=out, width=1_000, color_system=None, highlight=False, emoji=False, soft_wrap=False)
    with console.capture() as captured:
        console.print(table)
    out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


__all__ = [
    "REPORT_KEYS",
    "STATUSES",
    "Summary",
    "excel_safe",
    "latest_feedback",
    "report_rows",
    "summary",
    "write_report",
]
