"""The preview gallery: every recipient's message as a static local page (``reldist preview``).

Owns writing ``index.html`` (from the Jinja template ``preview.html.j2`` beside this module) and
one ``recipients/<n>.js`` a recipient into a folder (``preview/<release-id>/`` by default). The index lists the recipients grouped by languages and
template, with counts, the skipped rows with their reasons and the deliverability findings of
``reldist check``; choosing a recipient (a click, the arrow keys, or ``#recipient=N`` in the URL)
loads that recipient's file and shows the HTML part in sandboxed frames 600 px and 375 px wide,
the plain-text part, the decoded headers, the size on the wire and the attachments.

The page works from ``file://`` with no server and loads nothing from the internet: its Content
Security Policy, which the ``srcdoc`` frames inherit, allows only inline styles, its own scripts
and ``data:`` images, so a remote image or tracking pixel in a release is not fetched (it shows
as a broken image, and the check names it).

Messages are built by the same ``Job`` (renderer, builder, planner) as a send, one at a time,
and written as they come: memory stays flat however long the list. It sends nothing and touches
no ledger.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from .compose import Built
from .deliverability import Inspector, html_size_as_sent
from .findings import Finding
from .job import Job
from .plan import Preflight

__all__ = ["PreviewResult", "default_folder", "write_preview"]

RECIPIENTS = "recipients"
_OURS = re.compile(r"^\d+\.js$")
_parser = BytesParser(policy=policy.default)


@dataclass(slots=True)
class PreviewResult:
    """What :func:`write_preview` wrote."""

    index: Path
    report: Preflight
    groups: dict[tuple[tuple[str, ...], str], int] = field(default_factory=dict)  # (languages, template)
    skipped: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def recipients(self) -> int:
        return sum(self.groups.values())


def default_folder(job: Job) -> Path:
    """``<workspace>/preview/<release-id>/``."""
    return job.workspace.root / "preview" / job.release.id


def write_preview(job: Job, folder: Path | None = None, *, now: dt.datetime | None = None) -> PreviewResult:
    """Build every recipient's message and write the preview page into ``folder``."""
    folder = folder or default_folder(job)
    recipients_dir = folder / RECIPIENTS
    recipients_dir.mkdir(parents=True, exist_ok=True)
    for old in recipients_dir.iterdir():  # a previous preview's files; nothing else is touched
        if _OURS.match(old.name):
            old.unlink()
    now = now or dt.datetime.now(dt.UTC)
    report = Preflight(job.release)
    inspector = Inspector(job, now=now)
    result = PreviewResult(index=folder / "index.html", report=report)
    groups: dict[tuple[tuple[str, ...], str], list[dict[str, Any]]] = {}
    skipped: list[dict[str, str]] = []
    number = 0
    for entry, built in job.walk(report, date=job.message_date(now)):
        if built is None:
            label = "do not contact" if entry.status == "suppressed" else "skipped"
            skipped.append(
                {"kind": label, "source": entry.source, "address": entry.address, "reason": entry.reason}
            )
            continue
        number += 1
        inspector.add(built)
        record = _record(job, number, built)
        (recipients_dir / f"{number}.js").write_text(
            f"reldistPreview.receive({number}, {json.dumps(record, ensure_ascii=False)});\n", encoding="utf-8"
        )
        key = (built.rendered.languages, built.rendered.template)
        groups.setdefault(key, []).append(
            {
                "n": number,
                "name": built.contact.name,
                "address": built.contact.address,
                "outlet": built.contact.fields.get("outlet", ""),
                "source": built.contact.source,
            }
        )
    for dup in report.duplicates:
        skipped.append({"kind": "merged", "source": dup.source, "address": dup.address, "reason": dup.reason})
    result.findings = inspector.findings(report)
    result.groups = {key: len(items) for key, items in groups.items()}
    result.skipped = len(skipped)
    result.index.write_text(_page(job, groups, skipped, result.findings, now), encoding="utf-8")
    return result


def _record(job: Job, number: int, built: Built) -> dict[str, Any]:
    """One recipient's file: everything the page shows for them."""
    message = _parser.parsebytes(built.data)
    headers = [[name, str(value)] for name, value in message.items()]
    attachments = [
        {
            "filename": part.get_filename() or "",
            "content_type": part.get_content_type(),
            "size": len(part.get_payload(decode=True) or b""),
        }
        for part in message.iter_attachments()
    ]
    html_sent = html_size_as_sent(built.rendered.html)
    return {
        "n": number,
        "address": built.contact.address,
        "name": built.contact.name,
        "source": built.contact.source,
        "subject": built.rendered.subject,
        "languages": list(built.rendered.languages),
        "template": built.rendered.template,
        "size": len(built.data),
        "html_sent": html_sent,
        "html_limit": job.workspace.config.max_html,
        "headers": headers,
        "text": built.rendered.text,
        "html": built.rendered.html,
        "attachments": attachments,
    }


def _page(
    job: Job,
    groups: dict[tuple[tuple[str, ...], str], list[dict[str, Any]]],
    skipped: list[dict[str, str]],
    findings: list[Finding],
    now: dt.datetime,
) -> str:
    """index.html, from the template ``preview.html.j2`` beside this module."""
    import jinja2

    page = Path(__file__).with_name("preview.html.j2").read_text(encoding="utf-8")
    template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(page)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    for _, items in ordered:
        for item in items:
            item["search"] = " ".join(str(item[k]) for k in ("name", "address", "outlet", "source")).lower()
    shown = [f for f in findings if f.code not in ("bad-row", "duplicate")]
    return template.render(
        release_id=job.release.id,
        total=sum(len(items) for items in groups.values()),
        groups=[(languages, name, items) for (languages, name), items in ordered],
        skipped=skipped,
        findings=shown,
        warnings=sum(1 for f in shown if f.level != "note"),
        languages=", ".join(job.release.languages),
        lists=", ".join(job.planner.lists),
        made=now.astimezone(job.workspace.config.timezone).strftime("%Y-%m-%d %H:%M %Z"),
    )
