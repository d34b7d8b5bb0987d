"""Signed unsubscribe tokens: an opaque, URL-safe name for one recipient of one release.

A token is ``base64url(version | digest | release id | mac)`` without padding, where

- ``digest`` is the first 12 bytes of HMAC-SHA256(key, casefolded address): the recipient, in a
  form nobody without the key can turn back into the address (no plain, percent-encoded or
  base64 copy of it is in the token);
- ``release id`` is the release's id as UTF-8 (not secret: it is in every message's headers);
- ``mac`` is the first 16 bytes of HMAC-SHA256(key, everything before it).

Keys live in the workspace's ``unsubscribe.key`` (one base64url key a line, the first signs,
all verify, so a key can be rotated without breaking links already sent; created by
``reldist init`` or ``reldist keygen`` with mode 600) or in an environment variable named by
``[unsubscribe] key_env``. Tokens do not expire: a journalist may click a link a year later.

This module owns the token format and the key file; finding the delivery a token names is the
caller's (``feedback``), with :meth:`Keys.digest` over the release's addresses.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

__all__ = ["KEY_FILE", "Keys", "Verified", "add_key", "load_keys", "verify_verp", "verp_token"]

KEY_FILE = "unsubscribe.key"
_VERSION = b"\x01"
_DIGEST = 12
_MAC = 16
_ADDRESS = b"reldist-address\x00"
_TOKEN = b"reldist-unsubscribe\x00"


@dataclass(frozen=True, slots=True)
class Verified:
    """What a token that verified names: the release, and the address digest under ``key``."""

    release_id: str
    digest: bytes
    key: int  # the index of the key that verified it


class Keys:
    """The workspace's unsubscribe keys; the first one signs."""

    __slots__ = ("_last", "secrets")

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        if not keys:
            raise ValueError("at least one key")
        self.secrets = keys
        # A message asks for the same token twice (url and mailto): remember the last one.
        self._last: tuple[str, str, str] = ("", "", "")

    def digest(self, address: str, key: int = 0) -> bytes:
        """The keyed digest that names ``address`` (casefolded) in a token."""
        return hmac.digest(self.secrets[key], _ADDRESS + address.casefold().encode("utf-8"), "sha256")[
            :_DIGEST
        ]

    def sign(self, release_id: str, address: str) -> str:
        """The token for ``address`` in ``release_id``, under the first key."""
        last_release, last_address, last_token = self._last
        if address == last_address and release_id == last_release:
            return last_token
        payload = _VERSION + self.digest(address) + release_id.encode("utf-8")
        mac = hmac.digest(self.secrets[0], _TOKEN + payload, "sha256")[:_MAC]
        token = base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode("ascii")
        self._last = (release_id, address, token)
        return token

    def verify(self, token: str) -> Verified | None:
        """What ``token`` names, or None when it is malformed or no key signed it."""
        text = token.strip()
        if not text or len(text) > 1024:
            return None
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) < 1 + _DIGEST + _MAC or raw[:1] != _VERSION:
            return None
        payload, mac = raw[:-_MAC], raw[-_MAC:]
        for index, key in enumerate(self.secrets):
            expected = hmac.digest(key, _TOKEN + payload, "sha256")[:_MAC]
            if hmac.compare_digest(mac, expected):
                try:
                    release_id = payload[1 + _DIGEST :].decode("utf-8")
                except UnicodeDecodeError:
                    return None
                return Verified(release_id, payload[1 : 1 + _DIGEST], index)
        return None


_VERP = b"reldist-verp\x00"


def verp_token(keys: Keys, row_id: int) -> str:
    """A short token for a VERP envelope sender (``bounces+TOKEN@domain``): the delivery row's
    id and a 9-byte MAC, 20 characters, so that the local part stays far under its 64."""
    payload = row_id.to_bytes(6, "big")
    mac = hmac.digest(keys.secrets[0], _VERP + payload, "sha256")[:9]
    return base64.urlsafe_b64encode(payload + mac).decode("ascii")


def verify_verp(keys: Keys, token: str) -> int | None:
    """The delivery row id a VERP token names, or None when no key signed it."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 15:
        return None
    payload, mac = raw[:6], raw[6:]
    for key in keys.secrets:
        if hmac.compare_digest(mac, hmac.digest(key, _VERP + payload, "sha256")[:9]):
            return int.from_bytes(payload, "big")
    return None


def new_key() -> str:
    """A fresh random key as one base64url line."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def _parse(text: str, where: str) -> tuple[bytes, ...]:
    keys: list[bytes] = []
    for number, line in enumerate(text.splitlines(), 1):
        for value in (v.strip() for v in line.split("#", 1)[0].split(",")):
            if value:
                keys.append(_key(value, f"{where}:{number}"))
    return tuple(keys)


def _key(value: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 16:
        raise ConfigError("not an unsubscribe key (base64url, 32 random bytes)", place=where)
    return key


def load_keys(*, key_file: Path, key_env: str | None, place: str) -> Keys | None:
    """The keys from ``key_env`` when set in the config, else from ``key_file``; None when neither
    has any. ``place`` names the config for errors."""
    if key_env:
        value = os.environ.get(key_env)
        if not value:
            raise ConfigError(
                f"'unsubscribe.key_env' names ${key_env}, which is not set "
                "(it holds the unsubscribe keys, base64url, comma separated, the signing key first)",
                place=place,
            )
        keys = _parse(value, f"${key_env}")
        return Keys(keys) if keys else None
    try:
        text = key_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the unsubscribe key: {exc.strerror}", place=str(key_file)) from None
    keys = _parse(text, key_file.name)
    return Keys(keys) if keys else None


_HEADER = (
    "# reldist unsubscribe keys: the first line signs new links, every line verifies old ones.\n"
    "# Keep this file secret (mode 600) and out of version control; losing it breaks the links\n"
    "# already sent. 'reldist keygen --rotate' puts a new key first and keeps the old ones.\n"
)


def add_key(key_file: Path, *, rotate: bool = False) -> bool:
    """Create ``key_file`` (mode 600) with a new key; with ``rotate`` put a new key before the
    keys it has. Returns False when the file exists and ``rotate`` is not asked (nothing done)."""
    if key_file.exists() and not rotate:
        return False
    old = key_file.read_text(encoding="utf-8") if key_file.exists() else ""
    lines = [line for line in old.splitlines() if line.strip() and not line.startswith("#")]
    text = _HEADER + "\n".join([new_key(), *lines]) + "\n"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = key_file.with_name(key_file.name + ".new")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, 0o600)  # umask may have taken bits away, never added: make it exact
    os.replace(temporary, key_file)
    return True
