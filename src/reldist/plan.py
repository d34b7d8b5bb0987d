"""Preflight and planning: which contacts get the release, and does every message build?

Owns the step between the media lists and the send loop. :class:`Planner` streams the contacts
(``contacts.read_contacts``), drops duplicates with a warning, records bad rows and suppressed
addresses, picks each recipient's languages and template, and in preflight renders and measures
every message once (and drops it) so that a broken template or release stops the run before the
first message leaves. Planning writes the same decisions into the ledger. Memory stays flat: one
contact and one message at a time.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from .compose import Composer
from .contacts import Contact, Skipped, read_contacts, read_suppressed
from .errors import ContactsError
from .ledger import PlanEntry
from .message import MessageBuilder
from .names import bad_template_name, did_you_mean
from .release import Release
from .render import Renderer
from .workspace import Workspace


@dataclass(slots=True)
class Preflight:
    """What preflight found: counts, problems and warnings. Holds no messages."""

    release: Release
    lists: tuple[str, ...] = ()  # the lists read (the release's, or --list)
    ready: int = 0
    by_language: Counter[str] = field(default_factory=Counter)  # first language
    by_template: Counter[str] = field(default_factory=Counter)
    invalid: list[Skipped] = field(default_factory=list)
    suppressed: list[Skipped] = field(default_factory=list)
    duplicates: list[Skipped] = field(default_factory=list)
    largest: int = 0  # bytes of the largest message
    total_bytes: int = 0
    samples: dict[tuple[str, tuple[str, ...]], Contact] = field(
        default_factory=dict
    )  # one a template/languages

    @property
    def problems(self) -> list[str]:
        return [str(s) for s in self.invalid]


def contact_to_json(contact: Contact) -> str:
    return json.dumps(
        {
            "address": contact.address,
            "ascii_address": contact.ascii_address,
            "name": contact.name,
            "lang": contact.lang,
            "languages": list(contact.languages),
            "template": contact.template,
            "tags": list(contact.tags),
            "fields": dict(contact.fields),
            "source": contact.source,
            "list_name": contact.list_name,
        },
        ensure_ascii=False,
    )


def contact_from_json(text: str) -> Contact:
    data = json.loads(text)
    return Contact(
        address=data["address"],
        ascii_address=data["ascii_address"],
        name=data["name"],
        lang=data["lang"],
        languages=tuple(data["languages"]),
        template=data["template"],
        tags=tuple(data["tags"]),
        fields=data["fields"],
        source=data["source"],
        list_name=data["list_name"],
    )


class Planner:
    """Decides the recipients of one release from its lists (or ``lists`` given here)."""

    def __init__(
        self,
        workspace: Workspace,
        release: Release,
        renderer: Renderer,
        builder: MessageBuilder,
        *,
        lists: Sequence[str] = (),
        where: Sequence[tuple[str, str]] = (),
        strict: bool = False,
        suppressed: Mapping[str, str] | None = None,
    ) -> None:
        self.workspace = workspace
        self.release = release
        self.renderer = renderer
        self.builder = builder
        self.composer = Composer(renderer, builder)
        self.lists = tuple(lists) or release.lists
        self.where = tuple(where)
        self.strict = strict
        self.suppressed = dict(read_suppressed(workspace.root)) if suppressed is None else dict(suppressed)

    def entries(self, report: Preflight | None = None, *, build: bool = False) -> Iterator[PlanEntry]:
        """One :class:`PlanEntry` a recipient; with ``build`` every message is rendered and built."""
        report = report if report is not None else Preflight(self.release)
        report.lists = self.lists
        date = dt.datetime.now(dt.UTC)
        for item in read_contacts(
            self.workspace.root,
            self.lists,
            where=self.where,
            suppressed=self.suppressed,
            strict=self.strict,
        ):
            if isinstance(item, Skipped):
                if item.kind == "duplicate":
                    report.duplicates.append(item)
                    continue
                (report.invalid if item.kind == "invalid" else report.suppressed).append(item)
                yield PlanEntry(
                    address_key=(item.address or item.source).casefold(),
                    address=item.address,
                    status="skipped" if item.kind == "invalid" else "suppressed",
                    name=item.name,
                    source=item.source,
                    reason=item.reason,
                )
                continue
            problem = self._unfit(item)
            if problem is not None:
                if self.strict:
                    raise ContactsError(str(problem))
                report.invalid.append(problem)
                yield PlanEntry(
                    address_key=item.address.casefold(),
                    address=item.address,
                    status="skipped",
                    name=item.name,
                    source=item.source,
                    reason=problem.reason,
                )
                continue
            languages = self.renderer.languages_for(item)
            template = item.template or self.release.template
            if build:
                size = self.composer.measure(item, date=date)
                report.largest = max(report.largest, size)
                report.total_bytes += size
            report.ready += 1
            report.by_language[languages[0]] += 1
            report.by_template[template] += 1
            report.samples.setdefault((template, languages), item)
            yield PlanEntry(
                address_key=item.address.casefold(),
                address=item.address,
                status="queued",
                name=item.name,
                language=",".join(languages),
                template=template,
                source=item.source,
                contact=contact_to_json(item),
            )

    def preflight(self) -> Preflight:
        """Render and build every recipient's message once; raise on anything that stops the run."""
        report = Preflight(self.release)
        for _ in self.entries(report, build=True):
            pass
        return report

    def _unfit(self, contact: Contact) -> Skipped | None:
        """A reason this (valid) contact cannot get this release, or None."""
        if not self.renderer.languages_for(contact):
            wanted = ", ".join(contact.languages)
            have = ", ".join(self.release.languages)
            return Skipped(
                "invalid",
                contact.source,
                f"wants only {wanted}; this release is in {have}",
                contact.address,
                contact.name,
                bad=False,
            )
        if contact.template and (problem := bad_template_name(contact.template)):
            return Skipped("invalid", contact.source, f"template: {problem}", contact.address, contact.name)
        if contact.template and not self.renderer.has_template(contact.template):
            available = self.renderer.available()
            return Skipped(
                "invalid",
                contact.source,
                f"template {contact.template!r} does not exist in templates/ (templates here: "
                f"{', '.join(available)}){did_you_mean(contact.template, available)}",
                contact.address,
                contact.name,
            )
        return None
