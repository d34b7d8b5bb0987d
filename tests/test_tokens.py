"""Signed unsubscribe tokens: what they name, that they cannot be forged, that they hide the
address, key rotation, and the configuration around them (the key file, {address} refused)."""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import RELEASE_ID, parse, run
from reldist.tokens import KEY_FILE, Keys, add_key, load_keys


def keys(*seeds: bytes) -> Keys:
    return Keys(tuple(seed * 32 for seed in seeds))


def readable_forms(address: str) -> list[str]:
    """The address as a reader (or a scanner) could find it: plain, percent-encoded, base64 in
    every alignment (each piece long enough to be telling)."""
    forms = [address, address.casefold(), quote(address), quote(address, safe="")]
    raw = address.encode("utf-8")
    for shift in range(3):
        for alphabet in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = alphabet(b"\0" * shift + raw).decode("ascii")
            forms.append(encoded[4 : 4 + max(8, len(encoded) - 8)])
    return forms


def test_a_token_names_the_release_and_the_recipient() -> None:
    k = keys(b"a")
    token = k.sign(RELEASE_ID, "Ivan.Petrov@Example.org")
    verified = k.verify(token)
    assert verified is not None
    assert verified.release_id == RELEASE_ID
    assert verified.digest == k.digest("ivan.petrov@example.org")  # case does not matter
    assert verified.digest != k.digest("other@example.org")
    assert token.isascii() and all(c.isalnum() or c in "-_" for c in token)  # URL-safe as is


@given(st.emails())
@settings(max_examples=200, deadline=None)
def test_no_token_shows_the_address_in_a_readable_form(address: str) -> None:
    token = keys(b"k").sign(RELEASE_ID, address)
    for form in readable_forms(address):
        assert form not in token


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the MAC
        lambda t: t[:5] + ("A" if t[5] != "A" else "B") + t[6:],  # the digest
        lambda t: t + "AAAA",  # more release id, same MAC
        lambda t: t[:20],
        lambda t: "",
        lambda t: "not a token!",
    ],
)
def test_a_changed_token_does_not_verify(change: object) -> None:
    k = keys(b"a")
    token = k.sign(RELEASE_ID, "ivan@example.org")
    assert change(token) != token  # type: ignore[operator]
    assert k.verify(change(token)) is None  # type: ignore[operator]


def test_a_token_of_another_key_does_not_verify_and_rotation_keeps_old_links() -> None:
    old, other = keys(b"o"), keys(b"x")
    token = old.sign(RELEASE_ID, "ivan@example.org")
    assert other.verify(token) is None
    rotated = keys(b"n", b"o")
    verified = rotated.verify(token)
    assert verified is not None and verified.key == 1
    assert verified.digest == rotated.digest("ivan@example.org", verified.key)
    assert rotated.verify(rotated.sign(RELEASE_ID, "ivan@example.org")).key == 0  # type: ignore[union-attr]


def test_the_key_file_is_private_and_rotation_puts_a_new_key_first(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    assert add_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = load_keys(key_file=path, key_env=None, place="reldist.toml")
    assert first is not None and len(first.secrets) == 1
    assert not add_key(path)  # never replaced silently
    assert add_key(path, rotate=True)
    second = load_keys(key_file=path, key_env=None, place="reldist.toml")
    assert second is not None and second.secrets[1:] == first.secrets
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keys_from_an_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = (base64.urlsafe_b64encode(s * 32).decode() for s in (b"a", b"b"))
    monkeypatch.setenv("UNSUB_KEYS", f"{a},{b}")
    loaded = load_keys(key_file=tmp_path / "none", key_env="UNSUB_KEYS", place="reldist.toml")
    assert loaded is not None and loaded.secrets == (b"a" * 32, b"b" * 32)


def enable_url(root: Path, url: str) -> None:
    toml = root / "reldist.toml"
    text = toml.read_text(encoding="utf-8")
    assert "# url = " in text
    toml.write_text(
        text.replace('# url = "https://press.ecomuseum.example/unsubscribe/{token}"', f'url = "{url}"')
    )


def test_an_address_in_the_url_is_refused_with_the_token_form(office: Path) -> None:
    enable_url(office, "https://ecomuseum.example/unsubscribe?email={address}")
    code, output = run("check", RELEASE_ID)
    assert code == 1
    assert "'unsubscribe.url' must not carry the address" in output
    assert "/unsubscribe/{token}" in output


def test_init_makes_a_key_and_a_sent_message_carries_tokens_not_addresses(office: Path) -> None:
    assert stat.S_IMODE((office / KEY_FILE).stat().st_mode) == 0o600
    enable_url(office, "https://press.ecomuseum.example/unsubscribe/{token}")
    code, output = run("send", RELEASE_ID, "--yes")
    assert code == 0, output
    loaded = load_keys(key_file=office / KEY_FILE, key_env=None, place="")
    assert loaded is not None
    with sqlite3.connect(office / "reldist.db") as db:
        sent = {
            loaded.digest(a): a for (a,) in db.execute("SELECT address FROM deliveries WHERE status = 'sent'")
        }
    files = sorted((office / "outbox" / RELEASE_ID).glob("*.eml"))
    assert len(files) == len(sent) > 10
    for path in files:
        message = parse(path.read_bytes())
        address = message["To"].addresses[0].addr_spec
        header = str(message["List-Unsubscribe"])
        mailto, url = (target.strip(" <>") for target in header.split(","))
        token = url.rsplit("/", 1)[1]
        assert mailto == f"mailto:unsubscribe@ecomuseum.example?subject=unsubscribe%20{token}"
        verified = loaded.verify(token)
        assert verified is not None and verified.release_id == RELEASE_ID
        recipient = sent.pop(verified.digest)  # each token names its own recipient
        for form in readable_forms(address) + readable_forms(recipient):
            assert form not in header
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert url in html


def test_a_workspace_without_a_key_is_told_what_to_do(office: Path) -> None:
    os.unlink(office / KEY_FILE)
    code, output = run("check", RELEASE_ID)
    assert code == 1
    assert "no unsubscribe key" in output and "reldist keygen" in output
    code, output = run("keygen")
    assert code == 0 and "Created" in output
    code, output = run("check", RELEASE_ID)
    assert code == 0, output
