"""The deliverability check: what makes a release land in spam, look broken or reach nobody.

Owns ``reldist check``'s walk and what it keeps. :func:`check_release` walks every recipient's
built message once (:meth:`~reldist.job.Job.walk`, which ``preview`` uses too), feeds each to an
:class:`Inspector` (a few counters per template variant and per list, never the messages), and
returns a :class:`~reldist.findings.CheckResult`: the preflight counts and a list of
:class:`~reldist.findings.Finding`, each naming its place (a file, a line, a config key) and
quoting what it found (the URL, the image, the variable, the size). The inspections by topic are
in :mod:`reldist.inspections`, the shapes of the result in :mod:`reldist.findings`.

What is checked: the HTML part's size as sent (Gmail clips it past ``check.max_html``), images
without alt text, ``http://`` links, links to local files, missing preheaders, very long or empty
subjects, a missing List-Unsubscribe target, attachments over ``check.max_attachments``, an embargo
that has passed or comes too soon after ``send_at`` (``dispatch.embargo_lead``), recipients whose
own language has no version in the release, template variables (``recipient.X``) that a contact
list never fills, and SPF/DKIM/DMARC when neither ``[dkim]`` nor a signing relay is set up.

It sends nothing and writes nothing. Errors that stop a run (a broken template, a missing file)
are still raised as :class:`~reldist.errors.ReldistError` by the pipeline, not turned into
findings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import jinja2

from . import inspections
from .compose import Built
from .contacts import Contact
from .errors import place
from .findings import CheckResult, Finding
from .job import Job
from .leftovers import ListLosses, text_findings
from .message import base64_size
from .plan import Preflight
from .references import HtmlRefs
from .render import Rendered

__all__ = ["Inspector", "check_release", "html_size_as_sent"]


def html_size_as_sent(html: str) -> int:
    """Bytes of the HTML part's body on the wire: UTF-8, CRLF, base64 in lines of 76 (the
    builder may end a line or two early where a shared chunk begins: a few bytes more)."""
    raw = len(html.replace("\r\n", "\n").encode("utf-8")) + html.replace("\r\n", "\n").count("\n")
    return base64_size(raw)


def check_release(job: Job, *, now: dt.datetime | None = None) -> CheckResult:
    """Build every recipient's message once and report what would hurt its delivery."""
    report = Preflight(job.release)
    inspector = Inspector(job, now=now)
    for _, built in job.walk(report, sign=False):
        if built is not None:
            inspector.add(built)
    return CheckResult(report, inspector.findings(report))


# -- per recipient ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Variant:
    """What the check keeps of one (template, languages) combination."""

    recipients: int = 0
    largest_html: int = 0
    largest_at: str = ""
    over: int = 0


@dataclass(slots=True)
class _List:
    recipients: int = 0
    filled: set[str] = field(default_factory=set)  # columns with a value in some row
    columns: set[str] = field(default_factory=set)
    templates: set[str] = field(default_factory=set)


class Inspector:
    """Collects what the check needs from each built message (a few counters, never the messages)."""

    def __init__(self, job: Job, *, now: dt.datetime | None = None) -> None:
        self.job = job
        self.config = job.workspace.config
        self.release = job.release
        self.root = job.workspace.root
        self.now = now or dt.datetime.now(dt.UTC)
        self.toml = place(self.release.folder / "release.toml", self.root)
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(job.renderer.folder), autoescape=True)
        self.variants: dict[tuple[str, tuple[str, ...]], _Variant] = {}
        self.lists: dict[str, _List] = {}
        self.subjects: dict[str, tuple[str, ...]] = {}  # subject -> the languages it was made for
        self.openings: dict[str, str] = {}  # first language -> the start of the text part
        self.foreign: dict[str, list[str]] = {}  # a recipient's language the release lacks -> sources
        self.template_items: dict[str, set[tuple[str, str]]] = {}  # template -> {(kind, value)}
        self.losses = ListLosses()
        self.md_targets = {
            target
            for version in self.release.versions.values()
            for target in (*version.body.links, *(src for src, _ in version.body.images))
        }

    def add(self, built: Built) -> None:
        contact, rendered = built.contact, built.rendered
        variant = self.variants.get((rendered.template, rendered.languages))
        if variant is None:
            variant = self.variants[rendered.template, rendered.languages] = _Variant()
            self._scan_template(rendered, contact)
        variant.recipients += 1
        size = html_size_as_sent(rendered.html)
        if size > variant.largest_html:
            variant.largest_html, variant.largest_at = size, f"{contact.address} ({contact.source})"
        variant.over += size > self.config.max_html
        self.subjects.setdefault(rendered.subject, rendered.languages)
        self.openings.setdefault(rendered.languages[0], " ".join(rendered.text.split())[:80])
        lst = self.lists.setdefault(contact.source.rsplit(":", 1)[0], _List())
        lst.recipients += 1
        lst.templates.add(rendered.template)
        lst.filled.update(k for k, v in contact.fields.items() if v)
        lst.filled.update(k for k, v in (("name", contact.name), ("lang", contact.lang)) if v)
        lst.columns.update(contact.fields)
        self.losses.add(contact.source, (contact.name, *contact.fields.values()), contact.fields)
        if contact.lang and contact.lang not in self.release.languages:
            self.foreign.setdefault(contact.lang, []).append(contact.source)

    def _scan_template(self, rendered: Rendered, contact: Contact) -> None:
        """Images and links that the template itself adds (the Markdown's are checked at the source)."""
        refs = HtmlRefs(rendered.html)
        skip = set(rendered.unsubscribe)
        items = self.template_items.setdefault(rendered.template, set())
        items.update(
            ("image" if alt is not None else "image-no-alt", src)
            for src, alt in refs.images
            if src not in self.md_targets
        )
        items.update(("link", href) for href in refs.links if href not in self.md_targets | skip)

    # -- the findings --------------------------------------------------------------------------

    def findings(self, report: Preflight) -> list[Finding]:
        found = [
            *inspections.content(self),
            *inspections.sizes(self),
            *inspections.subjects_and_preheaders(self),
            *inspections.languages(self),
            *inspections.variables(self),
            *inspections.attachments(self),
            *inspections.timing(self),
            *inspections.unsubscribe(self),
            *inspections.authentication(self),
        ]
        found += [
            Finding(item.level, topic, item.code, item.place, item.message, item.found)
            for topic, item in text_findings(self.job, report, self.losses)
        ]
        found += [
            Finding("warning", "Contacts", "bad-row", s.source, s.reason, s.address)
            for s in report.invalid
            if s.bad
        ]
        found += [  # a good row for another release: not a bad row, nothing to fix
            Finding("note", "Contacts", "other-language", s.source, s.reason, s.address)
            for s in report.invalid
            if not s.bad
        ]
        found += [
            Finding("note", "Contacts", "duplicate", s.source, s.reason, s.address) for s in report.duplicates
        ]
        return found
