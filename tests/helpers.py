"""Small helpers shared by the tests: making workspaces, contacts and parsing messages."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

from click.testing import CliRunner

from reldist.cli import main
from reldist.contacts import Contact
from reldist.workspace import init_workspace

RELEASE_ID = "2026-11-eu-karaganda"


def run(*args: str) -> tuple[int, str]:
    """A reldist command through CliRunner in the current folder: (exit code, output)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def make_workspace(folder: Path) -> Path:
    """A fresh copy of the example workspace; returns its folder."""
    init_workspace(folder)
    return folder


def contact(
    address: str = "ivan@example.org",
    name: str = "Иван Петров",
    *,
    lang: str | None = "ru",
    languages: tuple[str, ...] = (),
    template: str | None = None,
    ascii_address: str | None = None,
    fields: dict[str, str] | None = None,
) -> Contact:
    return Contact(
        address=address,
        ascii_address=ascii_address
        if ascii_address is not None
        else (address if address.isascii() else None),
        name=name,
        lang=lang,
        languages=languages,
        template=template,
        tags=(),
        fields={"email": address, "name": name, "outlet": "", **(fields or {})},
        source="contacts/test.csv:2",
        list_name="test",
    )


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) bodies of a message, decoded."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def write_contacts(workspace: Path, name: str, rows: list[str], *, encoding: str = "utf-8") -> Path:
    path = workspace / "contacts" / f"{name}.csv"
    header = "email,name,lang,languages,outlet,beat,region,salutation,template,tags"
    path.write_text("\n".join([header, *rows]) + "\n", encoding=encoding)
    return path


def set_lists(workspace: Path, *lists: str) -> None:
    """Point the example release at other contact lists."""
    toml = workspace / "releases" / RELEASE_ID / "release.toml"
    text = toml.read_text(encoding="utf-8").replace(
        'lists = ["example"]', f"lists = {list(lists)!r}".replace("'", '"')
    )
    toml.write_text(text, encoding="utf-8")
