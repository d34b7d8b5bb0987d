"""DKIM signing (RFC 6376) of built messages with dkimpy: RSA and Ed25519 keys.

Owns the ``[dkim]`` key: reading ``key_file`` (PEM, PKCS#1 or PKCS#8, for RSA; PKCS#8 PEM or
dkimpy's base64 seed for Ed25519, RFC 8463), telling its kind, proving at load time that it signs,
and :meth:`DkimSigner.sign`, which puts a ``DKIM-Signature`` header on top of a message's bytes.
It also gives the DNS TXT record that publishes the public key (:meth:`DkimSigner.dns_record`).

It does not build messages (``message`` calls the signer at the end of ``MessageBuilder.build``)
and never looks anything up in the DNS.

Signed header fields: From, To, Cc, Subject, Date, Message-ID, Reply-To, List-Unsubscribe,
List-Unsubscribe-Post, List-Id, MIME-Version and Content-Type are over-signed (RFC 6376 8.15):
each is named once more than the message has it (once when it has none), so a copy added on the
way, or one the message did not have, breaks the signature. Content-Language is signed as it is.
Canonicalization is
relaxed for the header (it survives the re-folding relays do) and simple for the body: every body
line reldist writes is base64 or a MIME boundary, with no trailing space for "relaxed" to forgive,
and relaxed body canonicalization would triple dkimpy's cost (1.1 ms instead of 0.4 ms a 44 KB
message with Ed25519).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import dkim
import nacl.exceptions
import nacl.signing
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from .config import Config
from .errors import ConfigError
from .settings import DkimSettings

__all__ = ["OVERSIGNED", "SIGNED_HEADERS", "DkimSigner", "load_signer"]

Algorithm = Literal["rsa", "ed25519"]

#: Headers that must not be added to a signed message: each is signed one time more than the
#: message has it (RFC 6376 8.15 "over-signing"), so that an added one fails verification.
OVERSIGNED: tuple[str, ...] = (
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
#: Signed as often as the message has them, no more.
SIGNED_HEADERS: tuple[str, ...] = (*OVERSIGNED, "Content-Language")

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.DOTALL)
_HEADER_NAME = re.compile(rb"^([!-9;-~]+):", re.MULTILINE)
_ED25519_OID = b"\x06\x03\x2b\x65\x70"  # 1.3.101.112
_RSA_OID = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"  # 1.2.840.113549.1.1.1
_PROBE = (
    b"From: probe@example.org\r\nTo: probe@example.org\r\nSubject: probe\r\n"
    b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <probe@example.org>\r\n\r\nprobe\r\n"
)


@dataclass(frozen=True, slots=True)
class _Key:
    algorithm: Algorithm
    private: bytes  # as dkimpy takes it: PEM for RSA, base64 of the 32-byte seed for Ed25519
    public: bytes  # DER SubjectPublicKeyInfo for RSA, the raw 32 bytes for Ed25519


class DkimSigner:
    """Signs messages for one domain and selector. Build it with :func:`load_signer`."""

    def __init__(self, *, domain: str, selector: str, key: bytes, where: str = "dkim.key_file") -> None:
        self.domain = domain.strip().rstrip(".").lower()
        self.selector = selector.strip()
        if not self.domain or not self.selector:
            raise ConfigError("'dkim.domain' and 'dkim.selector' must not be empty", place=where)
        parsed = _parse_key(key, where)
        self.algorithm: Algorithm = parsed.algorithm
        self._private = parsed.private
        self._public = parsed.public
        self._sig_algorithm = b"ed25519-sha256" if parsed.algorithm == "ed25519" else b"rsa-sha256"
        try:
            self.sign(_PROBE)
        except dkim.DKIMException as exc:
            raise ConfigError(f"the key does not sign: {exc}", place=where) from None

    def __repr__(self) -> str:
        return f"<DkimSigner {self.algorithm} {self.dns_name}>"

    @property
    def dns_name(self) -> str:
        """Where the public key is published: ``<selector>._domainkey.<domain>``."""
        return f"{self.selector}._domainkey.{self.domain}"

    def dns_record(self) -> str:
        """The TXT record to publish at :attr:`dns_name` (``v=DKIM1; k=...; p=...``)."""
        return f"v=DKIM1; k={self.algorithm}; p={base64.b64encode(self._public).decode('ascii')}"

    def sign(self, message: bytes) -> bytes:
        """The message with a ``DKIM-Signature`` header field in front (CRLF line ends in and out)."""
        head = message.split(b"\r\n\r\n", 1)[0]
        present = Counter(name.lower() for name in _HEADER_NAME.findall(head))
        include: list[bytes] = []
        for name in SIGNED_HEADERS:
            key = name.lower().encode("ascii")
            include += [key] * (present[key] + (name in OVERSIGNED))
        signature: bytes = dkim.sign(
            message,
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self._private,
            signature_algorithm=self._sig_algorithm,
            include_headers=include,
            canonicalize=(b"relaxed", b"simple"),
            linesep=b"\r\n",
        )
        return signature + message

    __call__ = sign


def load_signer(settings: DkimSettings | None, *, where: str = "reldist.toml") -> DkimSigner | None:
    """The signer ``[dkim]`` asks for, or None; :class:`ConfigError` naming the key file if unusable."""
    if settings is None:
        return None
    place = f"{where}: 'dkim.key_file' ({settings.key_file})"
    try:
        key = settings.key_file.read_bytes()
    except FileNotFoundError:
        raise ConfigError("no such file", place=place) from None
    except OSError as exc:
        raise ConfigError(f"cannot read it ({exc.strerror})", place=place) from None
    return DkimSigner(domain=settings.domain, selector=settings.selector, key=key, where=place)


def signer_for(config: Config) -> DkimSigner | None:
    """:func:`load_signer` for a loaded workspace config."""
    return load_signer(config.dkim, where=config.path.name)


def _parse_key(data: bytes, where: str) -> _Key:
    text = data.replace(b"\r\n", b"\n").strip()
    match = _PEM.search(text)
    if match is None:
        # dkimpy's dknewkey writes an Ed25519 private key as the base64 of its 32-byte seed.
        try:
            seed = base64.b64decode(text, validate=True)
        except binascii.Error:
            seed = b""
        if len(seed) != 32:
            raise ConfigError(
                "not a private key (expected a PEM file such as "
                "'openssl genrsa 2048' or 'openssl genpkey -algorithm ed25519' writes)",
                place=where,
            )
        return _ed25519(seed, where)
    kind, body = match.group(1).decode("ascii"), match.group(2)
    if kind in ("ENCRYPTED PRIVATE KEY",) or b"ENCRYPTED" in body[:200]:
        raise ConfigError(
            "the key is protected by a passphrase; store it without one (chmod 600)", place=where
        )
    try:
        der = base64.b64decode(b"".join(body.split()), validate=True)
    except binascii.Error:
        raise ConfigError("the PEM text is not valid base64", place=where) from None
    if kind == "PRIVATE KEY" and _ED25519_OID in der[:16]:
        start = der.find(b"\x04\x22\x04\x20")
        if start < 0 or len(der) < start + 36:
            raise ConfigError("a broken Ed25519 key", place=where)
        return _ed25519(der[start + 4 : start + 36], where)
    if kind == "RSA PRIVATE KEY" or (kind == "PRIVATE KEY" and _RSA_OID in der[:32]):
        pem = b"-----BEGIN RSA PRIVATE KEY-----\n" + body + b"\n-----END RSA PRIVATE KEY-----\n"
        try:
            numbers = parse_pem_private_key(pem)
        except UnparsableKeyError as exc:
            raise ConfigError(f"a broken RSA key ({exc})", place=where) from None
        modulus, exponent = int(numbers["modulus"]), int(numbers["publicExponent"])
        if modulus.bit_length() < 1024:
            raise ConfigError(
                f"the RSA key has {modulus.bit_length()} bits; receivers ignore keys under 1024 (use 2048)",
                place=where,
            )
        return _Key("rsa", pem, _rsa_public_der(modulus, exponent))
    raise ConfigError(f"a {kind.lower()} is not an RSA or Ed25519 private key", place=where)


def _ed25519(seed: bytes, where: str) -> _Key:
    try:
        signing = nacl.signing.SigningKey(seed)
    except nacl.exceptions.ValueError as exc:  # pragma: no cover - any 32 bytes are a seed
        raise ConfigError(f"a broken Ed25519 key ({exc})", place=where) from None
    return _Key("ed25519", base64.b64encode(seed), bytes(signing.verify_key))


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def _der_int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _rsa_public_der(modulus: int, exponent: int) -> bytes:
    """SubjectPublicKeyInfo of an RSA key, as ``openssl rsa -pubout -outform der`` writes it."""
    rsa_key = _der(0x30, _der_int(modulus) + _der_int(exponent))
    algorithm = _der(0x30, _RSA_OID + b"\x05\x00")
    return _der(0x30, algorithm + _der(0x03, b"\x00" + rsa_key))
