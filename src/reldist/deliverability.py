"""The deliverability check: what makes a release land in spam, look broken or reach nobody.

Owns ``reldist check``'s findings beyond the preflight's errors. :func:`check_release` walks every
recipient's built message once (:meth:`~reldist.job.Job.walk`, which ``preview`` uses too), feeds each to an
:class:`Inspector`, and returns a :class:`CheckResult`: the preflight counts and a list of
:class:`Finding`, each naming its place (a file, a line, a config key) and quoting what it found
(the URL, the image, the variable, the size).

What is checked: the HTML part's size as sent (Gmail clips it past ``check.max_html``), images
without alt text, ``http://`` links, links to local files, missing preheaders, very long or empty
subjects, a missing List-Unsubscribe target, attachments over ``check.max_attachments``, an embargo
that has passed or comes too soon after ``send_at`` (``dispatch.embargo_lead``), recipients whose
own language has no version in the release, template variables (``recipient.X``) that a contact
list never fills, and SPF/DKIM/DMARC when neither ``[dkim]`` nor a signing relay is set up.

It reads the release's Markdown and templates to point at lines (``references`` finds what they
refer to); it sends nothing and writes nothing. Errors that stop a run (a broken template, a missing file) are still raised as
:class:`~reldist.errors.ReldistError` by the pipeline, not turned into findings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2

from .compose import Built
from .config import format_size
from .contacts import Contact
from .errors import place
from .job import Job
from .leftovers import ListLosses, text_findings
from .message import base64_size
from .plan import Preflight
from .references import HtmlRefs, line_of, recipient_variables, referenced_templates, target_kind
from .render import Rendered, format_when

__all__ = [
    "SUBJECT_MAX",
    "TOPICS",
    "CheckResult",
    "Finding",
    "Inspector",
    "check_release",
    "failure",
    "html_size_as_sent",
]

Level = Literal["error", "warning", "note"]

#: Subjects longer than this are cut off in every inbox list (Gmail shows ~70 characters on a
#: desktop, ~40 on a phone); past it the warning says so.
SUBJECT_MAX = 80
#: The order of the groups in the terminal report.
TOPICS = (
    "Errors",
    "Content",
    "Subject and preheader",
    "Languages",
    "Personalisation",
    "Attachments",
    "Timing",
    "Unsubscribe",
    "Authentication",
    "Recipients",
    "Contacts",
)
#: SMTP relays that sign with DKIM for the sender's domain once it is verified with them.
RELAYS = (
    "amazonaws.com",
    "postmarkapp.com",
    "mailgun.org",
    "mailgun.net",
    "sendgrid.net",
    "sparkpostmail.com",
    "mailjet.com",
    "brevo.com",
    "sendinblue.com",
    "mandrillapp.com",
    "mailersend.net",
    "resend.com",
    "smtp2go.com",
    "elasticemail.com",
    "socketlabs.com",
)
_BUILTIN_FIELDS = frozenset({"address", "email"})  # always filled by reldist itself


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the check found: where, what, and the text it quotes."""

    level: Level
    topic: str
    code: str  # stable, for scripts: "http-link", "image-alt", "html-size", ...
    place: str  # "releases/x/en.md:12", "reldist.toml [unsubscribe]", "templates/release.html.j2:30"
    message: str
    found: str = ""  # what was found, as quoted in the message (URL, image, variable, size)

    def __str__(self) -> str:
        return f"{self.place}: {self.message}" if self.place else self.message

    def as_dict(self) -> dict[str, str]:
        return {key: str(value) for key, value in asdict(self).items()}


@dataclass(slots=True)
class CheckResult:
    """The preflight's counts and every finding. ``exit_code`` applies ``--strict``."""

    report: Preflight
    findings: list[Finding] = field(default_factory=list)

    def count(self, level: Level) -> int:
        return sum(1 for f in self.findings if f.level == level)

    def exit_code(self, *, strict: bool = False) -> int:
        """1 on an error (or, with ``strict``, on a warning), else 0."""
        if self.count("error") or (strict and self.count("warning")):
            return 1
        return 0

    def grouped(self) -> list[tuple[str, list[Finding]]]:
        """The findings by topic, in :data:`TOPICS` order, errors before warnings before notes."""
        order = {"error": 0, "warning": 1, "note": 2}
        groups: dict[str, list[Finding]] = {}
        for finding in self.findings:
            groups.setdefault(finding.topic, []).append(finding)
        ranked = sorted(groups.items(), key=lambda kv: TOPICS.index(kv[0]) if kv[0] in TOPICS else 99)
        return [(topic, sorted(items, key=lambda f: order[f.level])) for topic, items in ranked]

    def as_dict(self, *, strict: bool = False) -> dict[str, Any]:
        """The JSON shape of ``reldist check --format json``."""
        report = self.report
        code = self.exit_code(strict=strict)
        return {
            "release": report.release.id,
            "ok": code == 0,
            "exit_code": code,
            "strict": strict,
            "recipients": {
                "ready": report.ready,
                "by_language": dict(sorted(report.by_language.items())),
                "by_template": dict(sorted(report.by_template.items())),
                "skipped": len(report.invalid),
                "suppressed": len(report.suppressed),
                "duplicates": len(report.duplicates),
            },
            "largest_message": report.largest,
            "total_bytes": report.total_bytes,
            "counts": {level: self.count(level) for level in ("error", "warning", "note")},
            "findings": [f.as_dict() for f in self.findings],
        }


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


def failure(release: str, error: Exception) -> dict[str, Any]:
    """The JSON shape of a check that stopped on an error (same keys as :meth:`CheckResult.as_dict`)."""
    text = str(error)
    place, sep, message = text.partition(": ")
    if not sep or " " in place:
        place, message = "", text
    code = getattr(error, "exit_code", 1)
    return {
        "release": release,
        "ok": False,
        "exit_code": code,
        "counts": {"error": 1, "warning": 0, "note": 0},
        "findings": [
            Finding("error", "Errors", type(error).__name__, place, message).as_dict(),
        ],
    }


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
        self._env = jinja2.Environment(loader=jinja2.FileSystemLoader(job.renderer.folder), autoescape=True)
        self._variants: dict[tuple[str, tuple[str, ...]], _Variant] = {}
        self._lists: dict[str, _List] = {}
        self._subjects: dict[str, tuple[str, ...]] = {}  # subject -> the languages it was made for
        self._openings: dict[str, str] = {}  # first language -> the start of the text part
        self._foreign: dict[str, list[str]] = {}  # a recipient's language the release lacks -> sources
        self._template_items: dict[str, set[tuple[str, str]]] = {}  # template -> {(kind, value)}
        self._losses = ListLosses()
        self._md_targets = {
            target
            for version in self.release.versions.values()
            for target in (*version.body.links, *(src for src, _ in version.body.images))
        }

    def add(self, built: Built) -> None:
        contact, rendered = built.contact, built.rendered
        variant = self._variants.get((rendered.template, rendered.languages))
        if variant is None:
            variant = self._variants[rendered.template, rendered.languages] = _Variant()
            self._scan_template(rendered, contact)
        variant.recipients += 1
        size = html_size_as_sent(rendered.html)
        if size > variant.largest_html:
            variant.largest_html, variant.largest_at = size, f"{contact.address} ({contact.source})"
        variant.over += size > self.config.max_html
        self._subjects.setdefault(rendered.subject, rendered.languages)
        self._openings.setdefault(rendered.languages[0], " ".join(rendered.text.split())[:80])
        lst = self._lists.setdefault(contact.source.rsplit(":", 1)[0], _List())
        lst.recipients += 1
        lst.templates.add(rendered.template)
        lst.filled.update(k for k, v in contact.fields.items() if v)
        lst.filled.update(k for k, v in (("name", contact.name), ("lang", contact.lang)) if v)
        lst.columns.update(contact.fields)
        self._losses.add(contact.source, (contact.name, *contact.fields.values()), contact.fields)
        if contact.lang and contact.lang not in self.release.languages:
            self._foreign.setdefault(contact.lang, []).append(contact.source)

    def _scan_template(self, rendered: Rendered, contact: Contact) -> None:
        """Images and links that the template itself adds (the Markdown's are checked at the source)."""
        refs = HtmlRefs(rendered.html)
        skip = set(rendered.unsubscribe)
        items = self._template_items.setdefault(rendered.template, set())
        items.update(
            ("image" if alt is not None else "image-no-alt", src)
            for src, alt in refs.images
            if src not in self._md_targets
        )
        items.update(("link", href) for href in refs.links if href not in self._md_targets | skip)

    # -- the findings --------------------------------------------------------------------------

    def findings(self, report: Preflight) -> list[Finding]:
        found = [
            *self._content(),
            *self._sizes(),
            *self._subjects_and_preheaders(),
            *self._languages(),
            *self._variables(),
            *self._attachments(),
            *self._timing(),
            *self._unsubscribe(),
            *self._authentication(),
        ]
        found += [
            Finding(item.level, topic, item.code, item.place, item.message, item.found)
            for topic, item in text_findings(self.job, report, self._losses)
        ]
        found += [
            Finding("warning", "Contacts", "bad-row", s.source, s.reason, s.address) for s in report.invalid
        ]
        found += [
            Finding("note", "Contacts", "duplicate", s.source, s.reason, s.address) for s in report.duplicates
        ]
        return found

    def _content(self) -> list[Finding]:
        found: list[Finding] = []
        for lang in self.release.languages:
            version = self.release.versions[lang]
            path = self.root / version.source
            for src, alt in version.body.images:
                place = _place(version.source, path, f"]({src}")
                if not alt.strip():
                    text = (
                        f"image {src!r} has no alt text: write it as ![what it shows]({src}) — many inboxes "
                        "block images and show the alt text instead"
                    )
                    found.append(Finding("warning", "Content", "image-alt", place, text, src))
                found += _target(src, place, image=True)
            for link in dict.fromkeys(version.body.links):
                found += _target(link, _place(version.source, path, f"]({link}"), image=False)
        for template, items in sorted(self._template_items.items()):
            for kind, value in sorted(items):
                place = self._template_place(template, value)
                if kind == "image-no-alt":
                    text = f'<img src={value!r}> has no alt attribute (add alt="…"; alt="" for decoration)'
                    found.append(Finding("warning", "Content", "image-alt", place, text, value))
                found += _target(value, place, image=kind != "link")
        url = self.config.unsubscribe_url
        if url:
            found += _target(url, f"{self.config.path.name} [unsubscribe] url", image=False)
        return found

    def _template_place(self, template: str, needle: str) -> str:
        name = f"{template}.html.j2"
        for file in (name, *referenced_templates(self._env, name)):
            line = line_of(self.job.renderer.folder / file, needle)
            if line:
                return f"templates/{file}:{line}"
        return f"templates/{name}"

    def _sizes(self) -> list[Finding]:
        found = []
        for (template, languages), variant in sorted(self._variants.items()):
            if variant.over:
                size = format_size(variant.largest_html)
                text = (
                    f"the HTML part is up to {size} as sent (base64), over check.max_html "
                    f"{format_size(self.config.max_html)}, for {variant.over} of {variant.recipients} recipients "
                    f"(largest: {variant.largest_at}); Gmail clips it behind 'View entire message'. "
                    "Shorten the text or move parts of it to a web page"
                )
                place = f"templates/{template}.html.j2 ({', '.join(languages)})"
                found.append(Finding("warning", "Content", "html-size", place, text, size))
        return found

    def _subjects_and_preheaders(self) -> list[Finding]:
        found, topic = [], "Subject and preheader"
        for subject, languages in self._subjects.items():
            place = f"{self.toml} [{languages[0]}] subject"
            if self.release.bilingual_subject:
                place = f"{self.toml} subject ({' / '.join(languages)}, bilingual_subject)"
            if not subject.strip():
                found.append(Finding("warning", topic, "subject-empty", place, "the subject is empty"))
            elif len(subject) > SUBJECT_MAX:
                text = (
                    f"the subject is {len(subject)} characters long (inboxes show about 40 on a phone and 70 "
                    f"on a desktop; keep it under {SUBJECT_MAX}): {subject!r}"
                )
                found.append(Finding("warning", topic, "subject-long", place, text, subject))
        for lang in self.release.languages:
            if not self.release.versions[lang].preheader:
                start = self._openings.get(lang, "")
                text = (
                    "no preheader: inbox lists show the first words of the message next to the subject "
                    f'instead{f": {start!r}…" if start else ""}; add preheader = "…"'
                )
                found.append(
                    Finding("warning", topic, "preheader", f"{self.toml} [{lang}] preheader", text, start)
                )
        return found

    def _languages(self) -> list[Finding]:
        found = []
        for lang, sources in sorted(self._foreign.items()):
            shown = ", ".join(sources[:3]) + (f" and {len(sources) - 3} more" if len(sources) > 3 else "")
            text = (
                f"{len(sources)} recipient(s) read {lang!r}, but the release has no {lang} subject or text "
                f"(it is in {', '.join(self.release.languages)}); they get {self.release.languages[0]} "
                f"first: {shown}"
            )
            found.append(
                Finding("warning", "Languages", "language-missing", f"{self.toml} languages", text, lang)
            )
        return found

    def _variables(self) -> list[Finding]:
        found = []
        uses: dict[str, list[tuple[str, str, int]]] = {}  # template -> (variable, file, line)
        for list_file, lst in sorted(self._lists.items()):
            for template in sorted(lst.templates):
                if template not in uses:
                    files = [
                        file
                        for name in (f"{template}.html.j2", f"{template}.txt.j2")
                        for file in (name, *referenced_templates(self._env, name))
                    ]
                    uses[template] = [
                        (var, file, line)
                        for file in files
                        for var, line in recipient_variables(self._env, file)
                    ]
                seen: set[str] = set()
                for variable, file, line in uses[template]:
                    if variable in lst.filled or variable in _BUILTIN_FIELDS or variable in seen:
                        continue
                    seen.add(variable)
                    text = (
                        f"recipient.{variable} is never filled by {list_file} ({lst.recipients} recipients; the "
                        f"column is {'empty' if variable in lst.columns else 'missing'}): the message shows "
                        "nothing there"
                    )
                    where = f"templates/{file}:{line}"
                    found.append(
                        Finding(
                            "warning",
                            "Personalisation",
                            "variable-unfilled",
                            where,
                            text,
                            f"recipient.{variable}",
                        )
                    )
        return found

    def _attachments(self) -> list[Finding]:
        attachments = self.release.attachments
        total = sum(len(a.data) for a in attachments)
        if total <= self.config.max_attachments:
            return []
        listed = ", ".join(f"{a.source!r} {format_size(len(a.data))}" for a in attachments)
        text = (
            f"attachments total {format_size(total)} (every message grows by a third more in base64), over "
            f"check.max_attachments {format_size(self.config.max_attachments)}: {listed}; put them on a web page "
            "and link to them"
        )
        return [
            Finding(
                "warning",
                "Attachments",
                "attachments-size",
                f"{self.toml} attachments",
                text,
                format_size(total),
            )
        ]

    def _timing(self) -> list[Finding]:
        embargo, send_at, place = self.release.embargo, self.release.send_at, f"{self.toml} embargo"
        if embargo is None:
            return []
        shown = format_when(embargo, self.config.timezone, "en_GB")  # the report is in English
        if embargo <= self.now:
            text = (
                f"the embargo ({shown}) has passed, but every message still announces it; remove or move it"
            )
            return [Finding("warning", "Timing", "embargo-passed", place, text, embargo.isoformat())]
        if send_at is None:
            return []
        lead, wanted = (embargo - send_at).total_seconds(), self.config.dispatch.embargo_lead
        if lead >= wanted:
            return []
        gap = "ends before it is sent" if lead <= 0 else f"ends only {_duration(lead)} after"
        text = (
            f"the embargo ({shown}) {gap} send_at ({format_when(send_at, self.config.timezone, 'en_GB')}); "
            f"[dispatch] embargo_lead asks for {_duration(wanted)} so that journalists get it in time"
        )
        return [Finding("warning", "Timing", "embargo-lead", place, text, embargo.isoformat())]

    def _unsubscribe(self) -> list[Finding]:
        config = self.config
        place = f"{config.path.name} [unsubscribe]"
        if config.unsubscribe_mailto is None and config.unsubscribe_url is None:
            text = (
                "no unsubscribe target (mailto or url): messages go out without a List-Unsubscribe header, "
                'which Gmail and Yahoo require of bulk senders; add mailto = "…"'
            )
            return [Finding("warning", "Unsubscribe", "unsubscribe-missing", place, text)]
        if config.unsubscribe_url is None:
            mailto = config.unsubscribe_mailto or ""
            text = (
                f"only a mailto target ({mailto}): one-click unsubscribe (RFC 8058, asked of senders of "
                '5,000+ messages a day) needs url = "https://…"'
            )
            return [Finding("note", "Unsubscribe", "unsubscribe-one-click", place, text, mailto)]
        return []

    def _authentication(self) -> list[Finding]:
        config, domain, where = self.config, self.config.sender.domain, self.config.path.name
        if config.dkim is not None:
            found = []
            signing = config.dkim.domain.lower().rstrip(".")
            if domain.lower() != signing and not domain.lower().endswith("." + signing):
                text = (
                    f"messages are signed for {signing!r} but come from {domain!r}: DMARC needs the signing "
                    f"domain to be {domain!r} or a parent of it"
                )
                found.append(
                    Finding(
                        "warning", "Authentication", "dkim-alignment", f"{where} [dkim] domain", text, signing
                    )
                )
            signer = self.job.builder.signer
            record, name = getattr(signer, "dns_record", None), getattr(signer, "dns_name", "")
            if callable(record):
                text = f'signing with DKIM; the DNS needs TXT {name} = "{record()}" and a DMARC record at _dmarc.{domain}'
                found.append(Finding("note", "Authentication", "dkim-record", f"{where} [dkim]", text, name))
            return found
        if config.smtp is None:
            text = (
                f"the outbox transport sends nothing; before sending for real through a server, make sure "
                f"{domain} has SPF for it, DKIM ([dkim] here, or signing by the provider) and a DMARC record, "
                "or Gmail and Yahoo will refuse or bin the mail"
            )
            return [Finding("note", "Authentication", "authentication", where, text, domain)]
        host = config.smtp.host.lower().rstrip(".")
        if any(host == relay or host.endswith("." + relay) for relay in RELAYS):
            return []
        text = (
            f"no [dkim] key and {host!r} is not a relay that signs for you: make sure {domain} has an SPF "
            "record that allows this server, DKIM signing switched on by the mail provider, and a DMARC "
            "record; without them Gmail and Yahoo refuse or bin bulk mail"
        )
        return [Finding("note", "Authentication", "authentication", f"{where} [smtp] host", text, host)]


# -- helpers ----------------------------------------------------------------------------------------


def _target(target: str, place: str, *, image: bool) -> list[Finding]:
    """A finding for an ``http://`` or local link or image, else none."""
    what, kind = ("image" if image else "link"), target_kind(target)
    if kind == "http":
        text = (
            f"{what} uses http:// (unencrypted; spam filters and browsers flag it): {target!r}; use https://"
        )
        return [Finding("warning", "Content", "http-link", place, text, target)]
    if kind == "local":
        advice = "put it online and use its https:// address" if image else "attach it or put it online"
        text = f"{what} points to a local file that journalists cannot open: {target!r}; {advice}"
        return [Finding("warning", "Content", "local-link", place, text, target)]
    return []


def _place(source: str, path: Path, needle: str) -> str:
    line = line_of(path, needle)
    return f"{source}:{line}" if line else source


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    minutes = rest // 60
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"
