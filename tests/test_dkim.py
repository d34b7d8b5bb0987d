"""DKIM: ``[dkim]`` signs every message; dkimpy verifies the signatures against the public key.

Keys are made here with ``cryptography`` (RSA-2048 as PKCS#1 and PKCS#8 PEM, Ed25519 as PKCS#8
PEM and as dkimpy's base64 seed), and the TXT record is computed from the public key on the
test's side, independently of ``reldist.dkim``. Verification never touches the DNS: ``dnsfunc``
answers for the one selector.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from helpers import RELEASE_ID, make_workspace, parse
from reldist.cli import main
from reldist.dkim import DkimSigner, load_signer
from reldist.errors import ConfigError
from reldist.settings import DkimSettings

RELEASE = f"releases/{RELEASE_ID}"
SELECTOR = "press2026"
DOMAIN = "ecomuseum.example"
DNS_NAME = f"{SELECTOR}._domainkey.{DOMAIN}."
Dns = Callable[..., bytes | None]


def rsa_key(fmt: str) -> tuple[bytes, str]:
    """(private key file, TXT record) for a new RSA-2048 key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL
        if fmt == "pkcs1"
        else serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def ed25519_key(fmt: str) -> tuple[bytes, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    if fmt == "pem":
        data = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    else:  # what dkimpy's dknewkey writes: the base64 of the 32-byte seed
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        data = base64.b64encode(raw) + b"\n"
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return data, f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}"


KEYS = {
    "rsa-pkcs1": lambda: rsa_key("pkcs1"),
    "rsa-pkcs8": lambda: rsa_key("pkcs8"),
    "ed25519-pem": lambda: ed25519_key("pem"),
    "ed25519-seed": lambda: ed25519_key("seed"),
}


def dns(record: str) -> Dns:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record.encode() if name.decode() == DNS_NAME else None

    return lookup


def tags(message: bytes) -> dict[str, str]:
    """The tags of the message's DKIM-Signature header."""
    value = parse(message)["DKIM-Signature"]
    assert value is not None
    unfolded = re.sub(r"\s+", "", str(value))
    return dict(part.split("=", 1) for part in unfolded.split(";") if part)


def signed_office(tmp_path: Path, key: bytes) -> Path:
    root = make_workspace(tmp_path / "office")
    (root / "dkim.key").write_bytes(key)
    toml = root / "reldist.toml"
    text = toml.read_text(encoding="utf-8").replace("# url = ", "url = ")  # one-click unsubscribe on
    text += f'\n[dkim]\ndomain = "{DOMAIN}"\nselector = "{SELECTOR}"\nkey_file = "dkim.key"\n'
    toml.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_every_sent_message_verifies_against_the_public_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    key, record = KEYS[kind]()
    root = signed_office(tmp_path, key)
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["send", RELEASE, "--yes"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    files = sorted((root / "outbox" / RELEASE_ID).glob("*.eml"))
    assert len(files) >= 10
    algorithm = "ed25519-sha256" if kind.startswith("ed25519") else "rsa-sha256"
    for path in files:
        data = path.read_bytes()
        assert data.startswith(b"DKIM-Signature: ")
        assert dkim.verify(data, dnsfunc=dns(record)), path.name
        found = tags(data)
        assert found["a"] == algorithm
        assert found["d"] == DOMAIN and found["s"] == SELECTOR
        signed = found["h"].lower().split(":")
        for name in (
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ):
            assert name in signed, (name, signed)
        assert signed.count("from") == 2  # over-signed: a second From cannot be added


@pytest.mark.parametrize("kind", ["rsa-pkcs8", "ed25519-pem"])
def test_a_changed_message_or_another_key_fails_verification(tmp_path: Path, kind: str) -> None:
    key, record = KEYS[kind]()
    other_key, other_record = KEYS[kind]()
    signer = DkimSigner(domain=DOMAIN, selector=SELECTOR, key=key)
    assert signer.dns_record() == record  # reldist publishes the same key the test computed
    message = (
        b"From: =?utf-8?b?0K3QutC+0JzRg9C30LXQuQ==?= <press@ecomuseum.example>\r\n"
        b"To: ivan@example.org\r\nSubject: Release\r\nDate: Fri, 27 Nov 2026 10:00:00 +0500\r\n"
        b"Message-ID: <1@ecomuseum.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nText\r\n"
    )
    signed = signer.sign(message)
    assert dkim.verify(signed, dnsfunc=dns(record))
    assert not dkim.verify(signed.replace(b"Subject: Release", b"Subject: Relaese"), dnsfunc=dns(record))
    assert not dkim.verify(signed.replace(b"\r\n\r\nText", b"\r\n\r\nTest"), dnsfunc=dns(record))
    assert not dkim.verify(b"From: evil@example.org\r\n" + signed, dnsfunc=dns(record))
    assert not dkim.verify(signed, dnsfunc=dns(other_record))
    assert other_key != key


OVERSIGNED = (
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "MIME-Version",
    "Content-Type",
)


@pytest.mark.parametrize("kind", ["rsa-pkcs8", "ed25519-pem"])
def test_a_header_prepended_to_a_sent_message_fails_verification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Over-signing (RFC 6376 8.15): each header that must not be added is signed once more than
    the message has it, so a copy prepended on the way (or a Cc it never had) breaks the signature."""
    key, record = KEYS[kind]()
    root = signed_office(tmp_path, key)
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["send", RELEASE, "--yes", "--limit", "1"], catch_exceptions=False)
    assert result.exit_code in (0, 3), result.output
    (path,) = (root / "outbox" / RELEASE_ID).glob("*.eml")
    data = path.read_bytes()
    assert dkim.verify(data, dnsfunc=dns(record))
    message = parse(data)
    assert message["Reply-To"] and message["List-Id"] and message["List-Unsubscribe-Post"]
    for name in OVERSIGNED:
        forged = f"{name}: forged <evil@attacker.example>\r\n".encode() + data
        assert not dkim.verify(forged, dnsfunc=dns(record)), f"a prepended {name} still verifies"
        # placed just below the signature, where a relay would add it, too
        head, _, rest = data.partition(b"\r\nFrom: ")
        forged = head + f"\r\n{name}: forged\r\nFrom: ".encode() + rest
        assert not dkim.verify(forged, dnsfunc=dns(record)), f"an inserted {name} still verifies"


def test_re_folded_headers_still_verify(tmp_path: Path) -> None:
    """Relaxed header canonicalization: a relay that re-folds a header does not break the signature."""
    key, record = ed25519_key("pem")
    signer = DkimSigner(domain=DOMAIN, selector=SELECTOR, key=key)
    message = (
        b"From: press@ecomuseum.example\r\nTo: ivan@example.org\r\nSubject: A rather long subject line\r\n"
        b"Date: Fri, 27 Nov 2026 10:00:00 +0500\r\nMessage-ID: <2@ecomuseum.example>\r\n\r\nText\r\n"
    )
    signed = signer.sign(message)
    refolded = signed.replace(b"Subject: A rather long", b"Subject:  A rather\r\n\tlong")
    assert dkim.verify(refolded, dnsfunc=dns(record))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        (b"not a key at all", "not a private key"),
        (
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "passphrase",
        ),
        (
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "not an RSA or Ed25519 private key",
        ),
    ],
)
def test_an_unusable_key_is_a_config_error_naming_the_key_file(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "dkim.key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_signer(DkimSettings(DOMAIN, SELECTOR, path))
    assert "dkim.key_file" in str(caught.value)
    assert expected in str(caught.value)


def test_check_stops_on_a_broken_key_and_reports_the_record_of_a_good_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, record = ed25519_key("pem")
    root = signed_office(tmp_path, key)
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["-v", "check", RELEASE], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"{SELECTOR}._domainkey.{DOMAIN}" in result.output
    assert record in result.output
    assert "SPF for it" not in result.output  # the SPF/DKIM/DMARC note is for unsigned mail

    (root / "dkim.key").write_bytes(b"garbage")
    result = CliRunner().invoke(main, ["check", RELEASE])
    assert result.exit_code == 1
    assert "dkim.key_file" in result.output and "not a private key" in result.output


def test_a_signing_domain_other_than_the_senders_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = ed25519_key("pem")
    root = signed_office(tmp_path, key)
    toml = root / "reldist.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace(f'domain = "{DOMAIN}"', 'domain = "mailer.example.net"'),
        encoding="utf-8",
    )
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["check", RELEASE, "--strict"])
    assert result.exit_code == 1
    assert "signed for 'mailer.example.net' but come from 'ecomuseum.example'" in result.output


def test_preview_shows_the_signature_the_message_will_carry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = ed25519_key("pem")
    root = signed_office(tmp_path, key)
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["preview", RELEASE], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    first = (root / "preview" / RELEASE_ID / "recipients" / "1.js").read_text(encoding="utf-8")
    data = json.loads(first[first.index(",") + 1 : first.rindex(")")])
    name, value = data["headers"][0]
    assert name == "DKIM-Signature" and f"d={DOMAIN}" in value and f"s={SELECTOR}" in value
