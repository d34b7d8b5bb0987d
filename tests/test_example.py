"""The example workspace is finished: ``check --strict`` passes, Kazakh readers get Kazakh first.

Through the real commands on a fresh ``reldist init``, asserting on the exit code and on the
messages written to the outbox, parsed back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from email.message import EmailMessage
from html import unescape
from pathlib import Path

import jinja2
import pytest

from helpers import RELEASE_ID, parse, run
from reldist.render import _wordwrap

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


def test_typography_in_html_and_text(office: Path) -> None:
    messages = sent(office)
    ru = messages["aigerim.nurlanova@example.org"]
    html_part, text_part = ru.get_body(("html",)), ru.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html, text = html_part.get_content(), text_part.get_content()
    for both in (unescape(html), text):  # css-inline writes U+00A0 as &nbsp;
        assert "288\xa0325\xa0евро" in both
        assert "30\xa0месяцев" in both
        assert "+7\xa07212\xa050-45-61\xa0(62)" in both
        assert "+420\xa0720\xa0208\xa0217" in both
        assert "г.\xa0Нур-Султан" in both
        assert "EUR\xa0288,325" in both
    assert '<span style="white-space:nowrap">+7\xa07212\xa050-45-61\xa0(62)</span>' in unescape(html)
    # the plain text wrapper never breaks at a hyphen: «пресс-релизы» stays on one line
    assert "пресс-релизы" in text.replace("\r\n", "\n").replace("пресс-\nрелизы", "BROKEN")
    long = [line for line in text.splitlines() if len(line) > 72 and not line.startswith(("http", "mailto:"))]
    assert not [line for line in long if " " in line.replace("\xa0", "")], long


def test_no_empty_paragraph_after_the_jump_link_and_a_plain_preheader(office: Path) -> None:
    html_part = sent(office)["aigerim.nurlanova@example.org"].get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert "<p>&nbsp;</p>" not in html and "<p>\xa0</p>" not in html
    jump = html.index('class="jump"')
    assert "</p>\r\n<p" in html[jump : jump + 600]  # the next paragraph is the label, not an empty one
    preheader = html[
        html.index('<div class="preheader"') : html.index("</div>", html.index('<div class="preheader"'))
    ]
    assert "display: none" in preheader or "display:none" in preheader
    assert "color" not in preheader and "opacity" not in preheader and "font-size" not in preheader


@pytest.mark.skipif(
    shutil.which("spamassassin") is None and not os.environ.get("CI"),
    reason="SpamAssassin is not installed (apt-get install spamassassin; .ci/run installs it)",
)
def test_spamassassin_finds_no_low_contrast_text(office: Path) -> None:
    assert run("send", RELEASE, "--yes")[0] == 0
    (path,) = (office / "outbox" / RELEASE_ID).glob("*aigerim*.eml")
    report = subprocess.run(
        ["spamassassin", "-L", "-t"], input=path.read_bytes(), capture_output=True, check=True, timeout=120
    ).stdout.decode("utf-8", "replace")
    assert "Content analysis details" in report  # SpamAssassin did look at it
    assert "HTML_FONT_LOW_CONTRAST" not in report
    assert "HTML_MESSAGE" in report


def test_the_wrapper_never_breaks_at_a_hyphen() -> None:
    env = jinja2.Environment()
    text = "x" * 60 + " пресс-релизы журналистам, которые пишут на эту тему"
    assert "пресс-\n" in env.filters["wordwrap"](env, text, 72, False)  # Jinja's own would
    assert "пресс-\n" not in _wordwrap(env.filters["wordwrap"])(env, text, 72, False)
