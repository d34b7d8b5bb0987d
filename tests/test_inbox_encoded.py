"""Reports whose report part (``message/delivery-status``, ``message/feedback-report``) or returned
message (``text/rfc822-headers``, ``message/rfc822``) is sent base64 or quoted-printable, and RFC
6533's UTF-8 DSNs (``message/global-delivery-status``): read as the plain ones are. The corpus's DSNs and ARF complaint, re-encoded, through the real ``reldist inbox
--maildir`` into a ledger with real deliveries, and through the reader for any line width and
line ending."""

from __future__ import annotations

import base64
import email.quoprimime
import mailbox
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import corpus
from corpus import Original
from helpers import run
from reldist.feedback.classify import classify
from reldist.feedback.incoming import Report, parse

ENCODINGS = ("base64", "quoted-printable")
REPORT_TYPES = (b"message/delivery-status", b"message/global-delivery-status", b"message/feedback-report")
RETURNED_TYPES = (b"text/rfc822-headers", b"message/rfc822", b"message/global-headers", b"message/global")


def encode_part(raw: bytes, content_type: bytes, cte: str, *, crlf: bool = False, width: int = 76) -> bytes:
    """``raw`` with the body of its (one) ``content_type`` part sent in ``cte``: base64 of the text
    (with CRLF line ends when ``crlf``, as the canonical form is), or quoted-printable in lines of at
    most ``width`` characters (soft line breaks wherever a line is longer)."""
    head, line, rest = raw.partition(b"Content-Type: " + content_type + b"\n")
    assert line and rest.startswith(b"\n"), content_type
    body, delimiter, tail = rest[1:].partition(b"\n--")  # the CRLF before a boundary is the boundary's
    assert delimiter
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    if cte == "base64":
        encoded = base64.encodebytes(body)
    else:
        eol = "\r\n" if crlf else "\n"
        encoded = email.quoprimime.body_encode(body.decode(), maxlinelen=width, eol=eol).encode() + b"\n"
    return head + line + f"Content-Transfer-Encoding: {cte}\n\n".encode() + encoded + b"--" + tail


def encode_report(raw: bytes, cte: str, *, crlf: bool = False, width: int = 76) -> bytes:
    """The report part and the returned message (when there is one) both sent in ``cte``."""
    for types in (REPORT_TYPES, RETURNED_TYPES):
        for kind in types:
            if b"Content-Type: " + kind + b"\n" in raw:
                raw = encode_part(raw, kind, cte, crlf=crlf, width=width)
                break
    return raw


def global_dsn(raw: bytes, *, report_type: bytes = b"delivery-status") -> bytes:
    """A DSN as RFC 6533 writes it for a message sent with SMTPUTF8: the same fields in a
    ``message/global-delivery-status`` part, the returned message as ``message/global`` or its
    headers as ``message/global-headers``."""
    for old, new in (
        (b"message/delivery-status", b"message/global-delivery-status"),
        (b"text/rfc822-headers", b"message/global-headers"),
        (b"message/rfc822", b"message/global"),
        (b"report-type=delivery-status", b"report-type=" + report_type),
    ):
        raw = raw.replace(b"Content-Type: " + old, b"Content-Type: " + new).replace(b"; " + old, b"; " + new)
    return raw


def reader(raw: bytes) -> Report:
    return classify(parse(raw), raw)


MAKERS: list[Callable[[Original], bytes]] = [
    corpus.postfix_hard,  # returned headers as text/rfc822-headers
    corpus.exchange_hard,
    corpus.gmail_hard,  # the whole message as message/rfc822; a diagnostic longer than a QP line
    corpus.yandex_soft,
    corpus.mailru_policy,
    corpus.arf_complaint,
]

SAMPLE = Original(
    "ivan@example.org",
    "<2026-11-eu-karaganda.5.ab12cd34ef561@ecomuseum.example>",
    "EU project supports Karaganda region",
    "From: =?utf-8?b?0K3QutC+0JzRg9C30LXQuQ==?= <press@ecomuseum.example>\nTo: ivan@example.org\n"
    "Message-ID: <2026-11-eu-karaganda.5.ab12cd34ef561@ecomuseum.example>\nSubject: EU project supports "
    "Karaganda region in tackling climate change, with a subject long enough to fold\n",
)
#: The same message, reported under an address it was forwarded to: only its Message-ID names it.
FORWARDED = Original("ivan.alias@forward.example", SAMPLE.message_id, SAMPLE.subject, SAMPLE.headers)


@pytest.mark.parametrize("maker", MAKERS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("cte", ENCODINGS)
@pytest.mark.parametrize("original", [SAMPLE, FORWARDED], ids=["sample", "forwarded"])
def test_an_encoded_report_reads_as_the_plain_one(
    maker: Callable[[Original], bytes], cte: str, original: Original
) -> None:
    plain = maker(original)
    expected = reader(plain)
    assert expected.kind in ("bounce", "complaint") and expected.recipients == (original.address,)
    assert original.message_id in expected.message_ids
    report_only = reader(encode_part(plain, next(t for t in REPORT_TYPES if t in plain), cte))
    assert report_only == expected
    assert reader(encode_report(plain, cte)) == expected
    assert reader(encode_report(plain, cte).replace(b"\n", b"\r\n")) == expected


@pytest.mark.parametrize("maker", MAKERS[:-1], ids=lambda m: m.__name__)
@pytest.mark.parametrize("cte", ["plain", *ENCODINGS])
@pytest.mark.parametrize("report_type", [b"delivery-status", b"global-delivery-status"])
def test_a_utf8_dsn_reads_as_the_plain_one(
    maker: Callable[[Original], bytes], cte: str, report_type: bytes
) -> None:
    plain = maker(FORWARDED)
    rfc6533 = global_dsn(plain, report_type=report_type)
    assert b"message/global-delivery-status" in rfc6533 and b"message/delivery-status" not in rfc6533
    assert reader(rfc6533 if cte == "plain" else encode_report(rfc6533, cte)) == reader(plain)


@given(
    maker=st.sampled_from(MAKERS),
    cte=st.sampled_from(ENCODINGS),
    crlf=st.booleans(),
    width=st.integers(min_value=4, max_value=120),
    local=st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,40}", fullmatch=True),
)
def test_any_line_width_and_line_end_reads_as_plain(
    maker: Callable[[Original], bytes], cte: str, crlf: bool, width: int, local: str
) -> None:
    original = Original(f"{local}@example.org", SAMPLE.message_id, SAMPLE.subject, SAMPLE.headers)
    plain = maker(original)
    assert reader(encode_report(plain, cte, crlf=crlf, width=width)) == reader(plain)


def ledger(root: Path) -> set[tuple[str, str, str, str]]:
    with sqlite3.connect(root / "reldist.db") as db:
        return set(
            db.execute(
                "SELECT d.address, e.kind, e.source, e.detail FROM events e "
                "JOIN deliveries d ON d.id = e.delivery_id"
            )
        )


def suppressions(root: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(root / "reldist.db") as db:
        return set(db.execute("SELECT address, source FROM suppressions"))


@pytest.mark.parametrize("cte", ["plain", *ENCODINGS])
def test_inbox_records_encoded_reports_as_plain_ones(
    cte: str, office: Path, originals: dict[str, Original], tmp_path: Path
) -> None:
    r = sorted(originals)
    o = originals

    def forwarded(address: str) -> Original:
        # The report names an address the journalist forwards to: only our Message-ID, in the
        # returned message, matches it to the delivery.
        return Original(f"alias.{address.partition('@')[0]}@forward.example", o[address].message_id,
                        o[address].subject, o[address].headers)  # fmt: skip

    reports = [
        corpus.postfix_hard(o[r[0]]),
        corpus.exchange_hard(o[r[1]]),
        corpus.gmail_hard(o[r[2]]),
        corpus.yandex_soft(o[r[3]]),
        corpus.mailru_policy(o[r[4]]),
        corpus.no_original_dsn(r[5]),
        corpus.arf_complaint(o[r[6]]),
        corpus.gmail_hard(forwarded(r[7])).replace(b"gmail.ndr.1@", b"gmail.ndr.2@"),
        corpus.arf_complaint(forwarded(r[8])).replace(b"fbl.20261126.1@", b"fbl.20261126.2@"),
        global_dsn(corpus.mailru_policy(forwarded(r[9]))).replace(b"mailru.ndr.1@", b"mailru.ndr.2@"),
    ]
    maildir = tmp_path / "Maildir"
    box = mailbox.Maildir(maildir, create=True)
    for raw in reports:
        box.add(raw if cte == "plain" else encode_report(raw, cte))
    before = suppressions(office)

    code, output = run("inbox", "--maildir", str(maildir))

    assert code == 0, output
    assert "10 messages read" in output and "unmatched" not in output, output
    assert "5 bounced, 2 complained, 2 policy-bounced, 1 soft-bounced; 7 addresses suppressed" in output
    complaint = "feedback-type abuse"
    assert ledger(office) == {
        (r[0], "bounced", "inbox", f"5.1.1 550 5.1.1 <{r[0]}>: Recipient address rejected: User unknown"),
        (r[1], "bounced", "inbox",
         "5.1.10 550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"),
        (r[2], "bounced", "inbox", "5.1.1 550-5.1.1 The email account that you tried to reach does not exist. "
         "https://support.google.com/mail/?p=NoSuchUser"),
        (r[3], "soft-bounced", "inbox", "4.2.2 452 4.2.2 Mailbox size limit exceeded"),
        (r[4], "policy-bounced", "inbox",
         "5.7.1 550 5.7.1 Message rejected under suspicion of SPAM; https://help.mail.ru/notspam-support"),
        (r[5], "bounced", "inbox", "5.1.1 550 5.1.1 User unknown"),
        (r[6], "complained", "inbox", complaint),
        (r[7], "bounced", "inbox", "5.1.1 550-5.1.1 The email account that you tried to reach does not exist. "
         "https://support.google.com/mail/?p=NoSuchUser"),
        (r[8], "complained", "inbox", complaint),
        (r[9], "policy-bounced", "inbox",
         "5.7.1 550 5.7.1 Message rejected under suspicion of SPAM; https://help.mail.ru/notspam-support"),
    }  # fmt: skip
    assert suppressions(office) - before == {
        (r[0], "bounce"),
        (r[1], "bounce"),
        (r[2], "bounce"),
        (r[5], "bounce"),
        (r[6], "complaint"),
        (r[7], "bounce"),
        (r[8], "complaint"),
    }
