"""MIME messages: one rendered recipient in, RFC 5322 bytes out.

Owns the message's structure (multipart/alternative of text/plain and text/html, inside
multipart/mixed when there are attachments), its headers (RFC 2047 display names, Message-ID on
the sender's domain, List-Unsubscribe with RFC 8058 one-click, List-Id, Content-Language, the
release id) and the SMTP envelope. A ``signer`` given to :class:`MessageBuilder` (DKIM,
``reldist.dkim``) is applied to every message it builds.

The per-recipient loop is the hot path. ``email.message.EmailMessage`` takes ~3 ms a message here,
mostly folding Cyrillic headers, so :class:`MessageBuilder` writes the bytes itself: everything
that is the same for all recipients (From, Subject per language, attachments) is encoded once,
and per recipient only To, Message-ID, Date and the two bodies are encoded. :func:`build_reference`
builds the same message the slow, obviously-correct way; the tests prove both parse back equal.

The header fields themselves (encoded words, folding, the guard against control characters in
values from outside) are written by ``headers``; this module assembles them and the bodies.
"""

from __future__ import annotations

import binascii
import datetime as dt
import itertools
import re
import secrets
from collections.abc import Callable
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from .config import Config
from .contacts import Contact
from .envelope import Envelope
from .headers import CRLF, address_tokens, check_header_block, clean, header, phrase, unstructured
from .release import Release
from .render import Rendered
from .tokens import Keys

#: Takes a built message and returns it signed (``reldist.dkim.DkimSigner`` is one).
Signer = Callable[[bytes], bytes]


def _b64(data: bytes) -> bytes:
    """Base64 in lines of 76 characters, each ending in CRLF (one C call, then slices: about
    half the time of ``base64.encodebytes``, which calls into C once a line)."""
    encoded = binascii.b2a_base64(data, newline=False)
    if not encoded:
        return b""
    return b"\r\n".join([encoded[i : i + 76] for i in range(0, len(encoded), 76)]) + b"\r\n"


class Base64Blocks:
    """Base64 of bodies made of pieces — chunks every recipient of a stencil shares, and their
    own values between them — encoding each large chunk once.

    A decoder ignores line breaks, and RFC 2045 sets only a maximum line length (76), so a line
    may end early: the bytes before a shared chunk are encoded on lines of their own (padded to a
    multiple of 3 bytes with the chunk's first bytes, so no ``=`` appears mid-body), then the
    chunk's encoding is reused as is. Every line is a whole number of 4-character groups. The
    encoding depends only on how many of the chunk's first bytes were borrowed (0, 1 or 2), so a
    chunk has at most three encodings here.
    """

    MIN_SHARED = 1024  # smaller chunks are encoded with the values around them

    def __init__(self) -> None:
        self._blocks: dict[tuple[bytes, int], tuple[int, bytes]] = {}

    def encode(self, pieces: tuple[bytes, ...]) -> bytes:
        out: list[bytes] = []
        pending = bytearray()  # bytes not encoded yet; always starts on a 3-byte boundary
        for index, piece in enumerate(pieces):
            if index % 2 or len(piece) < self.MIN_SHARED:
                pending += piece
                continue
            borrow = -len(pending) % 3
            pending += piece[:borrow]
            if pending:
                out.append(_b64(bytes(pending)))
                pending.clear()
            key = (piece, borrow)  # bytes hash once and compare by identity first: cheap
            block = self._blocks.get(key)
            if block is None:
                used = (len(piece) - borrow) // 3 * 3
                block = self._blocks[key] = (used, _b64(piece[borrow : borrow + used]))
            used, encoded = block
            out.append(encoded)
            pending += piece[borrow + used :]
        if pending:
            out.append(_b64(bytes(pending)))
        return b"".join(out)

    def size(self, pieces: tuple[bytes, ...]) -> int:
        """``len(encode(pieces))``, counted without encoding (the same walk as :meth:`encode`)."""
        total = pending = 0
        for index, piece in enumerate(pieces):
            if index % 2 or len(piece) < self.MIN_SHARED:
                pending += len(piece)
                continue
            borrow = -pending % 3
            used = (len(piece) - borrow) // 3 * 3
            total += base64_size(pending + borrow) + base64_size(used)
            pending = len(piece) - borrow - used
        return total + base64_size(pending)


def base64_size(length: int) -> int:
    """``len(_b64(data))`` for ``length`` bytes of data: base64 in lines of 76, CRLF each."""
    chars = 4 * ((length + 2) // 3)
    return chars + 2 * ((chars + 75) // 76)


def _canonical(text: str) -> bytes:
    """Text in its canonical MIME form: UTF-8, CRLF line ends and one final line end, as
    ``EmailMessage.set_content`` gives."""
    body = text.encode("utf-8")
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
    return body.rstrip(b"\n").replace(b"\n", b"\r\n") + b"\r\n"


def _part_head(boundary: str, subtype: str) -> str:
    return (
        f'--{boundary}{CRLF}Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: base64{CRLF}{CRLF}"
    )


def header_address(contact: Contact) -> str:
    """The form of the address to write in headers and the envelope: ASCII (xn--) where possible."""
    return contact.ascii_address or contact.address


class MessageBuilder:
    """Builds every recipient's message of one release.

    Construct once per release (all constant headers and the attachments are encoded here), then
    call :meth:`build` per recipient.
    """

    def __init__(self, config: Config, release: Release, *, signer: Signer | None = None) -> None:
        self.config = config
        self.release = release
        self.signer = signer  # applied to every built message (DKIM: ``reldist.dkim``)
        sender = config.sender
        self._token = secrets.token_hex(8)
        self._keys: Keys | None = None  # loaded on the first VERP envelope
        self._from = header("From", address_tokens(sender.name, sender.address))
        constant = []
        if sender.reply_to:
            constant.append(header("Reply-To", [sender.reply_to]))
        list_name = sender.organisation or sender.name
        constant.append(header("List-Id", [*phrase(f"{list_name} press releases"), f"<{config.list_id}>"]))
        constant.append(header("X-Reldist-Release", [clean(release.id)]))
        constant.append("MIME-Version: 1.0" + CRLF)
        self._constant = "".join(constant)
        self._subjects: dict[str, str] = {}
        self._alternative = f"=_reldist_{self._token}_a"
        self._mixed = f"=_reldist_{self._token}_m"
        self._attachments = b"".join(
            self._attachment_part(a.filename, a.content_type, a.data) for a in release.attachments
        ).replace(b"--=_reldist_BOUNDARY", f"--{self._mixed}".encode())
        self._between = _part_head(self._alternative, "html").encode()  # text body | html body
        self._tail = f"--{self._alternative}--{CRLF}".encode()  # after the html body
        if self._attachments:
            self._tail += self._attachments + f"--{self._mixed}--{CRLF}".encode()
        self._last_date: tuple[object, str] = (None, "")
        self._ids = itertools.count(1)
        self._blocks = Base64Blocks()
        self._slug = re.sub(r"[^A-Za-z0-9._-]", "-", release.id)

    def new_message_id(self, seq: int) -> str:
        """A unique Message-ID on the sender's domain: ``<release.seq.random@domain>``; the random
        part is this builder's random token and a counter (a token per message cost ~13 us)."""
        return f"<{self._slug}.{seq}.{self._token[:12]}{next(self._ids):x}@{self.config.sender.domain}>"

    def envelope(self, contact: Contact, *, seq: int | None = None) -> Envelope:
        """The SMTP envelope; with a VERP ``[sender] bounce`` and the delivery row's ``seq``, the
        envelope sender carries a token naming that delivery (``reldist inbox`` reads it back)."""
        sender = self.config.sender.envelope_sender
        if seq is not None and self.config.sender.verp and self.config.sender.bounce:
            from .tokens import verp_token

            if self._keys is None:
                from .render import unsubscribe_keys

                self._keys = unsubscribe_keys(self.config, required=True)
            assert self._keys is not None  # required=True raises instead
            sender = self.config.sender.bounce.replace("{token}", verp_token(self._keys, seq))
        return Envelope(
            sender=sender,
            recipient=header_address(contact),
            needs_smtputf8=contact.ascii_address is None,
        )

    def build(
        self,
        rendered: Rendered,
        contact: Contact,
        *,
        message_id: str,
        date: dt.datetime,
        unsubscribe: tuple[str | None, str | None] | None = None,
        sign: bool = True,
    ) -> bytes:
        """The message as bytes with CRLF line ends. ``unsubscribe`` is (mailto URI, https URL);
        by default the targets the renderer gave this recipient (``rendered.unsubscribe``).

        With a ``signer`` the result is what the signer returns (the message with its signature);
        ``sign=False`` skips it where only the content matters (a preflight, a check): an RSA
        signature costs ~40 times the rest of the build.
        """
        head = self._head(rendered, contact, message_id, date, unsubscribe)
        if rendered.bodies is not None:
            text_body, html_body = (self._blocks.encode(pieces) for pieces in rendered.bodies)
        else:
            text_body, html_body = _b64(_canonical(rendered.text)), _b64(_canonical(rendered.html))
        data = b"".join((head, text_body, self._between, html_body, self._tail))
        return data if self.signer is None or not sign else self.signer(data)

    def measure(
        self,
        rendered: Rendered,
        contact: Contact,
        *,
        message_id: str,
        date: dt.datetime,
        unsubscribe: tuple[str | None, str | None] | None = None,
    ) -> int:
        """``len(build(..., sign=False))``, the size a preflight reports: every header is made as
        :meth:`build` makes it; the base64 bodies are only counted."""
        head = self._head(rendered, contact, message_id, date, unsubscribe)
        if rendered.bodies is not None:
            bodies = sum(self._blocks.size(pieces) for pieces in rendered.bodies)
        else:
            bodies = base64_size(len(_canonical(rendered.text))) + base64_size(len(_canonical(rendered.html)))
        return len(head) + bodies + len(self._between) + len(self._tail)

    def _head(
        self,
        rendered: Rendered,
        contact: Contact,
        message_id: str,
        date: dt.datetime,
        unsubscribe: tuple[str | None, str | None] | None,
    ) -> bytes:
        """Everything before the text body: the headers and the text part's own."""
        subject = self._subjects.get(rendered.subject)
        if subject is None:
            subject = self._subjects[rendered.subject] = header("Subject", unstructured(rendered.subject))
        head = [
            self._from,
            header("To", address_tokens(contact.name, header_address(contact))),
            subject,
            f"Date: {self._date(date)}{CRLF}",
            f"Message-ID: {message_id}{CRLF}",
            f"Content-Language: {', '.join(rendered.languages)}{CRLF}",
            self._constant,
        ]
        mailto, url = rendered.unsubscribe if unsubscribe is None else unsubscribe
        targets = [f"<{t}>" for t in (mailto, url) if t]
        if targets:
            head.append(header("List-Unsubscribe", [t + "," for t in targets[:-1]] + targets[-1:]))
            if url:
                head.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF)
        # Every value above is cleaned or validated, so a refusal here is a bug; the transports
        # also rely on built messages being in SMTP form already (Outgoing.canonical).
        text = check_header_block("".join(head))
        if self._attachments:
            text += (
                f'Content-Type: multipart/mixed; boundary="{self._mixed}"{CRLF}{CRLF}--{self._mixed}{CRLF}'
            )
        a = self._alternative
        text += f'Content-Type: multipart/alternative; boundary="{a}"{CRLF}{CRLF}' + _part_head(a, "plain")
        return text.encode()

    def _date(self, date: dt.datetime) -> str:
        """``Fri, 27 Nov 2026 20:54:27 +0500``, remembered for the second it names."""
        key = (date.replace(microsecond=0), date.utcoffset())
        if key != self._last_date[0]:
            self._last_date = (key, format_datetime(date))
        return self._last_date[1]

    @staticmethod
    def _attachment_part(filename: str, content_type: str, data: bytes) -> bytes:
        name = clean(filename)
        if name.isascii() and '"' not in name and "\\" not in name:
            params = f'; filename="{name}"'
        else:  # RFC 2231 for non-ASCII file names
            from urllib.parse import quote

            params = f"; filename*=utf-8''{quote(name)}"
        fields = check_header_block(
            f"Content-Type: {content_type}{CRLF}Content-Disposition: attachment{params}{CRLF}"
        )
        return (
            f"--=_reldist_BOUNDARY{CRLF}{fields}Content-Transfer-Encoding: base64{CRLF}{CRLF}"
        ).encode() + _b64(data)


def build_reference(
    config: Config,
    release: Release,
    rendered: Rendered,
    contact: Contact,
    *,
    message_id: str,
    date: dt.datetime,
    unsubscribe: tuple[str | None, str | None] = (None, None),
) -> EmailMessage:
    """The same message built with ``EmailMessage``: slow, used as the specification in tests."""
    # max_line_length=998: CPython's folding of long RFC 2047 subjects drops spaces between words.
    msg = EmailMessage(policy=policy.SMTP.clone(max_line_length=998))
    sender = config.sender
    msg["From"] = Address(clean(sender.name), addr_spec=sender.address)
    msg["To"] = Address(clean(contact.name), addr_spec=header_address(contact))
    msg["Subject"] = clean(rendered.subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    if sender.reply_to:
        msg["Reply-To"] = sender.reply_to
    msg["List-Id"] = f"{clean((sender.organisation or sender.name) + ' press releases')} <{config.list_id}>"
    msg["X-Reldist-Release"] = clean(release.id)
    targets = [f"<{t}>" for t in unsubscribe if t]
    if targets:
        msg["List-Unsubscribe"] = ", ".join(targets)
        if unsubscribe[1]:
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(rendered.text, cte="base64")  # (clears Content-* headers: set them after)
    msg.add_alternative(rendered.html, subtype="html", cte="base64")
    for attachment in release.attachments:
        main, _, sub = attachment.content_type.partition("/")
        msg.add_attachment(attachment.data, maintype=main, subtype=sub, filename=attachment.filename)
    msg["Content-Language"] = ", ".join(rendered.languages)
    return msg
