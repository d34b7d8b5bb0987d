"""Per-recipient rendering: Jinja2 templates, the bilingual layout, strings, dates, CSS inlining.

Owns the workspace's ``templates/`` folder: ``<name>.html.j2`` and ``<name>.txt.j2`` per template,
and ``strings.toml`` with the boilerplate of each language. :class:`Renderer` is built once per
release; :meth:`Renderer.render` turns one contact into a subject, an HTML body (CSS inlined) and
a plain-text body. Everything that is the same for all recipients of a language order is worked
out once and cached. It does no MIME (``message``) and no I/O after construction.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import css_inline
import jinja2
from babel.dates import format_date, format_time
from markupsafe import Markup

from .config import Config
from .contacts import Contact
from .describe import utc_offset
from .errors import ConfigError, TemplateError
from .names import bad_template_name, did_you_mean
from .release import Release
from .stencil import Stencils, ValuePath, stencil_safe
from .strings import load_strings
from .tokens import Keys, load_keys

_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Section:
    """One language of the message as the template sees it."""

    lang: str
    anchor: str
    subject: str
    preheader: str
    title: str
    html: Markup
    text: str
    lead_html: Markup  # the text before its first "## " heading: the news without notes and contacts
    lead_text: str
    contacts_html: Markup  # the "## Press contacts" section with its heading, or ""
    contacts_text: str
    strings: Mapping[str, str]
    embargo: str  # "EMBARGOED UNTIL 28 November 2026, 12:00 (UTC+5)" or ""
    date: str  # the send date in this language
    why: str  # why_received with the organisation filled in


@dataclass(frozen=True, slots=True)
class Rendered:
    """One recipient's rendered message content."""

    template: str
    languages: tuple[str, ...]
    subject: str
    html: str
    text: str
    unsubscribe: tuple[str | None, str | None] = (None, None)  # (mailto URI, https URL)
    #: From a stencil: the (text, html) bodies in canonical MIME form, in pieces (stencil.Filled),
    #: so that the message builder can reuse its base64 of the parts every recipient shares.
    bodies: tuple[tuple[bytes, ...], tuple[bytes, ...]] | None = None


@dataclass(slots=True)
class _Variant:
    sections: list[Section]
    subject: str
    cache: dict[str, Any] = field(default_factory=dict)


class Renderer:
    """Renders a release for one contact after another.

    ``now`` is the send date shown in messages; ``test`` marks every message as a test copy.
    """

    def __init__(
        self,
        config: Config,
        release: Release,
        *,
        templates: Path | None = None,
        now: dt.datetime | None = None,
        test: bool = False,
        stencils: bool = True,
    ) -> None:
        self.config = config
        self.release = release
        self.folder = templates or config.root / "templates"
        self.test = test
        self._now = now or dt.datetime.now(dt.UTC)
        self.strings = load_strings(self.folder, release.languages, workspace=config.root)
        self.keys = unsubscribe_keys(config)
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.folder),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # wordwrap in text templates mostly wraps the same titles and boilerplate for every
        # recipient: remember its results instead of wrapping them again each time.
        self._env.filters["wordwrap"] = functools.lru_cache(maxsize=256)(
            _wordwrap(self._env.filters["wordwrap"])
        )
        self._templates: dict[str, tuple[jinja2.Template, jinja2.Template]] = {}
        self._variants: dict[tuple[str, ...], _Variant] = {}
        self._inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
        # Per template name: the recipient values its variants are filled with (``stencil``),
        # or None when it is always rendered in full.
        self._use_stencils = stencils
        self._stencil_paths: dict[str, tuple[ValuePath, ...] | None] = {}
        self.stencils = Stencils(self._full, self._styles)
        self.template(release.template)  # the release's own template must exist and compile

    # -- templates -------------------------------------------------------------------------

    def available(self) -> list[str]:
        """Names of the templates in the folder that have both an HTML and a text file."""
        html = {p.name.removesuffix(".html.j2") for p in self.folder.glob("*.html.j2")}
        text = {p.name.removesuffix(".txt.j2") for p in self.folder.glob("*.txt.j2")}
        return sorted((html & text) - {"base"})

    def has_template(self, name: str) -> bool:
        """True for the bare name of a template pair in the folder (never a path)."""
        if bad_template_name(name):
            return False
        return name in self._templates or (
            (self.folder / f"{name}.html.j2").is_file() and (self.folder / f"{name}.txt.j2").is_file()
        )

    def template(self, name: str) -> tuple[jinja2.Template, jinja2.Template]:
        """The compiled (html, text) pair; :class:`TemplateError` naming file and line if broken."""
        pair = self._templates.get(name)
        if pair is None:
            if not self.has_template(name):
                available = self.available()
                raise TemplateError(
                    f"templates/{name}.html.j2 and templates/{name}.txt.j2: template {name!r} not found "
                    f"(templates here: {', '.join(available) or 'none'}){did_you_mean(name, available)}"
                )
            pair = (self._compile(f"{name}.html.j2"), self._compile(f"{name}.txt.j2"))
            self._templates[name] = pair
        return pair

    def _compile(self, filename: str) -> jinja2.Template:
        try:
            return self._env.get_template(filename)
        except jinja2.TemplateSyntaxError as exc:
            name = exc.filename or filename
            place = f"templates/{Path(name).name}:{exc.lineno}"
            raise TemplateError(f"{exc.message}", place=place) from None
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"includes {exc.name!r}, which does not exist", place=f"templates/{filename}"
            ) from None

    # -- languages -------------------------------------------------------------------------

    def languages_for(self, contact: Contact) -> tuple[str, ...]:
        """The message's languages, the contact's own first; empty when none fits."""
        allowed = [
            lang for lang in self.release.languages if not contact.languages or lang in contact.languages
        ]
        if not allowed:
            return ()
        first = contact.lang if contact.lang in allowed else allowed[0]
        return (first, *(lang for lang in allowed if lang != first))

    def variant(self, languages: tuple[str, ...]) -> _Variant:
        found = self._variants.get(languages)
        if found is None:
            sections = [self._section(lang) for lang in languages]
            subject = self._subject(sections)
            found = self._variants[languages] = _Variant(sections=sections, subject=subject)
        return found

    def _section(self, lang: str) -> Section:
        version = self.release.versions[lang]
        strings = self.strings[lang]
        embargo = ""
        if self.release.embargo is not None:
            when = format_when(self.release.embargo, self.config.timezone, strings["locale"])
            embargo = strings["embargo"].format(when=when)
        return Section(
            lang=lang,
            anchor=f"lang-{lang}",
            subject=version.subject,
            preheader=version.preheader,
            title=version.body.title or version.subject,
            html=Markup(version.body.html),  # noqa: S704 - our own Markdown rendering, html=False
            text=version.body.text,
            lead_html=Markup(version.body.lead_html),  # noqa: S704 - our own Markdown rendering
            lead_text=version.body.lead_text,
            contacts_html=Markup(version.body.contacts_html),  # noqa: S704 - our own Markdown rendering
            contacts_text=version.body.contacts_text,
            strings=strings,
            embargo=embargo,
            date=format_date(self._now.astimezone(self.config.timezone), "long", locale=strings["locale"]),
            why=strings["why_received"].format(organisation=self._organisation(strings)),
        )

    def _organisation(self, strings: Mapping[str, str]) -> str:
        """The organisation's name in a language: ``organisation`` in strings.toml, else the config's."""
        return strings.get("organisation") or self.config.sender.organisation or self.config.sender.name

    def _subject(self, sections: list[Section]) -> str:
        subject = (
            " / ".join(s.subject for s in sections) if self.release.bilingual_subject else sections[0].subject
        )
        if self.release.embargo_subject and sections[0].embargo:
            subject = f"{sections[0].embargo}: {subject}"
        if self.test:
            subject = f"[TEST] {subject}"
        return subject

    # -- one recipient ---------------------------------------------------------------------

    def render(self, contact: Contact, *, template: str | None = None) -> Rendered:
        """Render one contact. The languages must not be empty (check :meth:`languages_for`)."""
        name = template or contact.template or self.release.template
        self.template(name)
        languages = self.languages_for(contact)
        variant = self.variant(languages)
        context = self._context(contact, variant)
        used = self._stencilled(name)
        filled = None if used is None else self.stencils.fill(name, languages, context, used)
        bodies = None
        if filled is not None:
            html, text, bodies = filled.html, filled.text, (filled.text_body, filled.html_body)
        else:
            try:
                html, text = self._full(name, context)
            except jinja2.UndefinedError as exc:
                raise TemplateError(
                    f"{exc.message} (rendering {contact.source})", place=_template_place(exc, name)
                ) from None
            except jinja2.TemplateError as exc:
                raise TemplateError(
                    f"{exc} (rendering {contact.source})", place=_template_place(exc, name)
                ) from None
        return Rendered(
            template=name,
            languages=languages,
            subject=variant.subject,
            html=html,
            text=text,
            unsubscribe=(context["unsubscribe_mailto"], context["unsubscribe_url"]),
            bodies=bodies,
        )

    def _stencilled(self, name: str) -> tuple[ValuePath, ...] | None:
        if not self._use_stencils:
            return None
        if name in self._stencil_paths:
            return self._stencil_paths[name]
        html = stencil_safe(self._env, f"{name}.html.j2")
        text = stencil_safe(self._env, f"{name}.txt.j2")
        used = None if html is None or text is None else tuple(sorted(html | text, key=str))
        self._stencil_paths[name] = used
        return used

    def _styles(self, name: str, context: dict[str, Any]) -> str:
        """The CSS of ``<style>`` elements in the HTML, before it is inlined."""
        return "\n".join(_STYLE.findall(self.template(name)[0].render(context)))

    def _full(self, name: str, context: dict[str, Any]) -> tuple[str, str]:
        """Jinja, then CSS inlining and text clean-up: the (html, text) of one context."""
        html_template, text_template = self.template(name)
        html = html_template.render(context)
        text = text_template.render(context)
        return self._inliner.inline(html), _normalise_text(text)

    def _context(self, contact: Contact, variant: _Variant) -> dict[str, Any]:
        recipient = dict(contact.fields)
        recipient.update(
            address=contact.address,
            email=contact.address,
            name=contact.name,
            lang=contact.lang or "",
        )
        greetings = []
        for index, section in enumerate(variant.sections):
            salutation = contact.fields.get("salutation", "") if index == 0 else ""
            if salutation:
                # "Уважаемая Айгерим Маратовна" takes the punctuation of the language's greeting.
                end = section.strings["greeting"].rstrip()[-1:]
                greetings.append(salutation if salutation[-1:] in ",!:." else salutation + end)
            elif contact.name:
                greetings.append(section.strings["greeting"].format(name=contact.name))
            else:
                greetings.append(section.strings["greeting_anonymous"])
        return {
            "recipient": recipient,
            "sections": variant.sections,
            "first": variant.sections[0],
            "others": variant.sections[1:],
            "greetings": greetings,
            "subject": variant.subject,
            "release": self.release,
            "sender": self.config.sender,
            "organisation": self.config.sender.organisation or self.config.sender.name,
            "unsubscribe_url": self.unsubscribe_url(contact.address),
            "unsubscribe_mailto": self.unsubscribe_mailto(contact.address),
            "test": self.test,
            "attachments": [a.filename for a in self.release.attachments],
        }

    def unsubscribe_url(self, address: str) -> str | None:
        url = self.config.unsubscribe_url
        if url is None or self.keys is None:
            return None
        return url.replace("{token}", self.keys.sign(self.release.id, address))

    def unsubscribe_mailto(self, address: str) -> str | None:
        mailto = self.config.unsubscribe_mailto
        if mailto is None or self.keys is None:
            return None
        # The token, not the address: a mailed request is honoured without trusting its From.
        return f"mailto:{mailto}?subject=unsubscribe%20{self.keys.sign(self.release.id, address)}"


def unsubscribe_keys(config: Config, *, required: bool = False) -> Keys | None:
    """The workspace's unsubscribe keys; a :class:`ConfigError` saying what to do when links (or
    a VERP envelope sender) are configured and there is no key (a workspace made before keys
    existed)."""
    keys = load_keys(
        key_file=config.unsubscribe_key_file, key_env=config.unsubscribe_key_env, place=config.path.name
    )
    if keys is None and (required or config.unsubscribe_url or config.unsubscribe_mailto):
        raise ConfigError(
            f"{config.path.name} [unsubscribe]: no unsubscribe key ({config.unsubscribe_key_file.name} is "
            "missing or empty); unsubscribe links are signed with it: run 'reldist keygen' in the workspace "
            "to create one"
        )
    return keys


def _wordwrap(wrap: Any) -> Any:
    """Jinja's wordwrap, but never breaking at a hyphen («пресс-релизы») unless a template asks."""

    @jinja2.pass_environment
    def wordwrap(
        env: jinja2.Environment,
        s: str,
        width: int = 79,
        break_long_words: bool = True,
        wrapstring: str | None = None,
        break_on_hyphens: bool = False,
    ) -> str:
        return str(wrap(env, s, width, break_long_words, wrapstring, break_on_hyphens))

    return wordwrap


def format_when(when: dt.datetime, tz: dt.tzinfo, locale: str) -> str:
    """``28 ноября 2026 г., 12:00 (UTC+5)`` in the workspace's time zone, in ``locale``."""
    local = when.astimezone(tz)
    return f"{format_date(local, 'long', locale=locale)}, {format_time(local, 'HH:mm', locale=locale)} ({utc_offset(local)})"


def _template_place(exc: BaseException, fallback: str) -> str:
    """``templates/x.html.j2:12`` from the deepest template frame of a Jinja traceback."""
    place = f"templates/{fallback}.html.j2"
    tb = exc.__traceback__ or sys.exc_info()[2]
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            place = f"templates/{Path(filename).name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return place


def _normalise_text(text: str) -> str:
    """Templates leave trailing spaces and runs of blank lines where blocks are switched off:
    strip the spaces and keep at most one blank line. (splitlines also turns any line break a
    contact's field may carry, a lone CR or U+2028, into a plain one.)"""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw if raw == "-- " else raw.rstrip()  # "-- " is the signature separator
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n") + "\n"
