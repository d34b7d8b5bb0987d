"""Shared fixtures: ``office`` (an example workspace as the current folder); the SMTP server
fixtures live in smtpfixtures.py (aiosmtpd on 127.0.0.1), the PostgreSQL ones in pgfixtures.py
(a throwaway cluster), the Dovecot one in imapfixtures.py; ``originals`` is the example sent to the
outbox, as the inbox tests' reports quote it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from corpus import Original
from helpers import RELEASE_ID, make_workspace, parse, run
from imapfixtures import dovecot  # noqa: F401 - a fixture
from pgfixtures import *  # noqa: F403
from smtpfixtures import *  # noqa: F403


@pytest.fixture
def office(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh example workspace (``reldist init``), made the current folder for the test."""
    root = make_workspace(tmp_path / "office")
    monkeypatch.chdir(root)
    yield root


def enable_url(root: Path) -> None:
    """Switch on the example's commented one-click unsubscribe url."""
    toml = root / "reldist.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("# url = ", "url = ", 1), encoding="utf-8")


@pytest.fixture
def originals(office: Path) -> dict[str, Original]:
    """The example sent to the outbox: {address: what a report quotes of its message}."""
    return send_originals(office)


def send_originals(office: Path) -> dict[str, Original]:
    """Send the example (one-click links on) to the outbox, into whatever ledger reldist.toml
    names; returns {address: what a report quotes of its message}."""
    enable_url(office)
    code, output = run("send", RELEASE_ID, "--yes")
    assert code == 0, output
    found = {}
    for path in sorted((office / "outbox" / RELEASE_ID).glob("*.eml")):
        raw = path.read_bytes().replace(b"\r\n", b"\n")
        message = parse(raw)
        address = message["To"].addresses[0].addr_spec
        if "xn--" in address:  # the ledger keeps the Unicode form
            continue
        headers = raw.split(b"\n\n", 1)[0].decode("ascii")
        found[address] = Original(address, str(message["Message-ID"]), str(message["Subject"]), headers)
    return found
