"""The deliverability check's inspections, one function a topic, over what an :class:`Inspector` saw.

Each function takes the inspector after every built message has been added and returns the
:class:`~reldist.findings.Finding` of its topic: content (images without alt text, ``http://`` and
local links), sizes (Gmail's clipping), subject and preheader, languages, personalisation
(template variables a list never fills), attachments, timing (the embargo), unsubscribe and
authentication (SPF/DKIM/DMARC). They read the release's Markdown and templates only to point
at lines; they send and write nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .findings import Finding
from .references import line_of, recipient_variables, referenced_templates, target_kind
from .render import format_when
from .values import format_size

if TYPE_CHECKING:
    from .deliverability import Inspector

__all__ = [
    "RELAYS",
    "SUBJECT_MAX",
    "attachments",
    "authentication",
    "content",
    "languages",
    "sizes",
    "subjects_and_preheaders",
    "timing",
    "unsubscribe",
    "variables",
]

#: Subjects longer than this are cut off in every inbox list (Gmail shows ~70 characters on a
#: desktop, ~40 on a phone); past it the warning says so.
SUBJECT_MAX = 80
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


def content(seen: Inspector) -> list[Finding]:
    found: list[Finding] = []
    for lang in seen.release.languages:
        version = seen.release.versions[lang]
        path = seen.root / version.source
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
    for template, items in sorted(seen.template_items.items()):
        for kind, value in sorted(items):
            place = _template_place(seen, template, value)
            if kind == "image-no-alt":
                text = f'<img src={value!r}> has no alt attribute (add alt="…"; alt="" for decoration)'
                found.append(Finding("warning", "Content", "image-alt", place, text, value))
            found += _target(value, place, image=kind != "link")
    url = seen.config.unsubscribe_url
    if url:
        found += _target(url, f"{seen.config.path.name} [unsubscribe] url", image=False)
    return found


def _template_place(seen: Inspector, template: str, needle: str) -> str:
    name = f"{template}.html.j2"
    for file in (name, *referenced_templates(seen.env, name)):
        line = line_of(seen.job.renderer.folder / file, needle)
        if line:
            return f"templates/{file}:{line}"
    return f"templates/{name}"


def sizes(seen: Inspector) -> list[Finding]:
    found = []
    for (template, languages), variant in sorted(seen.variants.items()):
        if variant.over:
            size = format_size(variant.largest_html)
            text = (
                f"the HTML part is up to {size} as sent (base64), over check.max_html "
                f"{format_size(seen.config.max_html)}, for {variant.over} of {variant.recipients} recipients "
                f"(largest: {variant.largest_at}); Gmail clips it behind 'View entire message'. "
                "Shorten the text or move parts of it to a web page"
            )
            place = f"templates/{template}.html.j2 ({', '.join(languages)})"
            found.append(Finding("warning", "Content", "html-size", place, text, size))
    return found


def subjects_and_preheaders(seen: Inspector) -> list[Finding]:
    found, topic = [], "Subject and preheader"
    versions, done = seen.release.versions, set[str]()
    for subject, languages in seen.subjects.items():
        # a subject written the same in several languages is long (or empty) in each of them
        first = versions[languages[0]].subject
        same = [lang for lang in seen.release.languages if versions[lang].subject == first]
        places = [f"{seen.toml} [{lang}] subject" for lang in same or languages[:1]]
        if seen.release.bilingual_subject:
            places = [f"{seen.toml} subject ({' / '.join(languages)}, bilingual_subject)"]
        for place in places:
            if place in done:
                continue
            done.add(place)
            if not subject.strip():
                found.append(Finding("warning", topic, "subject-empty", place, "the subject is empty"))
            elif len(subject) > SUBJECT_MAX:
                text = (
                    f"the subject is {len(subject)} characters long (inboxes show about 40 on a phone and "
                    f"70 on a desktop; keep it under {SUBJECT_MAX}): {subject!r}"
                )
                found.append(Finding("warning", topic, "subject-long", place, text, subject))
    for lang in seen.release.languages:
        if not seen.release.versions[lang].preheader:
            start = seen.openings.get(lang, "")
            text = (
                "no preheader: inbox lists show the first words of the message next to the subject "
                f'instead{f": {start!r}…" if start else ""}; add preheader = "…"'
            )
            found.append(
                Finding("warning", topic, "preheader", f"{seen.toml} [{lang}] preheader", text, start)
            )
    return found


def languages(seen: Inspector) -> list[Finding]:
    found = []
    for lang, sources in sorted(seen.foreign.items()):
        shown = ", ".join(sources[:3]) + (f" and {len(sources) - 3} more" if len(sources) > 3 else "")
        have = seen.release.languages
        gets = f"they get {have[0]} first" if len(have) > 1 else f"they get it in {have[0]}"
        text = (
            f"{len(sources)} recipient(s) read {lang!r}, but the release has no {lang} subject or text "
            f"(it is in {', '.join(have)}{'' if len(have) > 1 else ' only'}); {gets}: {shown}"
        )
        found.append(
            Finding("warning", "Languages", "language-missing", f"{seen.toml} languages", text, lang)
        )
    return found


def variables(seen: Inspector) -> list[Finding]:
    found = []
    uses: dict[str, list[tuple[str, str, int]]] = {}  # template -> (variable, file, line)
    for list_file, lst in sorted(seen.lists.items()):
        for template in sorted(lst.templates):
            if template not in uses:
                files = [
                    file
                    for name in (f"{template}.html.j2", f"{template}.txt.j2")
                    for file in (name, *referenced_templates(seen.env, name))
                ]
                uses[template] = [
                    (var, file, line) for file in files for var, line in recipient_variables(seen.env, file)
                ]
            shown: set[str] = set()
            for variable, file, line in uses[template]:
                if variable in lst.filled or variable in _BUILTIN_FIELDS or variable in shown:
                    continue
                shown.add(variable)
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


def attachments(seen: Inspector) -> list[Finding]:
    attachments = seen.release.attachments
    total = sum(len(a.data) for a in attachments)
    if total <= seen.config.max_attachments:
        return []
    listed = ", ".join(f"{a.source!r} {format_size(len(a.data))}" for a in attachments)
    text = (
        f"attachments total {format_size(total)} (every message grows by a third more in base64), over "
        f"check.max_attachments {format_size(seen.config.max_attachments)}: {listed}; put them on a web page "
        "and link to them"
    )
    return [
        Finding(
            "warning",
            "Attachments",
            "attachments-size",
            f"{seen.toml} attachments",
            text,
            format_size(total),
        )
    ]


def timing(seen: Inspector) -> list[Finding]:
    return _scheduled(seen) + _embargo(seen)


def _scheduled(seen: Inspector) -> list[Finding]:
    from .schedule import ahead_of_schedule

    ahead = ahead_of_schedule(seen.release, seen.now, seen.config.timezone)
    if ahead is None or seen.release.send_at is None:
        return []
    text = f"scheduled for {ahead}: 'reldist dispatch' sends it then; 'reldist send' refuses it without --now"
    return [
        Finding("note", "Timing", "send-at", f"{seen.toml} send_at", text, seen.release.send_at.isoformat())
    ]


def _embargo(seen: Inspector) -> list[Finding]:
    embargo, send_at, place = seen.release.embargo, seen.release.send_at, f"{seen.toml} embargo"
    if embargo is None:
        return []
    shown = format_when(embargo, seen.config.timezone, "en_GB")  # the report is in English
    if embargo <= seen.now:
        text = f"the embargo ({shown}) has passed, but every message still announces it; remove or move it"
        return [Finding("warning", "Timing", "embargo-passed", place, text, embargo.isoformat())]
    if send_at is None:
        return []
    lead, wanted = (embargo - send_at).total_seconds(), seen.config.dispatch.embargo_lead
    if lead >= wanted:
        return []
    gap = "ends before it is sent" if lead <= 0 else f"ends only {_duration(lead)} after"
    text = (
        f"the embargo ({shown}) {gap} send_at ({format_when(send_at, seen.config.timezone, 'en_GB')}); "
        f"[dispatch] embargo_lead asks for {_duration(wanted)} so that journalists get it in time"
    )
    return [Finding("warning", "Timing", "embargo-lead", place, text, embargo.isoformat())]


def unsubscribe(seen: Inspector) -> list[Finding]:
    config = seen.config
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
            "5,000+ messages a day) needs url = \"https://…/unsubscribe/{token}\", served by 'reldist serve'"
        )
        return [Finding("note", "Unsubscribe", "unsubscribe-one-click", place, text, mailto)]
    return []


def authentication(seen: Inspector) -> list[Finding]:
    config, domain, where = seen.config, seen.config.sender.domain, seen.config.path.name
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
        signer = seen.job.builder.signer
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
