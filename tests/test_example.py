"""The example workspace is finished: ``check --strict`` passes, Kazakh readers get Kazakh first.

Through the real commands on a fresh ``reldist init``, asserting on the exit code and on the
messages written to the outbox, parsed back.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from helpers import RELEASE_ID, parse, run

RELEASE = f"releases/{RELEASE_ID}"


def sent(office: Path) -> dict[str, EmailMessage]:
    assert run("send", RELEASE, "--yes")[0] == 0
    return {
        p.name.split("-", 1)[1][:-4]: parse(p.read_bytes())
        for p in (office / "outbox" / RELEASE_ID).glob("*.eml")
    }


def test_the_example_passes_check_strict(office: Path) -> None:
    code, output = run("check", RELEASE, "--strict")
    assert code == 0, output
    assert "warning" not in output


def test_kazakh_readers_get_kazakh_first(office: Path) -> None:
    messages = sent(office)
    kk = messages["s.akhmetova@example.com"]
    assert kk["Content-Language"] == "kk, ru, en"
    assert str(kk["Subject"]).startswith("ЕО жобасы Қарағанды облысына")
    body = kk.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert text.index("Еуропалық Одақ жобасы Қарағанды облысына") < text.index("Проект Европейского Союза")
    assert "Құрметті Салтанат Ержанқызы" in text
    ru = messages["aigerim.nurlanova@example.org"]
    assert ru["Content-Language"] == "ru, en, kk"
